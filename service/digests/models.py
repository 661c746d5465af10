"""Table `digest_subscriptions`: which manager gets which digest (cadence, departments, language)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base
from service.db.types import BigIntPK, JSONDocument, UTCDateTime


class DigestSubscription(Base):
    """A manager's subscription to the weekly or monthly digest of some of its departments (always
    within its `scope_depts`); one per (user, cadence)."""

    __tablename__ = "digest_subscriptions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("users.id"), index=True)
    depts: Mapped[list[str]] = mapped_column(JSONDocument)
    cadence: Mapped[str] = mapped_column(String(8))  # weekly | monthly
    language: Mapped[str] = mapped_column(String(2))  # zh | en
    active: Mapped[bool]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("user_id", "cadence"),
        CheckConstraint("cadence IN ('weekly', 'monthly')", name="cadence_known"),
        CheckConstraint("language IN ('zh', 'en')", name="language_known"),
    )
