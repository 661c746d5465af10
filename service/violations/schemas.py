"""Shapes of violations: statuses, what an evaluation changed, API inputs and reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StringConstraints


class Status(StrEnum):
    OPEN = "open"  # the rule finds the record non-compliant
    CLOSED = "closed"  # it no longer does (set by evaluation)
    WAIVED = "waived"  # a supervisor accepted it, with a reason


class Severity(StrEnum):
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


# A violation's columns (`violations` table) as a dict.
ViolationRow = dict[str, Any]


@dataclass
class Changes:
    """What reconciling verdicts did to the violations."""

    opened: list[ViolationRow] = field(default_factory=list)  # found for the first time
    reopened: list[ViolationRow] = field(default_factory=list)  # closed before, violated again
    closed: list[ViolationRow] = field(default_factory=list)  # open or waived, no longer violated
    updated: list[ViolationRow] = field(default_factory=list)  # still violated (severity, text may differ)

    def extend(self, other: Changes) -> None:
        self.opened += other.opened
        self.reopened += other.reopened
        self.closed += other.closed
        self.updated += other.updated


# --- API -------------------------------------------------------------------------------------------

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class ViolationChange(BaseModel):
    """A violation a submission opened, reopened or closed."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    rule: str = Field(validation_alias=AliasChoices("rule", "rule_id"))
    record_type: str
    record_id: str
    dept: str | None
    severity: Severity
    status: Status


class ViolationRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 17,
                    "rule": "PUR-007",
                    "record_type": "payment",
                    "record_id": "PM0000042",
                    "dept": "D03",
                    "severity": "critical",
                    "responsible": "D03",
                    "clauses": ["m004.3.1.6.3"],
                    "message_zh": "付款单 PM0000042（订单 PO0000017，12,800.00 元）付款前没有验收合格记录",
                    "message_en": "Payment PM0000042 (order PO0000017, CNY 12,800.00) was made without a passed acceptance",
                    "status": "open",
                    "policy_version": "66411fc2c9707b66",
                    "first_detected_at": "2026-03-05T02:00:00Z",
                    "last_evaluated_at": "2026-03-05T02:00:00Z",
                    "status_changed_at": "2026-03-05T02:00:00Z",
                    "closed_at": None,
                }
            ]
        },
    )

    id: int
    rule: str = Field(
        validation_alias=AliasChoices("rule", "rule_id"), description="The rule id, e.g. PUR-007."
    )
    record_type: str
    record_id: str
    dept: str | None
    severity: Severity
    responsible: str | None = Field(description="Who answers for it (the rule's responsible field).")
    clauses: list[str]
    message_zh: str
    message_en: str
    status: Status
    policy_version: str = Field(description="Version of the policy library that last judged it.")
    first_detected_at: datetime
    last_evaluated_at: datetime
    status_changed_at: datetime
    closed_at: datetime | None


class HistoryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    actor: str = Field(description="A username, or `system` for evaluation.")
    from_status: Status | None = Field(description="None: when it was first found.")
    to_status: Status
    reason: str
    policy_version: str


class TextRead(BaseModel):
    zh: str
    en: str


class ClauseText(BaseModel):
    id: str
    manual: str
    title: TextRead
    text: TextRead


class RuleBrief(BaseModel):
    id: str
    title: TextRead
    record_type: str
    severity: Severity
    responsible: str
    rectify_days: int


class RecordBrief(BaseModel):
    record_type: str
    record_id: str
    version: int
    dept: str | None
    payload: dict[str, Any]
    submitted_at: datetime


class RelatedRecord(RecordBrief):
    via: str = Field(description="The join that relates it, e.g. `approval.record_id = record.id`.")


class ViolationDetail(ViolationRead):
    model_config = ConfigDict(from_attributes=True)

    rule_detail: RuleBrief | None = Field(description="The rule (None if no longer in the library).")
    clause_texts: list[ClauseText]
    record: RecordBrief | None = Field(description="The record's current version.")
    related: list[RelatedRecord] = Field(
        description="The related records the rule reads, current versions, through its join keys."
    )
    related_hidden: int = Field(
        description="Related records of departments you may not see, left out of `related`."
    )
    history: list[HistoryRead]


class ViolationUpdate(BaseModel):
    """Waive an open violation (a reason is required) or reopen a waived one."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"status": "waived", "reason": "总经理特批，见会议纪要 2026-07 号"},
                {"status": "open", "reason": "waiver withdrawn after review"},
            ]
        },
    )

    status: Literal["waived", "open"]
    reason: Reason
