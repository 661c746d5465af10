"""Tables of rectification notices (整改通知): the notices and their numbering, the findings they
list, their lifecycle events, reminders (an outbox: mail comes later), the departments' responses
with evidence files, and waivers of findings."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base
from service.db.types import BigIntPK, JSONDocument, UTCDateTime
from service.inspections.models import NullableJSON

NOTICE_STATUSES = ("issued", "acknowledged", "response_submitted", "returned", "verified", "closed")
ITEM_OUTCOMES = ("pending", "rectified", "waived", "confirmed")
WAIVER_STATUSES = ("active", "expired", "revoked")


class NoticeSequence(Base):
    """The last number given in a month (`YYYY-MM` of the issue date): numbers are taken in the
    transaction that issues the notice, with this row locked, so they are unique and gap-free."""

    __tablename__ = "notice_sequences"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    last_seq: Mapped[int]


class Notice(Base):
    """A rectification notice to one department: ZG-<yyyy>-<mm>-<seq:04d>."""

    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    number: Mapped[str] = mapped_column(String(32))
    month: Mapped[str] = mapped_column(String(7))
    seq: Mapped[int]
    dept: Mapped[str] = mapped_column(String)
    inspection_id: Mapped[int | None] = mapped_column(BigIntPK, ForeignKey("inspections.id"), index=True)
    status: Mapped[str] = mapped_column(String(24))
    escalation_level: Mapped[int]
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    issued_by: Mapped[str] = mapped_column(String(128))
    due_date: Mapped[date] = mapped_column(Date)  # the last day, in the company's time zone
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the end of that day: overdue from then
    department_head: Mapped[str | None] = mapped_column(String)
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(128))
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    verified_by: Mapped[str | None] = mapped_column(String(128))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by: Mapped[str | None] = mapped_column(String(128))
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("number"),
        UniqueConstraint("month", "seq"),
        CheckConstraint(
            "status IN ('issued', 'acknowledged', 'response_submitted', 'returned', 'verified', 'closed')",
            name="status_known",
        ),
        Index("ix_notices_dept_status", "dept", "status"),
        Index(None, "status"),
    )


class NoticeItem(Base):
    """One finding (violation) a notice lists, as it stood when the notice was issued."""

    __tablename__ = "notice_items"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    notice_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("notices.id"), index=True)
    violation_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("violations.id"), index=True)
    rule_id: Mapped[str] = mapped_column(String(32))
    record_type: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[str] = mapped_column(String)
    severity: Mapped[str] = mapped_column(String(16))
    responsible: Mapped[str | None] = mapped_column(String)
    clauses: Mapped[list[str]] = mapped_column(JSONDocument)
    message_zh: Mapped[str] = mapped_column(Text)
    message_en: Mapped[str] = mapped_column(Text)
    rectify_days: Mapped[int]
    outcome: Mapped[str] = mapped_column(String(16))
    verification: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)

    __table_args__ = (
        UniqueConstraint("notice_id", "violation_id"),
        CheckConstraint("outcome IN ('pending', 'rectified', 'waived', 'confirmed')", name="outcome_known"),
    )


class NoticeEvent(Base):
    """A step of a notice's life: a transition, an escalation, a reminder, a waived or revived item."""

    __tablename__ = "notice_events"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    notice_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("notices.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(24))
    to_status: Mapped[str | None] = mapped_column(String(24))
    note: Mapped[str] = mapped_column(Text)


class NoticeReminder(Base):
    """A message to send (outbox): before the deadline, when overdue, on escalation. `key` makes
    each one once per notice (e.g. `due:3`, `overdue:0`, `escalation:1`); `sent_at` is set by
    the mailer when mail exists."""

    __tablename__ = "notice_reminders"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    notice_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("notices.id"), index=True)
    key: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    level: Mapped[int | None]
    recipients: Mapped[list[dict[str, Any]]] = mapped_column(JSONDocument)
    subject_zh: Mapped[str] = mapped_column(Text)
    subject_en: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("notice_id", "key"),
        CheckConstraint("kind IN ('due', 'overdue', 'escalation')", name="kind_known"),
        Index(None, "sent_at"),
    )


class NoticeResponse(Base):
    """A department's answer: what it did (description), which findings it addresses, corrected
    records (submitted through ingestion) and evidence files; the automatic re-run of the rules
    at submission, and the supervisor's decision."""

    __tablename__ = "notice_responses"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    notice_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("notices.id"), index=True)
    submitted_by: Mapped[str] = mapped_column(String(128))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    description: Mapped[str] = mapped_column(Text)
    item_ids: Mapped[list[int] | None] = mapped_column(NullableJSON)  # None (SQL NULL): every finding
    records: Mapped[list[str]] = mapped_column(JSONDocument)  # "record_type:record_id"
    verification: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    decision: Mapped[str | None] = mapped_column(String(16))  # verified | returned
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_note: Mapped[str | None] = mapped_column(Text)


class NoticeEvidence(Base):
    """An evidence file of a response, stored in the database (size limits: inspections.yaml)."""

    __tablename__ = "notice_evidence"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    response_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("notice_responses.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(128))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)


class Waiver(Base):
    """A supervisor's waiver of a finding, with a reason and an expiry: when it expires the
    finding is revived (open again) unless the record no longer violates the rule."""

    __tablename__ = "waivers"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    violation_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("violations.id"), index=True)
    dept: Mapped[str | None] = mapped_column(String)
    reason: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint("status IN ('active', 'expired', 'revoked')", name="status_known"),
        Index("ix_waivers_status_expires_at", "status", "expires_at"),
    )
