"""Tables: `violations` (one per rule and record) and `violation_history` (every status change)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base
from service.db.types import BigIntPK, JSONDocument, UTCDateTime

STATUSES = ("open", "closed", "waived")


class Violation(Base):
    """What a rule found about one record. Re-evaluation updates it in place (never a second row);
    `policy_version` is the library version of the evaluation that last judged it."""

    __tablename__ = "violations"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    rule_id: Mapped[str] = mapped_column(String(32))
    record_type: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[str] = mapped_column(String)
    dept: Mapped[str | None] = mapped_column(String)
    severity: Mapped[str] = mapped_column(String(16))
    responsible: Mapped[str | None] = mapped_column(String)
    clauses: Mapped[list[str]] = mapped_column(JSONDocument)
    message_zh: Mapped[str] = mapped_column(Text)
    message_en: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    policy_version: Mapped[str] = mapped_column(String(64))
    first_detected_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_evaluated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("rule_id", "record_type", "record_id"),
        CheckConstraint("status IN ('open', 'closed', 'waived')", name="status_known"),
        CheckConstraint("severity IN ('minor', 'major', 'critical')", name="severity_known"),
        Index("ix_violations_record_type_record_id", "record_type", "record_id"),
        Index("ix_violations_dept_status", "dept", "status"),
        Index(None, "first_detected_at"),
        Index(None, "status"),
    )

    def __repr__(self) -> str:
        return (
            f"Violation(id={self.id!r}, rule={self.rule_id!r}, "
            f"record={self.record_type}:{self.record_id}, status={self.status!r})"
        )


class ViolationHistory(Base):
    """One status change: who, when, from, to, why, under which policy version."""

    __tablename__ = "violation_history"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    violation_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("violations.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(128))
    from_status: Mapped[str | None] = mapped_column(String(16))  # None: when it was first found
    to_status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    policy_version: Mapped[str] = mapped_column(String(64))
