"""Evaluation on arrival: which stored records to judge again when records arrive, and judging them.

When records of type T are stored (created or versioned), the records whose verdict can change are
(1) those records themselves, and (2) the stored records that read T through a join (see
`service.evaluation.joins`): each reverse path is followed from the arriving records' key values,
of the new versions and of the versions they replace, through the key index. Every subject is then
judged by the streaming engine with its related records fetched from the database (`DbSource`), in
the caller's transaction, so records the transaction itself wrote are seen.

Consistency: callers hold `lock_evaluation` from before they store until they commit, so
stores-and-evaluations happen one after the other. A subject is judged again whenever it or one of
the records it joins arrives, each time against everything committed before plus the transaction's
own writes; so after the last of them arrived, its verdict is the one all of them give together,
whichever order they came in and however the submissions interleaved.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import deque
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from rules.findings import Finding, describe
from rules.lang.ir import Aggregate
from service.audit.service import lock_for_append
from service.evaluation.joins import ID, ReversePath
from service.evaluation.runtime import Runtime
from service.evaluation.source import DbSource
from service.records import service as records

try:
    import fcntl
except ImportError:  # Windows has none: processes there wait on the database's own lock
    fcntl = None  # type: ignore[assignment]

# The PostgreSQL advisory lock serialising store-and-evaluate: (our name, the schema), so databases
# sharing a server in separate schemas do not wait for each other.
ADVISORY_LOCK = (
    "SELECT pg_advisory_xact_lock(hashtext('zhidu.evaluation-on-arrival'), hashtext(current_schema()))"
)


class _Turn:
    """The turn to store and evaluate in one database, for the threads of this process, given in the
    order they asked (a plain lock promises no order: under load a request could wait behind many
    later ones, the long tail of the latency). On a SQLite file it also holds an OS lock on a file
    next to the database while it is held, so the processes serving it (`zhidu serve --workers N`)
    queue in the kernel and are woken at once, instead of polling SQLite's write lock."""

    def __init__(self, lock_file: Path | None) -> None:
        self._mutex = threading.Lock()
        self._waiting: deque[threading.Lock] = deque()
        self._held = False
        self._lock_file = lock_file
        self._fd: int | None = None

    def acquire(self) -> None:
        with self._mutex:
            if not self._held:
                self._held = True
                wakeup = None
            else:
                wakeup = threading.Lock()
                wakeup.acquire()
                self._waiting.append(wakeup)
        if wakeup is not None:
            wakeup.acquire()  # released by the holder handing the turn over
        try:
            self._lock_processes()
        except BaseException:
            self._hand_over()
            raise

    def release(self) -> None:
        try:
            self._unlock_processes()
        finally:
            self._hand_over()

    def _hand_over(self) -> None:
        with self._mutex:
            if self._waiting:
                self._waiting.popleft().release()  # the turn passes on, still held
            else:
                self._held = False

    def _lock_processes(self) -> None:
        if self._lock_file is None or fcntl is None:
            return
        if self._fd is None:
            self._fd = os.open(self._lock_file, os.O_RDWR | os.O_CREAT, 0o600)
            weakref.finalize(self, os.close, self._fd)  # the turn lives as long as its engine
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def _unlock_processes(self) -> None:
        if self._fd is not None and fcntl is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)


_TURNS: weakref.WeakKeyDictionary[Engine, _Turn] = weakref.WeakKeyDictionary()
_TURNS_LOCK = threading.Lock()


def _lock_file(engine: Engine) -> Path | None:
    """`<database file>.evaluation.lock` for a SQLite file; None otherwise (PostgreSQL's advisory
    lock wakes its waiters itself; an in-memory database has one process)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or database in (None, "", ":memory:") or database.startswith("file:"):
        return None
    return Path(f"{database}.evaluation.lock")


@contextmanager
def evaluation_turn(session: Session) -> Iterator[None]:
    """This process' turn to store and evaluate in `session`'s database: threads queue here in
    order, woken as soon as the turn is free, instead of polling the database's lock (SQLite's busy
    handler sleeps up to 100 ms between tries); on SQLite, processes queue on a file lock the same
    way. Hold it around the whole transaction, `lock_evaluation` and commit included. One turn per
    engine (an app has one). `lock_evaluation` is what guarantees the serialisation, for any writer."""
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    with _TURNS_LOCK:
        turn = _TURNS.get(engine)
        if turn is None:
            turn = _TURNS[engine] = _Turn(_lock_file(engine))
    turn.acquire()
    try:
        yield
    finally:
        turn.release()


def lock_evaluation(session: Session) -> None:
    """Serialise store-and-evaluate until the transaction ends. PostgreSQL: a transaction-level
    advisory lock (statements after it see every transaction that held it before, committed).
    SQLite: the database's write lock, taken now (`lock_for_append`), with the same effect."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(ADVISORY_LOCK))
    else:
        lock_for_append(session)


@dataclass(frozen=True)
class Judgement:
    """The verdicts of every rule of `record_type` in force over the current versions of
    `record_ids`: `findings` are the violations; the other (rule, record) pairs comply."""

    record_type: str
    record_ids: tuple[str, ...]
    rule_ids: tuple[str, ...]
    findings: tuple[Finding, ...]


def prepare(session: Session, runtime: Runtime) -> set[tuple[str, str]]:
    """Make sure `record_keys` indexes every field the rules in force join on (back-filling the
    records stored before a field was needed); every (type, field) it indexes, which the storing
    that follows may use instead of reading them again. Cheap when nothing is missing; call it
    under `lock_evaluation` before storing."""
    return records.ensure_key_fields(session, fields=runtime.key_fields)


def _values(payloads: Iterable[Mapping[str, Any]], name: str) -> set[Any]:
    return {p.get(name) for p in payloads if p.get(name) is not None}


def follow(source: DbSource, path: ReversePath, start: set[Any] | None) -> set[str]:
    """The ids of the subjects `path` reaches from `start` (values of the arriving records' start
    field; None: every subject)."""
    values: set[Any] | None = start
    for step in path.steps:
        refs = source.matching(step.type, step.match, values)
        if step.take == ID:
            values = {rid for _, rid, _ in refs}
        else:
            payloads = records.payloads_by_pk(source.session, pks=[r[0] for r in refs])
            values = _values(payloads.values(), step.take)
        if not values:
            return set()
    return {str(v) for v in values or ()}


def subjects_of(
    source: DbSource,
    runtime: Runtime,
    *,
    record_type: str,
    stored: Sequence[Mapping[str, Any]],
    replaced: Sequence[Mapping[str, Any]] = (),
) -> dict[str, set[str]]:
    """Record type -> ids to judge again, for `stored` records of `record_type` (new versions) that
    replaced `replaced` (their previous versions, for changed records)."""
    subjects: dict[str, set[str]] = {}
    if record_type in runtime.rules_by_type and stored:
        subjects[record_type] = {str(p["id"]) for p in stored}
    both = [*stored, *replaced]
    for path in runtime.plan.reverse.get(record_type, ()):
        start = None if path.start is None else _values(both, path.start)
        if start is not None and not start:
            continue
        found = follow(source, path, start)
        if found:
            subjects.setdefault(path.subject_type, set()).update(found)
    return subjects


def judge(
    session: Session, runtime: Runtime, subjects: Mapping[str, Collection[str]], *, as_of: datetime
) -> list[Judgement]:
    """Judge the current versions of `subjects` (type -> ids) at `as_of` with the streaming engine."""
    source = DbSource(session, runtime.codec, runtime.key_fields)
    as_of_ms = int(as_of.timestamp() * 1000)
    library = runtime.library
    out: list[Judgement] = []
    for record_type in sorted(subjects):
        rules = runtime.rules_by_type.get(record_type, ())
        if not rules or not subjects[record_type]:
            continue
        encoded = source.current(record_type, subjects[record_type])
        ids = tuple(str(i) for i in encoded["id"].tolist())
        verdicts = sorted(runtime.engine.evaluate(record_type, encoded, source, as_of_ms=as_of_ms))
        findings: list[Finding] = []
        if verdicts:
            flagged_ids = {v.record_id for v in verdicts}
            flagged = encoded[encoded["id"].isin(flagged_ids).to_numpy()]
            typed = runtime.codec.typed(record_type, flagged)
            frames = _related_for_messages(source, rules, record_type, flagged, verdicts)
            findings = describe(
                verdicts,
                rules,
                {record_type: typed},
                frames,
                library.model.types,
                library.parameters,
                as_of_ms=as_of_ms,
                tz=library.company.tz,
            )
        out.append(Judgement(record_type, ids, tuple(r.id for r in rules), tuple(findings)))
    return out


def _related_for_messages(
    source: DbSource,
    rules: Sequence[Any],
    record_type: str,
    flagged: pd.DataFrame,
    verdicts: Sequence[Any],
) -> dict[str, pd.DataFrame]:
    """Encoded frames `describe` needs: the flagged records, and the records the aggregates of the
    flagged rules sum (their messages show the totals)."""
    frames: dict[str, pd.DataFrame] = {record_type: flagged}
    flagged_rules = {v.rule for v in verdicts}
    for rule in rules:
        if rule.id not in flagged_rules:
            continue
        for derivation in rule.compiled.derivations:
            if not isinstance(derivation, Aggregate):
                continue
            for part in derivation.parts:
                if part.keys:
                    related_field, record_field = part.keys[0]
                    rows = source.fetch(part.type, related_field, flagged[record_field].unique().tolist())
                else:
                    rows = source.scan(part.type)
                previous = frames.get(part.type)
                if previous is not None and len(previous):
                    both = pd.concat([previous, rows])
                    rows = both[~both.index.duplicated()]
                frames[part.type] = rows
    return frames
