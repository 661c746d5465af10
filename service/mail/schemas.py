"""Shapes of the outbox as the API shows it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from service.accounts.schemas import Language


class MessageStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"
    OUTBOX_ONLY = "outbox_only"
    NO_RECIPIENT = "no_recipient"


class MessageKind(StrEnum):
    DIGEST = "digest"
    NOTICE_REMINDER = "notice_reminder"


class OutboxItem(BaseModel):
    """A message in the outbox, without its bodies."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 12,
                    "kind": "digest",
                    "source_key": "digest:1:2026-W44",
                    "subscription_id": 1,
                    "period": "2026-W44",
                    "reminder_id": None,
                    "owner_id": 5,
                    "recipients": ["wang.fang@example.cn"],
                    "subject": "合规周报 2026-W44",
                    "language": "zh",
                    "created_at": "2026-11-02T23:00:00Z",
                    "status": "sent",
                    "attempts": 1,
                    "next_attempt_at": None,
                    "last_error": None,
                    "sent_at": "2026-11-02T23:00:02Z",
                    "images": 3,
                }
            ]
        },
    )

    id: int
    kind: MessageKind
    source_key: str = Field(
        description="What the message is for: digest:<subscription>:<period> or notice_reminder:<id>."
    )
    subscription_id: int | None
    period: str | None
    reminder_id: int | None
    owner_id: int | None = Field(description="The subscriber of a digest; null for notice reminders.")
    recipients: list[str]
    subject: str
    language: Language
    created_at: datetime
    status: MessageStatus
    attempts: int
    next_attempt_at: datetime | None = Field(description="Queued: not sent before this (retry or claim).")
    last_error: str | None
    sent_at: datetime | None
    images: int = Field(description="Inline images (multipart/related parts).")


class OutboxImageRead(BaseModel):
    cid: str
    filename: str
    size: int


class OutboxDetail(OutboxItem):
    """A message with its bodies and its images' Content-IDs."""

    html: str
    text: str
    image_parts: list[OutboxImageRead]
