"""Tables: `mail_outbox` (every outgoing message, kept after sending) and `mail_outbox_images`
(the inline PNGs a message's HTML refers to as `cid:`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base
from service.db.types import BigIntPK, JSONDocument, UTCDateTime

MESSAGE_KINDS = ("digest", "notice_reminder")
# queued: to send (again); sent; failed: gave up after the last attempt; outbox_only: no SMTP
# configured when it was due, kept here only; no_recipient: none of its addressees has an email
# address yet (looked up again on every send run).
MESSAGE_STATUSES = ("queued", "sent", "failed", "outbox_only", "no_recipient")


class OutboxMessage(Base):
    """One outgoing message. `source_key` names what it is for (`digest:<subscription>:<period>`,
    `notice_reminder:<reminder id>`): unique, so each is made once however often a job runs."""

    __tablename__ = "mail_outbox"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))
    source_key: Mapped[str] = mapped_column(String(200))
    subscription_id: Mapped[int | None] = mapped_column(
        BigIntPK, ForeignKey("digest_subscriptions.id", ondelete="SET NULL"), index=True
    )
    period: Mapped[str | None] = mapped_column(String(32))  # a digest's period label, e.g. 2026-W44
    reminder_id: Mapped[int | None] = mapped_column(BigIntPK, ForeignKey("notice_reminders.id"), index=True)
    owner_id: Mapped[int | None] = mapped_column(BigIntPK, ForeignKey("users.id"), index=True)
    recipients: Mapped[list[str]] = mapped_column(JSONDocument)  # email addresses
    subject: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(2))
    html: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int]
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # claim lease or retry time
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("source_key"),
        CheckConstraint("kind IN ('digest', 'notice_reminder')", name="kind_known"),
        CheckConstraint(
            "status IN ('queued', 'sent', 'failed', 'outbox_only', 'no_recipient')", name="status_known"
        ),
        CheckConstraint("language IN ('zh', 'en')", name="language_known"),
        Index("ix_mail_outbox_status_next_attempt_at", "status", "next_attempt_at"),
    )


class OutboxImage(Base):
    """An inline image of a message: a `multipart/related` part with this Content-ID."""

    __tablename__ = "mail_outbox_images"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    message_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("mail_outbox.id"), index=True)
    cid: Mapped[str] = mapped_column(String(200))  # without angle brackets
    filename: Mapped[str] = mapped_column(String(255))
    content: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (UniqueConstraint("message_id", "cid"),)
