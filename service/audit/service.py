"""Appending to and verifying the audit chain. Keyword-only functions on a session; they flush but
never commit: an event is written in the transaction of the change it records.

The chain: event n stores `prev_hash` = the hash of event n-1 (64 zeros for event 1) and
`hash` = sha256(prev_hash + canonical JSON of its other fields). The one-row `audit_chain_head`
table holds the last seq and hash; appends lock it, so concurrent writers are serialised
(PostgreSQL: `SELECT ... FOR UPDATE`; SQLite: a write to the row first, which takes the database's
write lock), and it lets `verify_chain` notice removed newest events and forged ones beyond the end.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, func, insert, select, update
from sqlalchemy.orm import Session, SessionTransaction

from service.audit.models import AuditChainHead, AuditEvent
from service.audit.schemas import AuditProblem, ChainReport, ProblemKind

GENESIS_HASH = "0" * 64
HEAD_ID = 1
ACTION_PATTERN = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
_VERIFY_BATCH = 1000
_EVENT_COLUMNS = (
    "seq",
    "at",
    "actor",
    "action",
    "entity_type",
    "entity_id",
    "before_digest",
    "after_digest",
    "detail",
    "prev_hash",
    "hash",
)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} in audit state: pass a timezone-aware one")
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable in an audit event")


def canonical_json(value: Any) -> str:
    """Keys sorted, no whitespace, UTF-8 text: the same form as `rules.validate.content_hash`, so the
    digest of a record payload equals the record's content hash. Datetimes become UTC ISO 8601."""
    return json.dumps(
        value,
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
        allow_nan=False,
        default=_json_default,
    )


def digest(state: Any) -> str | None:
    """sha256 hex of the canonical JSON of `state`; None when there is no state."""
    if state is None:
        return None
    return hashlib.sha256(canonical_json(state).encode("utf-8")).hexdigest()


def event_hash(
    *,
    prev_hash: str,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str,
    before_digest: str | None,
    after_digest: str | None,
    detail: Mapping[str, Any],
) -> str:
    fields = {
        "seq": seq,
        "at": at,
        "actor": actor,
        "action": action,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "before_digest": before_digest,
        "after_digest": after_digest,
        "detail": detail,
    }
    return hashlib.sha256((prev_hash + canonical_json(fields)).encode("utf-8")).hexdigest()


def stored_hash(event: Any) -> str:
    """The hash `event`'s fields give (equal to `event.hash` unless it was altered); `event` is an
    AuditEvent or a row with its columns."""
    return event_hash(
        prev_hash=event.prev_hash,
        seq=event.seq,
        at=event.at,
        actor=event.actor,
        action=event.action,
        entity_type=event.entity_type,
        entity_id=event.entity_id,
        before_digest=event.before_digest,
        after_digest=event.after_digest,
        detail=event.detail,
    )


# session.info key: the chain head as this session's current transaction left it (see `_known_head`).
_HEAD_INFO = "zhidu.audit.chain_head"


def _innermost_transaction(session: Session) -> SessionTransaction | None:
    return session.get_nested_transaction() or session.get_transaction()


def _remember_head(session: Session, last_seq: int, last_hash: str) -> None:
    """Remember the head this transaction holds locked (or wrote), so its next append in the same
    transaction needs no lock and read again."""
    transaction = _innermost_transaction(session)
    if transaction is not None:
        session.info[_HEAD_INFO] = (transaction, last_seq, last_hash)


def _known_head(session: Session) -> tuple[int, str] | None:
    """The head remembered in the CURRENT innermost transaction, which holds its lock; None after a
    commit, a rollback, or in another savepoint (then the head is read again, locked)."""
    known = session.info.get(_HEAD_INFO)
    if known is None:
        return None
    transaction, last_seq, last_hash = known
    current = _innermost_transaction(session)
    if current is None or transaction is not current or not current.is_active:
        return None
    return int(last_seq), str(last_hash)


_HEAD_TABLE = cast(Table, AuditChainHead.__table__)


def lock_for_append(session: Session) -> None:
    """On SQLite, take the database's write lock now (waiting up to the busy timeout). Call it
    first in a flow that will append, before its reads: a SQLite transaction that has read cannot
    later write once another writer has committed ("database is locked", at once). On PostgreSQL
    it does nothing: `append_event` locks the chain head itself, as late as possible."""
    if session.get_bind().dialect.name == "sqlite" and _known_head(session) is None:
        # A no-op write takes the lock; RETURNING reads the head in the same statement.
        row = session.execute(
            update(_HEAD_TABLE)
            .where(_HEAD_TABLE.c.id == HEAD_ID)
            .values(last_seq=_HEAD_TABLE.c.last_seq)
            .returning(_HEAD_TABLE.c.last_seq, _HEAD_TABLE.c.last_hash)
        ).one_or_none()
        if row is not None:
            _remember_head(session, int(row.last_seq), str(row.last_hash))


def _lock_head(session: Session) -> tuple[int, str]:
    """The chain's (last seq, last hash), locked until the transaction ends."""
    known = _known_head(session)
    if known is not None:
        return known
    # SQLite: a write first, so no other writer can append between our read and our write.
    lock_for_append(session)
    known = _known_head(session)
    if known is not None:
        return known
    row = session.execute(
        select(AuditChainHead.last_seq, AuditChainHead.last_hash)
        .where(AuditChainHead.id == HEAD_ID)
        .with_for_update()
    ).one_or_none()
    if row is not None:
        _remember_head(session, int(row.last_seq), str(row.last_hash))
        return int(row.last_seq), str(row.last_hash)
    # No head row (tables made without the migration): start it from the newest event, if any.
    last = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).one_or_none()
    last_seq, last_hash = (int(last.seq), str(last.hash)) if last is not None else (0, GENESIS_HASH)
    session.execute(insert(AuditChainHead).values(id=HEAD_ID, last_seq=last_seq, last_hash=last_hash))
    _remember_head(session, last_seq, last_hash)
    return last_seq, last_hash


def _write_head(session: Session, last_seq: int, last_hash: str) -> None:
    """Record the new end of the chain (the head row again if it was deleted meanwhile)."""
    result = session.execute(
        update(_HEAD_TABLE).where(_HEAD_TABLE.c.id == HEAD_ID).values(last_seq=last_seq, last_hash=last_hash)
    )
    if not getattr(result, "rowcount", 1):
        session.execute(insert(_HEAD_TABLE).values(id=HEAD_ID, last_seq=last_seq, last_hash=last_hash))
    _remember_head(session, last_seq, last_hash)


def append_event(
    session: Session,
    *,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str | int,
    before: Any = None,
    after: Any = None,
    detail: Mapping[str, Any] | None = None,
    now: datetime,
) -> AuditEvent:
    """Append one event to the chain in the session's transaction (flushed, not committed).

    `before` / `after` are the entity's states (JSON-able; None when absent, e.g. before creation):
    only their sha256 digests are stored. `detail` is stored as given (canonicalised JSON), so keep
    secrets out of it. Raises ValueError on a malformed actor, action or naive `now`.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("`now` must be a timezone-aware datetime")
    if not actor or len(actor) > 128:
        raise ValueError(f"actor must be 1-128 characters, got {actor!r}")
    if not ACTION_PATTERN.fullmatch(action) or len(action) > 64:
        raise ValueError(f"action must look like `entity.verb` (lowercase), got {action!r}")
    # Stored in the form that is hashed, so what comes back from the database hashes the same.
    stored_detail: dict[str, Any] = json.loads(canonical_json(dict(detail or {})))
    at = now.astimezone(UTC)
    last_seq, last_hash = _lock_head(session)
    seq = last_seq + 1
    event = AuditEvent(
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id),
        before_digest=digest(before),
        after_digest=digest(after),
        detail=stored_detail,
        prev_hash=last_hash,
    )
    event.hash = stored_hash(event)
    session.add(event)
    session.flush()
    _write_head(session, seq, event.hash)
    return event


@dataclasses.dataclass(frozen=True, slots=True)
class PendingEvent:
    """One event for `append_events`. Give the entity's states (`before` / `after`, digested) or,
    when they are known already, their digests (e.g. a record's content hash)."""

    actor: str
    action: str
    entity_type: str
    entity_id: str | int
    before: Any = None
    after: Any = None
    before_digest: str | None = None
    after_digest: str | None = None
    detail: Mapping[str, Any] | None = None


def append_events(session: Session, *, events: Sequence[PendingEvent], now: datetime) -> int:
    """Append `events` to the chain, in order, in the session's transaction (flushed, not committed):
    the chain head is locked once and the events inserted in bulk, so thousands of events (a large
    upload) cost a few statements. The chain is the same as `append_event` called once per event.
    Returns the seq of the last event (the head's when `events` is empty)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("`now` must be a timezone-aware datetime")
    if not events:
        head = chain_head(session)
        return head[0] if head else 0
    at = now.astimezone(UTC)
    rows: list[dict[str, Any]] = []
    last_seq, last_hash = _lock_head(session)
    for event in events:
        if not event.actor or len(event.actor) > 128:
            raise ValueError(f"actor must be 1-128 characters, got {event.actor!r}")
        if not ACTION_PATTERN.fullmatch(event.action) or len(event.action) > 64:
            raise ValueError(f"action must look like `entity.verb` (lowercase), got {event.action!r}")
        stored_detail: dict[str, Any] = json.loads(canonical_json(dict(event.detail or {})))
        row: dict[str, Any] = {
            "seq": last_seq + 1,
            "at": at,
            "actor": event.actor,
            "action": event.action,
            "entity_type": event.entity_type,
            "entity_id": str(event.entity_id),
            "before_digest": event.before_digest if event.before_digest is not None else digest(event.before),
            "after_digest": event.after_digest if event.after_digest is not None else digest(event.after),
            "detail": stored_detail,
        }
        row["hash"] = event_hash(prev_hash=last_hash, **row)
        row["prev_hash"] = last_hash
        rows.append(row)
        last_seq, last_hash = row["seq"], row["hash"]
    session.execute(
        insert(cast(Table, AuditEvent.__table__)), rows
    )  # Core: the ORM's bulk path is slower per row
    _write_head(session, last_seq, last_hash)
    return last_seq


def chain_head(session: Session) -> tuple[int, str] | None:
    """The recorded end of the chain, (last seq, last hash); None if there is no head row."""
    row = session.execute(
        select(AuditChainHead.last_seq, AuditChainHead.last_hash).where(AuditChainHead.id == HEAD_ID)
    ).one_or_none()
    return None if row is None else (int(row.last_seq), str(row.last_hash))


def _problem(seq: int, kind: ProblemKind, message: str, message_zh: str) -> AuditProblem:
    return AuditProblem(seq=seq, kind=kind, message=message, message_zh=message_zh)


def verify_chain_report(session: Session) -> ChainReport:
    """Walk the whole chain in seq order and report every break, naming the event concerned.

    - altered: an event's stored fields do not give its stored hash;
    - removed: a seq is missing, or the head records events past the last one present;
    - inserted: an event outside the recorded chain (seq below 1 or past the head);
    - replaced: an event is self-consistent but the next event (or the head) recorded another hash
      for it: it was replaced, or altered and re-hashed.

    Events and head are read in one statement (one snapshot, even under READ COMMITTED), so events
    appended concurrently are not mistaken for inserted ones.
    """
    head_seq_q = select(AuditChainHead.last_seq).where(AuditChainHead.id == HEAD_ID).scalar_subquery()
    head_hash_q = select(AuditChainHead.last_hash).where(AuditChainHead.id == HEAD_ID).scalar_subquery()
    # Columns, not entities: the session's identity map must not stand in for what is stored.
    columns = [getattr(AuditEvent, name) for name in _EVENT_COLUMNS]
    rows = session.execute(
        select(*columns, head_seq_q.label("head_seq"), head_hash_q.label("head_hash"))
        .order_by(AuditEvent.seq)
        .execution_options(yield_per=_VERIFY_BATCH)
    )
    problems: list[AuditProblem] = []
    head: tuple[int, str] | None = None
    read = 0
    prev_seq, prev_hash = 0, GENESIS_HASH
    for event in rows:
        read += 1
        head = None if event.head_seq is None else (int(event.head_seq), str(event.head_hash))
        if event.seq < 1 or (head is not None and event.seq > head[0]):
            end = head[0] if head is not None else 0
            problems.append(
                _problem(
                    event.seq,
                    ProblemKind.INSERTED,
                    f"event {event.seq} is not part of the recorded chain (which ends at {end})",
                    f"事件 {event.seq} 不属于已记录的链（链末为 {end}）",
                )
            )
            continue
        content_ok = stored_hash(event) == event.hash
        linked = True
        if event.seq > prev_seq + 1:
            problems.extend(
                _problem(missing, ProblemKind.REMOVED, f"event {missing} is missing", f"事件 {missing} 缺失")
                for missing in range(prev_seq + 1, event.seq)
            )
        else:
            linked = event.prev_hash == prev_hash
        if not content_ok:
            problems.append(
                _problem(
                    event.seq,
                    ProblemKind.ALTERED,
                    f"event {event.seq} was altered: its content does not match its hash",
                    f"事件 {event.seq} 被篡改：内容与其哈希不符",
                )
            )
        elif not linked:
            problems.append(
                _problem(
                    prev_seq,
                    ProblemKind.REPLACED,
                    f"event {prev_seq} was replaced or altered and re-hashed: event {event.seq} recorded another hash for it",
                    f"事件 {prev_seq} 被替换或篡改后重新计算了哈希：事件 {event.seq} 记录的前序哈希与之不符",
                )
            )
        prev_seq, prev_hash = event.seq, event.hash
    if read == 0:
        head = chain_head(session)
    if head is None:
        if read:
            problems.append(
                _problem(0, ProblemKind.REMOVED, "the chain head record is missing", "链头记录缺失")
            )
        return ChainReport(events=read, head_seq=prev_seq, head_hash=prev_hash, problems=tuple(problems))
    head_seq, head_hash = head
    if prev_seq < head_seq:
        problems.extend(
            _problem(missing, ProblemKind.REMOVED, f"event {missing} is missing", f"事件 {missing} 缺失")
            for missing in range(prev_seq + 1, head_seq + 1)
        )
    elif prev_hash != head_hash:
        problems.append(
            _problem(
                prev_seq,
                ProblemKind.REPLACED,
                f"event {prev_seq} was replaced or altered and re-hashed: the chain head recorded another hash for it",
                f"事件 {prev_seq} 被替换或篡改后重新计算了哈希：链头记录的哈希与之不符",
            )
        )
    return ChainReport(events=read, head_seq=head_seq, head_hash=head_hash, problems=tuple(problems))


def verify_chain(session: Session) -> list[AuditProblem]:
    """Every break of the chain (empty: intact). See `verify_chain_report`."""
    return list(verify_chain_report(session).problems)


def list_events(
    session: Session,
    *,
    actor: str | None = None,
    action: str | None = None,
    entity_type: str | None = None,
    entity_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[AuditEvent], int]:
    """Events matching every given filter, newest first (`since` inclusive, `until` exclusive),
    one page of them and the number of matches."""
    conditions: list[ColumnElement[bool]] = []
    if actor is not None:
        conditions.append(AuditEvent.actor == actor)
    if action is not None:
        conditions.append(AuditEvent.action == action)
    if entity_type is not None:
        conditions.append(AuditEvent.entity_type == entity_type)
    if entity_id is not None:
        conditions.append(AuditEvent.entity_id == entity_id)
    if since is not None:
        conditions.append(AuditEvent.at >= since)
    if until is not None:
        conditions.append(AuditEvent.at < until)
    total = session.scalar(select(func.count()).select_from(AuditEvent).where(*conditions)) or 0
    events = session.scalars(
        select(AuditEvent).where(*conditions).order_by(AuditEvent.seq.desc()).limit(limit).offset(offset)
    )
    return list(events), int(total)
