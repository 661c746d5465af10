"""Shapes of records data: results of storing (plain dataclasses, cheap at 100k rows) and API reads."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict


class Outcome(StrEnum):
    CREATED = "created"  # a new record id: version 1
    UNCHANGED = "unchanged"  # same content hash as the current version: nothing written
    VERSIONED = "versioned"  # changed: the old version is kept (no longer current), a new one added


@dataclass(frozen=True, slots=True)
class RecordResult:
    record_id: str
    outcome: Outcome
    version: int  # the current version after the upsert


@dataclass(frozen=True, slots=True)
class UpsertOutcome:
    """What `upsert_records` did, one result per input payload, in input order."""

    record_type: str
    results: tuple[RecordResult, ...]

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.results if r.outcome is outcome)

    def counts(self) -> dict[Outcome, int]:
        counted = Counter(r.outcome for r in self.results)
        return {o: counted.get(o, 0) for o in Outcome}

    @property
    def created(self) -> int:
        return self.count(Outcome.CREATED)

    @property
    def unchanged(self) -> int:
        return self.count(Outcome.UNCHANGED)

    @property
    def versioned(self) -> int:
        return self.count(Outcome.VERSIONED)


@dataclass(frozen=True, slots=True)
class TypeSummary:
    """One record type of a load: its submission row and counts."""

    record_type: str
    submission_id: int
    stored: int
    unchanged: int
    versioned: int
    rejected: int


@dataclass(frozen=True, slots=True)
class LoadSummary:
    submitted_by: str
    source: str
    submitted_at: datetime
    types: tuple[TypeSummary, ...]

    @property
    def stored(self) -> int:
        return sum(t.stored for t in self.types)

    @property
    def unchanged(self) -> int:
        return sum(t.unchanged for t in self.types)

    @property
    def versioned(self) -> int:
        return sum(t.versioned for t in self.types)

    @property
    def rejected(self) -> int:
        return sum(t.rejected for t in self.types)


class RecordRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    record_type: str
    record_id: str
    dept: str | None
    version: int
    payload: dict[str, Any]
    content_hash: str
    submitted_by: str
    submitted_at: datetime
    source: str
    is_current: bool
    submission_id: int | None


class SubmissionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    record_type: str
    submitted_by: str
    submitted_at: datetime
    source: str
    stored: int
    unchanged: int
    versioned: int
    rejected: int


class DeptTypeCount(BaseModel):
    dept: str | None
    record_type: str
    count: int
