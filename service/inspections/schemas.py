"""Shapes of inspections: the request, per-department summaries, data-quality findings."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from service.accounts.schemas import DeptCode
from service.inspections.periods import PERIOD_PATTERN

PeriodText = Annotated[str, StringConstraints(strip_whitespace=True, pattern=PERIOD_PATTERN)]


class InspectionCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"period": "2026-10"}, {"period": "2026-Q3", "depts": ["D01", "D03"]}]
        },
    )

    period: PeriodText = Field(description="A month YYYY-MM or a quarter YYYY-Qn.")
    depts: list[DeptCode] | None = Field(
        default=None, min_length=1, max_length=500, description="Departments (default: all)."
    )
    issue_notices: bool = Field(default=True, description="Issue rectification notices for the findings.")


class FindingCounts(BaseModel):
    minor: int
    major: int
    critical: int


class SummaryRead(BaseModel):
    dept: str
    records_checked: int
    findings: FindingCounts = Field(
        description="Open findings (violations) by severity after the inspection."
    )
    waived: int
    data_quality: int = Field(
        description="Data-quality findings (failed expectations, unverifiable verdicts)."
    )
    opened: int = Field(description="Violations opened or reopened by this inspection.")
    closed: int = Field(description="Violations this inspection closed (no longer hold).")
    score: float | None = Field(
        description="100 × (1 − weighted findings / records checked), ≥ 0; None without records "
        "(weights: policies/inspections.yaml)."
    )


class NoticeBrief(BaseModel):
    id: int
    number: str
    dept: str
    status: str
    due_date: date
    findings: int


class InspectionRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 3,
                    "period": "2026-10",
                    "period_start": "2026-09-30T16:00:00Z",
                    "period_end": "2026-10-31T16:00:00Z",
                    "as_of": "2026-11-05T16:00:00Z",
                    "complete": True,
                    "depts": None,
                    "trigger": "scheduled",
                    "requested_by": "system",
                    "started_at": "2026-11-06T02:00:00Z",
                    "finished_at": "2026-11-06T02:00:04Z",
                    "policy_version": "66411fc2c9707b66",
                    "records_checked": 2480,
                    "counts": {"opened": 31, "closed": 4, "notices": 7},
                    "timings": {"checks_seconds": 0.8, "rules_seconds": 0.3},
                    "summaries": [],
                    "notices": [],
                }
            ]
        }
    )

    id: int
    period: str
    period_start: datetime
    period_end: datetime = Field(description="Exclusive end.")
    as_of: datetime = Field(
        description="The time the rules judged at: period end + grace, never after the run."
    )
    complete: bool = Field(description="False when run before the period's end plus grace.")
    depts: list[str] | None = Field(description="None: every department.")
    trigger: str
    requested_by: str
    started_at: datetime
    finished_at: datetime
    policy_version: str
    records_checked: int
    counts: dict[str, int]
    timings: dict[str, float]
    summaries: list[SummaryRead] = Field(description="Per department (yours only, unless you see all).")
    notices: list[NoticeBrief] = Field(description="Notices this inspection issued (in your departments).")


class QualityRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str = Field(
        description="expectation (a failed data-quality expectation) or unverifiable (a rule could not judge)."
    )
    code: str = Field(description="The expectation id (DQ-...) or the rule id.")
    record_type: str
    record_id: str
    dept: str | None
    severity: str
    fields: list[str]
    clauses: list[str]
    message_zh: str
    message_en: str
    status: str
    first_inspection_id: int
    last_inspection_id: int
    first_seen_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None
