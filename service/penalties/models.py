"""Tables: `penalties` (one per confirmed finding: the ladder's proposal and the decided penalty)
and `penalty_appeals` (a department's appeal, 申诉, and the supervisor's decision)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base
from service.db.types import BigIntPK, UTCDateTime

PENALTY_STATUSES = ("proposed", "confirmed", "appealed", "upheld", "reduced", "overturned")
APPEAL_STATUSES = ("pending", "upheld", "reduced", "overturned")


class Penalty(Base):
    """The penalty of one confirmed finding against `person` (the rule's responsible; the
    department when there is none). `occurrence` is the finding's rank among the same person's
    confirmed findings of the same rule within the ladder's window; `proposed_*` is the ladder's
    step for it, `kind`/`amount_cents`/`points` the penalty in force (as confirmed, adjusted or
    reduced on appeal)."""

    __tablename__ = "penalties"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    violation_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("violations.id"), index=True)
    notice_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("notices.id"), index=True)
    notice_item_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("notice_items.id"))
    rule_id: Mapped[str] = mapped_column(String(32))
    record_type: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[str] = mapped_column(String)
    severity: Mapped[str] = mapped_column(String(16))
    dept: Mapped[str] = mapped_column(String)
    person: Mapped[str] = mapped_column(String)
    occurrence: Mapped[int]
    window_days: Mapped[int]
    confirmed_finding_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the notice's closure
    proposed_kind: Mapped[str] = mapped_column(String(24))
    proposed_amount_cents: Mapped[int | None] = mapped_column(BigInteger)
    proposed_points: Mapped[int | None]
    kind: Mapped[str] = mapped_column(String(24))
    amount_cents: Mapped[int | None] = mapped_column(BigInteger)
    points: Mapped[int | None]
    status: Mapped[str] = mapped_column(String(16))
    adjusted: Mapped[bool]
    decision_reason: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("notice_item_id"),
        CheckConstraint(
            "status IN ('proposed', 'confirmed', 'appealed', 'upheld', 'reduced', 'overturned')",
            name="status_known",
        ),
        CheckConstraint("kind IN ('warning', 'fine', 'performance_points', 'demotion')", name="kind_known"),
        Index("ix_penalties_person_rule_id", "person", "rule_id"),
        Index("ix_penalties_dept_status", "dept", "status"),
    )


class PenaltyAppeal(Base):
    """One appeal of a confirmed penalty (at most one per penalty) and its decision."""

    __tablename__ = "penalty_appeals"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    penalty_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("penalties.id"))
    filed_by: Mapped[str] = mapped_column(String(128))
    filed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("penalty_id"),
        CheckConstraint("status IN ('pending', 'upheld', 'reduced', 'overturned')", name="status_known"),
    )
