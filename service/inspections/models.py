"""Tables: `inspections` (one run over a period and departments), `inspection_summaries` (per
department), `inspection_findings` (what each run found or closed, linking violations) and
`data_quality_findings` (records failing data-quality expectations, or that a rule could not judge
because a field it reads failed; one row per problem and record, kept up to date like violations)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base
from service.db.types import BigIntPK, JSONDocument, UTCDateTime

# A JSON document whose Python None is SQL NULL (not the JSON `null`), so `IS NULL` finds it.
NullableJSON = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")

TRIGGERS = ("api", "cli", "scheduled")
FINDING_CHANGES = ("opened", "reopened", "still_open", "waived", "closed")
DQ_KINDS = ("expectation", "unverifiable")
DQ_STATUSES = ("open", "resolved")


class Inspection(Base):
    """One inspection: a period judged as of `as_of` for `depts` (None: every department)."""

    __tablename__ = "inspections"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    period: Mapped[str] = mapped_column(String(16))
    period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    period_end: Mapped[datetime] = mapped_column(UTCDateTime)
    as_of: Mapped[datetime] = mapped_column(UTCDateTime)
    complete: Mapped[bool]  # False: run before the period's end + grace (judged as of the run)
    depts: Mapped[list[str] | None] = mapped_column(NullableJSON)  # None (SQL NULL): every department
    trigger: Mapped[str] = mapped_column(String(16))
    # "<job id>@<fire time>" of a scheduled run: a retried run finds the first one's result
    run_key: Mapped[str | None] = mapped_column(String(200))
    requested_by: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)
    policy_version: Mapped[str] = mapped_column(String(64))
    records_checked: Mapped[int]
    counts: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    timings: Mapped[dict[str, Any]] = mapped_column(JSONDocument)

    __table_args__ = (
        UniqueConstraint("run_key"),
        CheckConstraint("trigger IN ('api', 'cli', 'scheduled')", name="trigger_known"),
        Index(None, "period"),
        Index(None, "started_at"),
    )


class InspectionSummary(Base):
    """One department's result in one inspection."""

    __tablename__ = "inspection_summaries"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    inspection_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("inspections.id"), index=True)
    dept: Mapped[str] = mapped_column(String)
    records_checked: Mapped[int]
    findings_minor: Mapped[int]
    findings_major: Mapped[int]
    findings_critical: Mapped[int]
    waived: Mapped[int]
    data_quality: Mapped[int]
    opened: Mapped[int]
    closed: Mapped[int]
    score: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (UniqueConstraint("inspection_id", "dept"), Index(None, "dept"))


class InspectionFinding(Base):
    """A violation an inspection found (opened, reopened, still open, waived) or closed."""

    __tablename__ = "inspection_findings"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    inspection_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("inspections.id"), index=True)
    violation_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("violations.id"), index=True)
    dept: Mapped[str | None] = mapped_column(String)
    change: Mapped[str] = mapped_column(String(16))

    __table_args__ = (
        UniqueConstraint("inspection_id", "violation_id"),
        CheckConstraint(
            "change IN ('opened', 'reopened', 'still_open', 'waived', 'closed')", name="change_known"
        ),
    )


class DataQualityFinding(Base):
    """A record failing a data-quality expectation (`kind` expectation, `code` its id), or a rule
    that could not judge a record because a field it reads failed (`kind` unverifiable, `code` the
    rule id). One row per (kind, code, record): inspections update it, resolve it when the problem
    is gone, and reopen it when it comes back."""

    __tablename__ = "data_quality_findings"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(32))
    record_type: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[str] = mapped_column(String)
    dept: Mapped[str | None] = mapped_column(String)
    severity: Mapped[str] = mapped_column(String(16))
    fields: Mapped[list[str]] = mapped_column(JSONDocument)
    clauses: Mapped[list[str]] = mapped_column(JSONDocument)
    message_zh: Mapped[str] = mapped_column(Text)
    message_en: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    first_inspection_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("inspections.id"))
    last_inspection_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("inspections.id"), index=True)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("kind", "code", "record_type", "record_id"),
        CheckConstraint("kind IN ('expectation', 'unverifiable')", name="kind_known"),
        CheckConstraint("status IN ('open', 'resolved')", name="status_known"),
        Index("ix_data_quality_findings_record_type_record_id", "record_type", "record_id"),
        Index("ix_data_quality_findings_dept_status", "dept", "status"),
    )
