"""Shapes of self-checks: the declaration, zhidu's result, and the comparison of the two."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from service.inspections.periods import PERIOD_PATTERN

RuleId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
RecordId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)]


class Deviation(BaseModel):
    """A deviation the department found itself, and what it did about it."""

    model_config = ConfigDict(extra="forbid")

    rule: RuleId
    record_id: RecordId
    action: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class Declaration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    compliant_rules: list[RuleId] = Field(
        default_factory=list, max_length=500, description="Rules the department considers it complied with."
    )
    deviations: list[Deviation] = Field(default_factory=list, max_length=5000)
    statement: Text = ""


class SelfCheckCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "period": "2026-10",
                    "declaration": {
                        "compliant_rules": ["EXP-002", "EXP-003"],
                        "deviations": [{"rule": "EXP-001", "record_id": "EC0000101", "action": "已补交发票"}],
                        "statement": "本月自查完毕",
                    },
                }
            ]
        },
    )

    period: Annotated[str, StringConstraints(pattern=PERIOD_PATTERN)] = Field(
        description="A month YYYY-MM or a quarter YYYY-Qn that has ended."
    )
    declaration: Declaration


class FoundItem(BaseModel):
    rule: str
    record_type: str
    record_id: str
    severity: str
    responsible: str | None = None
    clauses: list[str] = Field(default_factory=list)
    message_zh: str
    message_en: str
    declared: bool = Field(description="The department declared it as a deviation.")


class QualityItem(BaseModel):
    kind: str
    code: str
    record_type: str
    record_id: str
    severity: str
    message_zh: str
    message_en: str


class SelfCheckResult(BaseModel):
    """What zhidu found on the department's records of the period (read by the department)."""

    records_checked: int
    findings: list[FoundItem]
    data_quality: list[QualityItem]


class Disagreement(BaseModel):
    rule: str
    record_type: str | None = None
    record_id: str
    severity: str | None = None


class Comparison(BaseModel):
    """Where declaration and findings disagree (for the supervision group)."""

    undeclared: list[Disagreement] = Field(
        description="Findings the declaration does not mention: under-reporting."
    )
    contradicted_rules: list[str] = Field(description="Rules declared complied with that have findings.")
    declared_not_found: list[Disagreement] = Field(
        description="Declared deviations zhidu does not find (already corrected, or not a violation)."
    )
    matched: int = Field(description="Findings the department declared.")


class SelfCheckRead(BaseModel):
    id: int
    dept: str
    period: str
    revision: int
    submitted_by: str
    submitted_at: datetime
    due_at: datetime
    late: bool
    as_of: datetime
    policy_version: str
    declaration: Declaration
    result: SelfCheckResult
    under_reported: int = Field(description="Findings not declared.")
    flagged: bool = Field(description="Under-reporting found.")
    comparison: Comparison | None = Field(
        description="Shown to the supervision group, admins and managers; None for the department."
    )


class MissingSelfCheckRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    dept: str
    period: str
    due_at: datetime
    detected_at: datetime
    status: str = Field(description="open, or submitted_late once the self-check arrived.")
    resolved_at: datetime | None
