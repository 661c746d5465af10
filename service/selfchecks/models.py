"""Tables: `selfchecks` (a department's self-check of a period: its declaration, what zhidu found
on its records, and where the two disagree) and `missing_selfchecks` (a self-check that was due
and not submitted by the deadline: a finding of its own)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base
from service.db.types import BigIntPK, JSONDocument, UTCDateTime


class SelfCheck(Base):
    """The latest self-check of `dept` for `period` (`revision` counts resubmissions)."""

    __tablename__ = "selfchecks"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    dept: Mapped[str] = mapped_column(String)
    period: Mapped[str] = mapped_column(String(16))
    revision: Mapped[int]
    submitted_by: Mapped[str] = mapped_column(String(128))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    late: Mapped[bool]
    as_of: Mapped[datetime] = mapped_column(UTCDateTime)
    policy_version: Mapped[str] = mapped_column(String(64))
    declaration: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    records_checked: Mapped[int]
    result: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    comparison: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    under_reported: Mapped[int]

    __table_args__ = (UniqueConstraint("dept", "period"), Index(None, "period"))


class MissingSelfCheck(Base):
    """A department without a self-check for `period` at its deadline. Stays as a record of the
    lapse; `status` becomes submitted_late when the self-check arrives afterwards."""

    __tablename__ = "missing_selfchecks"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    dept: Mapped[str] = mapped_column(String)
    period: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("dept", "period"),
        CheckConstraint("status IN ('open', 'submitted_late')", name="status_known"),
        Index(None, "status"),
    )
