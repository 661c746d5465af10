"""Shapes of digest subscriptions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from service.accounts.schemas import DeptCode, Language


class Cadence(StrEnum):
    WEEKLY = "weekly"  # the last complete ISO week (Monday-Sunday)
    MONTHLY = "monthly"  # the last complete calendar month


class PreviewFormat(StrEnum):
    HTML = "html"  # the email's HTML, with its images inline as data: URLs
    PDF = "pdf"
    JSON = "json"  # the email as it would be sent: subject, HTML (cid: images), text, images


class PreviewImage(BaseModel):
    cid: str = Field(description="The Content-ID the HTML refers to as cid:<cid>.")
    filename: str
    png_base64: str


class DigestPreview(BaseModel):
    """The digest email of the last complete period, as it would be sent (`format=json`)."""

    period: str
    subject: str
    html: str
    text: str
    images: list[PreviewImage]


Depts = Annotated[
    list[DeptCode],
    Field(
        min_length=1, max_length=500, description="Departments the digest covers: within the manager's scope."
    ),
]


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"cadence": "weekly", "depts": ["D01", "D02"], "language": "zh"},
                {"user_id": 5, "cadence": "monthly", "depts": ["D03"], "language": "en"},
            ]
        },
    )

    user_id: int | None = Field(
        default=None,
        ge=1,
        description="The manager subscribed; only an admin names another user. Default: you.",
    )
    cadence: Cadence
    depts: Depts
    language: Language | None = Field(default=None, description="Default: the manager's language.")
    active: bool = True


class SubscriptionUpdate(BaseModel):
    """Only the fields present change."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"active": False}, {"depts": ["D01"], "language": "en"}]},
    )

    depts: Depts | None = None
    language: Language | None = None
    active: bool | None = None


class SubscriptionRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 1,
                    "user_id": 5,
                    "username": "wang.fang",
                    "cadence": "weekly",
                    "depts": ["D01", "D02"],
                    "language": "zh",
                    "active": True,
                    "created_at": "2026-11-02T00:00:00Z",
                }
            ]
        },
    )

    id: int
    user_id: int
    username: str
    cadence: Cadence
    depts: list[str]
    language: Language
    active: bool
    created_at: datetime
