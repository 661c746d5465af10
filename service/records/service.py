"""Storing and reading records. Keyword-only functions on a session; they flush but never commit
(the caller's flow owns the transaction)."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import (
    Executable,
    Table,
    bindparam,
    delete,
    func,
    insert,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.orm import Session

from service.records.models import Record, RecordKey, RecordKeyField, Submission
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
    key_fields: Collection[str] | None = None,
) -> UpsertOutcome:
    """Store canonical payloads of one record type; `hashes[i]` is the content hash of `payloads[i]`.
    `key_fields`: the fields of `record_type` registered in `record_key_fields`, when the caller has
    just read them in this transaction (`ensure_key_fields`); None: read them here.

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
    for rid, row_id, version, content_hash in _read_chunked(
        session, _CURRENT_VERSIONS, ids, record_type=record_type
    ):
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

    key_fields = (
        registered_key_fields(session, record_type=record_type) if key_fields is None else sorted(key_fields)
    )
    for row_ids in _chunks(superseded, size):
        session.execute(update(Record).where(Record.id.in_(row_ids)).values(is_current=False))
        if key_fields:
            session.execute(delete(RecordKey).where(RecordKey.record_pk.in_(row_ids)))
    if new_rows and key_fields:
        records = cast(Table, Record.__table__)
        pks = session.scalars(
            insert(records).returning(records.c.id, sort_by_parameter_order=True), new_rows
        ).all()
        keys = key_rows(record_type, key_fields, zip(pks, (row["payload"] for row in new_rows), strict=True))
        if keys:
            session.execute(insert(cast(Table, RecordKey.__table__)), keys)
    elif new_rows:
        # Core inserts: the ORM's bulk path costs several times more per row
        session.execute(insert(cast(Table, Record.__table__)), new_rows)
    return UpsertOutcome(record_type=record_type, results=tuple(results))


# --- the key index (record_keys) ------------------------------------------------------------------

KEY_TEXT_MAX = 256  # longer values are indexed by their digest


def key_text(value: Any) -> str | None:
    """How a payload value is written in `record_keys.value` (None: not indexed, i.e. missing).

    Strings as they are (a string longer than KEY_TEXT_MAX by `sha256:<hex>`, so index entries stay
    small); ints as digits; bools as true/false. Equal values give equal texts; a look-up through the
    index may return a few more rows than asked (never fewer), which the engines' joins filter.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
    if len(text) > KEY_TEXT_MAX:
        return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return text


def key_rows(
    record_type: str, fields: Sequence[str], rows: Iterable[tuple[int, Mapping[str, Any]]]
) -> list[dict[str, Any]]:
    """`record_keys` rows for (record pk, payload) pairs."""
    out: list[dict[str, Any]] = []
    for pk, payload in rows:
        for name in fields:
            text = key_text(payload.get(name))
            if text is not None:
                out.append({"record_pk": pk, "record_type": record_type, "field": name, "value": text})
    return out


def registered_key_fields(session: Session, *, record_type: str) -> list[str]:
    """The fields of `record_type` whose values `record_keys` holds."""
    return list(
        session.scalars(
            select(RecordKeyField.field)
            .where(RecordKeyField.record_type == record_type)
            .order_by(RecordKeyField.field)
        )
    )


def all_key_fields(session: Session) -> set[tuple[str, str]]:
    return {(t, f) for t, f in session.execute(select(RecordKeyField.record_type, RecordKeyField.field))}


def ensure_key_fields(session: Session, *, fields: Collection[tuple[str, str]]) -> set[tuple[str, str]]:
    """Make sure `record_keys` holds the values of every (record type, field) in `fields`: register
    the missing pairs and index the current records' values for them. Returns every registered
    pair (one query when nothing is missing). Pairs registered earlier and no longer asked for are
    kept (they cost a little space only)."""
    registered = all_key_fields(session)
    missing = sorted(set(fields) - registered)
    if not missing:
        return registered
    session.execute(insert(RecordKeyField), [{"record_type": t, "field": f} for t, f in missing])
    by_type: dict[str, list[str]] = {}
    for record_type, name in missing:
        by_type.setdefault(record_type, []).append(name)
    for record_type, names in by_type.items():
        rows = session.execute(
            select(Record.id, Record.payload)
            .where(Record.record_type == record_type, Record.is_current == true())
            .execution_options(yield_per=5000)
        )
        for partition in rows.partitions():
            keys = key_rows(record_type, names, ((pk, payload) for pk, payload in partition))
            if keys:
                session.execute(insert(cast(Table, RecordKey.__table__)), keys)
    return registered | set(missing)


def register_key_fields(session: Session, *, fields: Collection[tuple[str, str]]) -> list[tuple[str, str]]:
    """`ensure_key_fields`, returning the pairs it added."""
    before = all_key_fields(session)
    ensure_key_fields(session, fields=fields)
    return sorted(set(fields) - before)


# --- current versions by id, key or type (what the evaluation reads) --------------------------------

# (row id, business id, content hash) of a current version
RecordRef = tuple[int, str, str]

# The reads evaluation on arrival makes several times per request, built once (their SQL is cached
# by the statement, and building them costs more than running them on small inputs) and run on the
# session's connection: they select columns, so the ORM's per-statement work buys nothing.
_REF_COLUMNS = (Record.id, Record.record_id, Record.content_hash)
_CURRENT_OF_TYPE = (Record.record_type == bindparam("record_type"), Record.is_current == true())
_REFS_BY_ID = select(*_REF_COLUMNS).where(
    *_CURRENT_OF_TYPE, Record.record_id.in_(bindparam("values", expanding=True))
)
_REFS_BY_KEY = (
    select(*_REF_COLUMNS)
    .join(RecordKey, RecordKey.record_pk == Record.id)
    .where(
        RecordKey.record_type == bindparam("record_type"),
        RecordKey.field == bindparam("field"),
        RecordKey.value.in_(bindparam("values", expanding=True)),
        Record.is_current == true(),
    )
)
_REFS_ALL = select(*_REF_COLUMNS).where(*_CURRENT_OF_TYPE)
_PAYLOADS_BY_PK = select(Record.id, Record.payload).where(Record.id.in_(bindparam("values", expanding=True)))
_CURRENT_PAYLOADS = select(Record.record_id, Record.payload).where(
    *_CURRENT_OF_TYPE, Record.record_id.in_(bindparam("values", expanding=True))
)
_CURRENT_VERSIONS = select(Record.record_id, Record.id, Record.version, Record.content_hash).where(
    *_CURRENT_OF_TYPE, Record.record_id.in_(bindparam("values", expanding=True))
)


def _read(session: Session, statement: Executable, **params: Any) -> list[Any]:
    """The rows of a prebuilt read, run on the session's connection in its transaction, after
    flushing what the session holds (as the ORM's autoflush would: pending objects are seen)."""
    if session.autoflush:
        session.flush()
    return list(session.connection().execute(statement, params))


def _read_chunked(
    session: Session, statement: Executable, values: Sequence[Any], **params: Any
) -> Iterator[Any]:
    """The rows of `statement` for `values` (its expanding parameter), a chunk of them at a time."""
    for chunk in _chunks(values, chunk_size(session)):
        yield from _read(session, statement, values=list(chunk), **params)


def current_refs_by_id(session: Session, *, record_type: str, record_ids: Collection[str]) -> list[RecordRef]:
    return [
        (int(pk), rid, h)
        for pk, rid, h in _read_chunked(
            session, _REFS_BY_ID, sorted(set(record_ids)), record_type=record_type
        )
    ]


def current_refs_by_key(
    session: Session, *, record_type: str, field: str, values: Collection[Any]
) -> list[RecordRef]:
    """Current versions whose registered `field` has one of `values` (payload values); through the
    index, so possibly a few more (see `key_text`)."""
    texts = sorted({t for t in (key_text(v) for v in values) if t is not None})
    seen: dict[int, RecordRef] = {}
    for pk, rid, h in _read_chunked(session, _REFS_BY_KEY, texts, record_type=record_type, field=field):
        seen[int(pk)] = (int(pk), rid, h)
    return list(seen.values())


def current_refs_all(session: Session, *, record_type: str) -> list[RecordRef]:
    return [(int(pk), rid, h) for pk, rid, h in _read(session, _REFS_ALL, record_type=record_type)]


def payloads_by_pk(session: Session, *, pks: Collection[int]) -> dict[int, dict[str, Any]]:
    return {int(pk): payload for pk, payload in _read_chunked(session, _PAYLOADS_BY_PK, sorted(set(pks)))}


def current_payloads(
    session: Session, *, record_type: str, record_ids: Collection[str]
) -> dict[str, dict[str, Any]]:
    """The current payload of each of `record_ids` that exists."""
    return dict(_read_chunked(session, _CURRENT_PAYLOADS, sorted(set(record_ids)), record_type=record_type))


def payloads_of_versions(
    session: Session, *, record_type: str, versions: Mapping[str, int]
) -> dict[str, dict[str, Any]]:
    """The payload of version `versions[record_id]` of each record (current or not)."""
    out: dict[str, dict[str, Any]] = {}
    wanted = sorted(versions.items())
    for chunk in _chunks(wanted, chunk_size(session) // 2):
        rows = _read(
            session,
            select(Record.record_id, Record.payload).where(
                Record.record_type == record_type, tuple_(Record.record_id, Record.version).in_(chunk)
            ),
        )
        out.update((rid, payload) for rid, payload in rows)
    return out


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
