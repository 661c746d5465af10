"""Shapes of notices, their findings, responses, verification, reminders and waivers."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from service.accounts.schemas import DeptCode

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]


class NoticeStatus(StrEnum):
    ISSUED = "issued"
    ACKNOWLEDGED = "acknowledged"
    RESPONSE_SUBMITTED = "response_submitted"
    RETURNED = "returned"
    VERIFIED = "verified"
    CLOSED = "closed"


# The department has to act on a notice in these states: reminders, overdue and escalation.
DEPARTMENT_TO_ACT = (NoticeStatus.ISSUED, NoticeStatus.ACKNOWLEDGED, NoticeStatus.RETURNED)
ACTIVE = (*DEPARTMENT_TO_ACT, NoticeStatus.RESPONSE_SUBMITTED, NoticeStatus.VERIFIED)


class ItemOutcome(StrEnum):
    PENDING = "pending"  # to rectify
    RECTIFIED = "rectified"  # the supervisor verified it: the rule no longer finds the record violating
    WAIVED = "waived"  # a supervisor waived the finding
    CONFIRMED = "confirmed"  # the notice was closed with the finding confirmed: a penalty follows


class TextRead(BaseModel):
    zh: str
    en: str


class ClauseRef(BaseModel):
    id: str
    manual: str | None = None
    title: TextRead | None = Field(default=None, description="None if the clause left the library.")
    text: TextRead | None = None


class ItemCheck(BaseModel):
    """What re-running a finding's rule on the record's current version gave."""

    item_id: int
    violation_id: int
    rule: str
    record_type: str
    record_id: str
    record_version: int | None = Field(description="The current version judged (None: no such record).")
    violated: bool | None = Field(description="None: not judged (the finding is waived).")
    severity: str | None = None
    message_zh: str | None = None
    message_en: str | None = None
    note: str = ""


class Verification(BaseModel):
    """The rules of a notice's findings re-run (batch engine) on the current versions of their
    records and the records they read, as of `as_of`."""

    as_of: datetime
    policy_version: str
    all_rectified: bool = Field(description="No finding (waived ones aside) is still violated.")
    items: list[ItemCheck]


class NoticeItemRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    violation_id: int
    rule: str
    rule_title: TextRead | None
    record_type: str
    record_id: str
    severity: str
    responsible: str | None
    clauses: list[ClauseRef]
    message_zh: str
    message_en: str
    rectify_days: int
    outcome: ItemOutcome
    verification: ItemCheck | None = Field(description="The latest re-run of its rule.")


class NoticeRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 7,
                    "number": "ZG-2026-11-0007",
                    "dept": "D03",
                    "status": "acknowledged",
                    "escalation_level": 0,
                    "overdue": False,
                    "inspection_id": 3,
                    "issued_at": "2026-11-01T02:00:00Z",
                    "issued_by": "system",
                    "due_date": "2026-11-08",
                    "due_at": "2026-11-08T16:00:00Z",
                    "department_head": "王经理",
                    "findings": 4,
                    "status_changed_at": "2026-11-02T01:00:00Z",
                }
            ]
        }
    )

    id: int
    number: str = Field(description="ZG-<yyyy>-<mm>-<seq>: month of issue, sequence in that month.")
    dept: str
    status: NoticeStatus
    escalation_level: int = Field(description="0 none, 1 department head, 2 general manager.")
    overdue: bool = Field(description="Past the deadline with the department still to act.")
    inspection_id: int | None
    issued_at: datetime
    issued_by: str
    due_date: date = Field(description="The last day to rectify (company time zone).")
    due_at: datetime = Field(description="Overdue from this instant (the end of due_date).")
    department_head: str | None
    findings: int
    status_changed_at: datetime


class EventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    actor: str
    action: str
    from_status: str | None
    to_status: str | None
    note: str


class EvidenceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    filename: str
    content_type: str
    size: int
    sha256: str


class ResponseRead(BaseModel):
    id: int
    submitted_by: str
    submitted_at: datetime
    description: str
    item_ids: list[int] | None = Field(description="Findings it addresses (None: all).")
    records: list[str] = Field(description="Corrected records, `record_type:record_id`.")
    verification: Verification = Field(description="The automatic re-run at submission.")
    decision: str | None
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None
    evidence: list[EvidenceRead]


class ReminderRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    notice_id: int
    key: str
    kind: str
    level: int | None
    recipients: list[dict[str, Any]]
    subject_zh: str
    subject_en: str
    created_at: datetime
    sent_at: datetime | None


class NoticeDetail(NoticeRead):
    items: list[NoticeItemRead]
    responses: list[ResponseRead]
    events: list[EventRead]
    reminders: list[ReminderRead]


class IssueRequest(BaseModel):
    """Issue notices now for open violations that are on no active notice (e.g. found on arrival
    between inspections): of one department, or of the violations named."""

    model_config = ConfigDict(extra="forbid")

    dept: DeptCode | None = None
    violation_ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] | None = Field(
        default=None, max_length=1000
    )


class ReturnRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "C-2 仍无财务审核记录"}]}
    )

    reason: Reason
    due_date: date | None = Field(default=None, description="A new deadline (not before today).")


class ReasonRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


class NoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Note = ""


class WaiverCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "violation_id": 17,
                    "reason": "总经理特批，见会议纪要 2026-07 号",
                    "expires_at": "2026-12-31T23:59:59+08:00",
                }
            ]
        },
    )

    violation_id: int = Field(ge=1, le=2**63 - 1)
    reason: Reason
    expires_at: AwareDatetime = Field(
        description="When the waiver ends and the finding is revived (with offset)."
    )


class WaiverRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    violation_id: int
    dept: str | None
    reason: str
    expires_at: datetime
    created_by: str
    created_at: datetime
    status: str
    ended_at: datetime | None
    ended_note: str | None


class SweepReport(BaseModel):
    """What one sweep did (reminders, escalations, expired waivers, missing self-checks)."""

    at: datetime
    reminders: int = 0
    escalations: int = 0
    waivers_expired: int = 0
    findings_revived: int = 0
    missing_selfchecks: int = 0
