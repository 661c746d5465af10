"""Use cases that own a transaction."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from service.records import service
from service.records.schemas import LoadSummary, TypeSummary

# One record: its canonical payload and that payload's content hash (sha256 hex).
PayloadWithHash = tuple[Mapping[str, Any], str]


def load_dataset(
    session_factory: Callable[[], Session],
    *,
    records: Mapping[str, Sequence[PayloadWithHash]],
    submitted_by: str,
    source: str,
    rejected: Mapping[str, int] | None = None,
    now: datetime | None = None,
) -> LoadSummary:
    """Store a dataset (record type -> payloads with hashes) in ONE transaction: all or nothing.

    Each record type becomes one submission carrying its counts; `rejected` adds the number of
    rows validation refused per type (a type with only rejected rows still gets a submission).
    On any exception the transaction is rolled back and the exception propagates.
    """
    now = now or datetime.now(UTC)
    rejected = rejected or {}
    record_types = list(dict.fromkeys([*records, *rejected]))
    summaries: list[TypeSummary] = []
    with session_factory() as session, session.begin():
        for record_type in record_types:
            items = records.get(record_type, ())
            submission = service.create_submission(
                session,
                record_type=record_type,
                submitted_by=submitted_by,
                source=source,
                now=now,
                rejected=rejected.get(record_type, 0),
            )
            outcome = service.upsert_records(
                session,
                record_type=record_type,
                payloads=[payload for payload, _ in items],
                hashes=[content_hash for _, content_hash in items],
                submitted_by=submitted_by,
                source=source,
                now=now,
                submission_id=submission.id,
            )
            submission.stored = outcome.created
            submission.unchanged = outcome.unchanged
            submission.versioned = outcome.versioned
            summaries.append(
                TypeSummary(
                    record_type=record_type,
                    submission_id=submission.id,
                    stored=submission.stored,
                    unchanged=submission.unchanged,
                    versioned=submission.versioned,
                    rejected=submission.rejected,
                )
            )
    return LoadSummary(submitted_by=submitted_by, source=source, submitted_at=now, types=tuple(summaries))


def record_counts(session_factory: Callable[[], Session]) -> list[tuple[str | None, str, int]]:
    """Current records per (department, record type)."""
    with session_factory() as session:
        return service.counts_by_dept_and_type(session)
