"""Storing and reading records. Keyword-only functions on a session; they flush but never commit
(the caller's flow owns the transaction)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import func, insert, select, true, update
from sqlalchemy.orm import Session

from service.records.models import Record, Submission
from service.records.schemas import Outcome, RecordResult, UpsertOutcome

_T = TypeVar("_T")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")

# Ids per lookup query. SQLite builds before 3.32 allow only 999 bound parameters per statement;
# PostgreSQL allows 65535.
_CHUNK = {"sqlite": 900}
_DEFAULT_CHUNK = 10_000


def chunk_size(session: Session) -> int:
    return _CHUNK.get(session.get_bind().dialect.name, _DEFAULT_CHUNK)


def _chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _record_id(record_type: str, index: int, payload: Mapping[str, Any]) -> str:
    value = payload.get("id")
    if not isinstance(value, str) or not value:
        raise ValueError(
            f"{record_type} payload #{index + 1}: `id` must be a non-empty string, got {value!r}"
        )
    return value


def _dept(record_type: str, index: int, payload: Mapping[str, Any]) -> str | None:
    value = payload.get("dept")
    if value is not None and not isinstance(value, str):
        raise ValueError(
            f"{record_type} payload #{index + 1}: `dept` must be a string or absent, got {value!r}"
        )
    return value


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("`now` must be a timezone-aware datetime")


def upsert_records(
    session: Session,
    *,
    record_type: str,
    payloads: Sequence[Mapping[str, Any]],
    hashes: Sequence[str],
    submitted_by: str,
    source: str,
    now: datetime,
    submission_id: int | None = None,
) -> UpsertOutcome:
    """Store canonical payloads of one record type; `hashes[i]` is the content hash of `payloads[i]`.

    Per record: a new id is `created` (version 1); the same hash as the current version is
    `unchanged` (nothing written); a different hash is `versioned` (the current row stops being
    current and is kept; version n+1 becomes current). Current versions are looked up one query
    per chunk of ids and new rows are inserted in bulk, so 100k records take a few hundred
    statements. Raises ValueError (before writing anything) on malformed input, including an id
    that occurs twice in `payloads`.
    """
    if len(payloads) != len(hashes):
        raise ValueError(f"{record_type}: {len(payloads)} payloads but {len(hashes)} hashes")
    _require_aware(now)
    ids = [_record_id(record_type, i, p) for i, p in enumerate(payloads)]
    depts = [_dept(record_type, i, p) for i, p in enumerate(payloads)]
    for i, content_hash in enumerate(hashes):
        if not isinstance(content_hash, str) or not _SHA256_HEX.fullmatch(content_hash):
            raise ValueError(f"{record_type} payload #{i + 1}: content hash must be 64 lowercase hex digits")
    repeated = sorted(rid for rid, n in Counter(ids).items() if n > 1)
    if repeated:
        shown = ", ".join(repeated[:20]) + (" ..." if len(repeated) > 20 else "")
        raise ValueError(
            f"{record_type}: {len(repeated)} id(s) occur more than once in one submission: {shown}"
        )

    size = chunk_size(session)
    current: dict[str, tuple[int, int, str]] = {}  # record_id -> (row id, version, content hash)
    for chunk in _chunks(ids, size):
        rows = session.execute(
            select(Record.record_id, Record.id, Record.version, Record.content_hash).where(
                Record.record_type == record_type,
                Record.is_current == true(),
                Record.record_id.in_(chunk),
            )
        )
        for rid, row_id, version, content_hash in rows:
            current[rid] = (row_id, version, content_hash)

    results: list[RecordResult] = []
    superseded: list[int] = []
    new_rows: list[dict[str, Any]] = []
    for payload, content_hash, rid, dept in zip(payloads, hashes, ids, depts, strict=True):
        found = current.get(rid)
        if found is None:
            version, outcome = 1, Outcome.CREATED
        elif found[2] == content_hash:
            results.append(RecordResult(rid, Outcome.UNCHANGED, found[1]))
            continue
        else:
            superseded.append(found[0])
            version, outcome = found[1] + 1, Outcome.VERSIONED
        results.append(RecordResult(rid, outcome, version))
        new_rows.append(
            {
                "record_type": record_type,
                "record_id": rid,
                "dept": dept,
                "version": version,
                "payload": dict(payload),
                "content_hash": content_hash,
                "submitted_by": submitted_by,
                "submitted_at": now,
                "source": source,
                "is_current": True,
                "submission_id": submission_id,
            }
        )

    for row_ids in _chunks(superseded, size):
        session.execute(update(Record).where(Record.id.in_(row_ids)).values(is_current=False))
    if new_rows:
        session.execute(insert(Record), new_rows)
    return UpsertOutcome(record_type=record_type, results=tuple(results))


def create_submission(
    session: Session,
    *,
    record_type: str,
    submitted_by: str,
    source: str,
    now: datetime,
    rejected: int = 0,
) -> Submission:
    """Add a submission (counts zero except `rejected`) and flush, so it has an id."""
    _require_aware(now)
    submission = Submission(
        record_type=record_type,
        submitted_by=submitted_by,
        submitted_at=now,
        source=source,
        stored=0,
        unchanged=0,
        versioned=0,
        rejected=rejected,
    )
    session.add(submission)
    session.flush()
    return submission


def current_record(session: Session, *, record_type: str, record_id: str) -> Record | None:
    return session.scalars(
        select(Record).where(
            Record.record_type == record_type, Record.record_id == record_id, Record.is_current == true()
        )
    ).one_or_none()


def current_records(session: Session, *, record_type: str, dept: str | None = None) -> list[Record]:
    """Current versions of one type, by record id; `dept` restricts to one department (None: all)."""
    query = select(Record).where(Record.record_type == record_type, Record.is_current == true())
    if dept is not None:
        query = query.where(Record.dept == dept)
    return list(session.scalars(query.order_by(Record.record_id)))


def record_history(session: Session, *, record_type: str, record_id: str) -> list[Record]:
    """Every version of one record, oldest first."""
    return list(
        session.scalars(
            select(Record)
            .where(Record.record_type == record_type, Record.record_id == record_id)
            .order_by(Record.version)
        )
    )


def counts_by_dept_and_type(session: Session) -> list[tuple[str | None, str, int]]:
    """Number of current records per (dept, record_type); records without a dept come last."""
    rows = session.execute(
        select(Record.dept, Record.record_type, func.count())
        .where(Record.is_current == true())
        .group_by(Record.dept, Record.record_type)
    )
    counts = [(dept, record_type, int(n)) for dept, record_type, n in rows]
    # Sorted here, not in SQL: NULL placement and collations differ between SQLite and PostgreSQL.
    return sorted(counts, key=lambda c: (c[0] is None, c[0] or "", c[1]))
