"""Table: `idempotency_keys` (the response of a request sent with an `Idempotency-Key`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base
from service.db.types import BigIntPK, JSONDocument, UTCDateTime


class IdempotencyKey(Base):
    """A key a client sent with a successful submission, the digest of that request, and the
    response given: a retry with the same key and request gets the same response again."""

    __tablename__ = "idempotency_keys"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("users.id"))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int]
    response: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    submission_id: Mapped[int | None] = mapped_column(BigIntPK, ForeignKey("submissions.id"))

    __table_args__ = (UniqueConstraint("user_id", "key"),)
