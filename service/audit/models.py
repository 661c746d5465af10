"""Tables: `audit_events` (the hash-chained log) and `audit_chain_head` (one row: the chain's end)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base
from service.db.types import BigIntPK, JSONDocument, UTCDateTime


class AuditEvent(Base):
    """One change. `hash` = sha256(prev_hash + canonical JSON of every other field); `seq` has no gaps."""

    __tablename__ = "audit_events"

    # Assigned by `append_event` (head + 1), never by the database: a gap means a removed event.
    seq: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(128))  # a username, or "system"
    action: Mapped[str] = mapped_column(String(64))  # e.g. record.submitted, token.issued
    entity_type: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str] = mapped_column(String)
    before_digest: Mapped[str | None] = mapped_column(String(64))  # sha256 of the canonical state
    after_digest: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index(None, "at"),
        Index(None, "actor"),
        Index(None, "action"),
        Index("ix_audit_events_entity_type_entity_id", "entity_type", "entity_id"),
    )

    def __repr__(self) -> str:
        return f"AuditEvent(seq={self.seq!r}, action={self.action!r}, entity={self.entity_type}:{self.entity_id})"


class AuditChainHead(Base):
    """The end of the chain (one row, id 1). Appends lock it, which serialises concurrent writers,
    and it records the last seq and hash, so removing the newest events is detected too."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)
