"""Shapes of audit data: chain problems (what `verify_chain` finds) and API reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SYSTEM_ACTOR = "system"


class AuditAction(StrEnum):
    """Actions appended by this code base. Other domains may append their own `<entity>.<verb>`."""

    RECORD_SUBMITTED = "record.submitted"
    RECORD_VERSIONED = "record.versioned"
    VIOLATION_STATUS_CHANGED = "violation.status_changed"
    POLICY_OVERRIDE = "policy.override"
    USER_CREATED = "user.created"
    USER_UPDATED = "user.updated"
    TOKEN_ISSUED = "token.issued"
    TOKEN_REVOKED = "token.revoked"


class ProblemKind(StrEnum):
    ALTERED = "altered"  # the event's content no longer matches its hash
    REMOVED = "removed"  # a seq is missing (a gap, or the newest events are gone)
    INSERTED = "inserted"  # an event that is not part of the recorded chain
    REPLACED = "replaced"  # self-consistent, but the next event (or the head) recorded another hash for it


@dataclass(frozen=True, slots=True)
class AuditProblem:
    """One break of the chain, naming the event concerned."""

    seq: int
    kind: ProblemKind
    message: str
    message_zh: str

    def __str__(self) -> str:
        return f"seq {self.seq}: {self.kind}: {self.message}"


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The result of verifying the whole chain."""

    events: int  # events read
    head_seq: int
    head_hash: str
    problems: tuple[AuditProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


class AuditEventRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "seq": 42,
                    "at": "2025-03-01T01:30:00Z",
                    "actor": "admin",
                    "action": "token.issued",
                    "entity_type": "token",
                    "entity_id": "7",
                    "before_digest": None,
                    "after_digest": "5d41402abc4b2a76b9719d911017c592ae1f6b1c5e3e1f1e9b0a3c1c2d3e4f50",
                    "detail": {"user": "li.wei", "name": "erp-sync"},
                    "prev_hash": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                    "hash": "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
                }
            ]
        },
    )

    seq: int
    at: datetime
    actor: str
    action: str
    entity_type: str
    entity_id: str
    before_digest: str | None
    after_digest: str | None
    detail: dict[str, Any]
    prev_hash: str
    hash: str


class AuditProblemRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int = Field(description="The event concerned (0: the chain head itself).")
    kind: ProblemKind
    message: str
    message_zh: str


class ChainReportRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "ok": False,
                    "events": 41,
                    "head_seq": 42,
                    "head_hash": "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
                    "problems": [
                        {
                            "seq": 17,
                            "kind": "removed",
                            "message": "event 17 is missing",
                            "message_zh": "事件 17 缺失",
                        }
                    ],
                }
            ]
        },
    )

    ok: bool
    events: int
    head_seq: int
    head_hash: str
    problems: list[AuditProblemRead]
