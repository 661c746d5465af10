"""What the submit path does to stay short, and that it keeps its guarantees: the audit chain head
is locked and read once per transaction (savepoints and rollbacks read it again); the turn to store
and evaluate is given in arrival order, and on a SQLite file it also excludes other engines
(processes) through a file lock; routes run in a bounded thread pool with a connection each; and
`zhidu serve --workers 2` evaluates correctly across processes. Speed itself is measured in
`tests/bench_api.py`, not here."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

pytest.register_assert_rewrite("tests.api_fixtures")
pytest_plugins = ["tests.api_fixtures"]

from service.api.app import API_THREADS, create_app  # noqa: E402
from service.audit.service import append_event, chain_head, verify_chain  # noqa: E402
from service.db.base import engine_for, session_factory  # noqa: E402
from service.db.migrate import upgrade  # noqa: E402
from service.evaluation.arrival import _lock_file, _Turn, evaluation_turn  # noqa: E402
from service.settings import Settings  # noqa: E402
from service.violations.models import Violation  # noqa: E402
from tests.api_fixtures import World  # noqa: E402
from tests.ingest_helpers import AS_OF, approval, claim, post  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 4, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def fixed_clock(request: pytest.FixtureRequest) -> None:
    if "world" in request.fixturenames:
        request.getfixturevalue("world").app.state.clock = lambda: AS_OF


@contextlib.contextmanager
def statements(world: World) -> Iterator[list[str]]:
    """The SQL statements the app's sessions run meanwhile."""
    seen: list[str] = []
    bind = world.session_factory.kw["bind"]
    engine = bind.engine

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


# --- round trips of one submission -------------------------------------------------------------------


def test_a_submission_locks_and_reads_the_chain_head_once(world: World) -> None:
    """Records and violations append in two batches; only the first locks and reads the head."""
    assert post(world, "admin", "expense_claim", claim("LAT1")).status_code == 200
    with statements(world) as seen:
        response = post(world, "admin", "approval", approval("LATAP1", "LAT1"))
    assert response.status_code == 200, response.text
    assert response.json()["violations"]["closed"] or response.json()["violations"]["still_open"]
    head = [s for s in seen if "audit_chain_head" in s]
    reads = [s for s in head if s.startswith("SELECT") or "RETURNING" in s]
    writes = [s for s in head if s.startswith("UPDATE") and "RETURNING" not in s]
    assert len(reads) == 1, head  # SQLite: UPDATE ... RETURNING (the write lock); PostgreSQL: FOR UPDATE
    assert len(writes) == 2, head  # the records' events, then the violations'
    assert not [s for s in seen if "record_key_fields" in s and "record_type = " in s], seen
    with world.session_factory() as session:
        assert verify_chain(session) == []


def test_an_unchanged_record_reads_no_previous_version(world: World) -> None:
    assert post(world, "admin", "expense_claim", claim("LAT2")).status_code == 200
    with statements(world) as seen:
        again = post(world, "admin", "expense_claim", claim("LAT2"))
    assert again.json()["counts"]["unchanged"] == 1
    assert not [s for s in seen if "records.payload" in s and "records.version" in s]


def test_a_versioned_record_audits_the_digest_of_the_version_it_replaced(world: World) -> None:
    from rules.validate import content_hash
    from service.audit.models import AuditEvent

    first = post(world, "admin", "expense_claim", claim("LAT3"))
    second = post(world, "admin", "expense_claim", claim("LAT3", amount="990.00"))
    assert second.json()["records"][0]["outcome"] == "versioned"
    with world.session_factory() as session:
        events = list(
            session.scalars(
                select(AuditEvent)
                .where(AuditEvent.entity_id == "expense_claim:LAT3")
                .order_by(AuditEvent.seq)
            )
        )
    assert [e.action for e in events] == ["record.submitted", "record.versioned"]
    assert events[1].before_digest == events[0].after_digest
    assert events[0].after_digest is not None
    assert first.status_code == 200
    assert content_hash({"x": 1}) != events[0].after_digest


# --- the chain head kept for the transaction --------------------------------------------------------


def _append(session: Session, i: int) -> None:
    append_event(
        session,
        actor="alice",
        action="record.submitted",
        entity_type="record",
        entity_id=f"expense_claim:H{i}",
        after={"i": i},
        now=NOW + timedelta(seconds=i),
    )


def test_the_head_is_read_again_after_a_savepoint_is_rolled_back(db_session: Session) -> None:
    start = chain_head(db_session)
    assert start is not None
    _append(db_session, 1)
    savepoint = db_session.begin_nested()
    _append(db_session, 2)
    savepoint.rollback()
    _append(db_session, 3)  # continues from event 1: event 2 was rolled back
    with db_session.begin_nested():
        _append(db_session, 4)
    _append(db_session, 5)
    head = chain_head(db_session)
    assert head is not None
    assert head[0] == start[0] + 4
    assert verify_chain(db_session) == []


def test_the_head_is_read_again_in_the_next_transaction(db_session: Session) -> None:
    _append(db_session, 1)
    db_session.commit()
    _append(db_session, 2)
    db_session.rollback()
    _append(db_session, 3)
    db_session.commit()
    assert verify_chain(db_session) == []


# --- the turn --------------------------------------------------------------------------------------


def test_the_turn_is_given_in_arrival_order() -> None:
    turn = _Turn(None)
    turn.acquire()
    order: list[int] = []
    threads = []
    for i in range(6):
        thread = threading.Thread(target=lambda i=i: (turn.acquire(), order.append(i), turn.release()))
        thread.start()
        threads.append(thread)
        deadline = time.monotonic() + 10
        while len(turn._waiting) < i + 1:  # this one queues before the next starts
            assert time.monotonic() < deadline
            time.sleep(0.001)
    turn.release()
    for thread in threads:
        thread.join(10)
    assert order == list(range(6))
    turn.acquire()  # free again
    turn.release()


def test_on_a_sqlite_file_the_turn_excludes_other_engines(tmp_path: Path) -> None:
    """Two engines on one file stand for two processes: the second waits for the first's turn."""
    url = f"sqlite:///{tmp_path / 'turn.db'}"
    upgrade(url)
    first, second = engine_for(url), engine_for(url)
    assert _lock_file(first) == Path(f"{tmp_path / 'turn.db'}.evaluation.lock")
    assert _lock_file(engine_for("sqlite://")) is None
    holding, waited = threading.Event(), threading.Event()
    got: list[float] = []
    released_at: list[float] = []

    def hold() -> None:
        with session_factory(first)() as session, evaluation_turn(session):
            holding.set()
            waited.wait(10)
            time.sleep(0.2)
            released_at.append(time.monotonic())

    def take() -> None:
        holding.wait(10)
        with session_factory(second)() as session:
            waited.set()
            with evaluation_turn(session):
                got.append(time.monotonic())

    threads = [threading.Thread(target=hold), threading.Thread(target=take)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert got
    assert released_at
    assert got[0] >= released_at[0]
    first.dispose()
    second.dispose()


# --- thread pool and connections ---------------------------------------------------------------------


def test_every_route_thread_has_a_connection(tmp_path: Path) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'pool.db'}"))
    assert app.state.engine.pool.size() == API_THREADS
    app.state.engine.dispose()
    memory = create_app(Settings(database_url="sqlite:///:memory:"))
    memory.state.engine.dispose()


# --- several worker processes ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_worker_processes_evaluate_like_one(tmp_path: Path) -> None:
    """Claims and their approvals sent at once to `zhidu serve --workers 2`: every claim ends with the
    verdicts it has alone (EXP-002, no approval, closed by its approval), the chain is intact."""
    from service.accounts import flows

    url = f"sqlite:///{tmp_path / 'workers.db'}"
    upgrade(url)
    engine = engine_for(url)
    with session_factory(engine)() as session:
        user = flows.create_user(session, username="loader", role="supervisor", actor="system")
        issued = flows.issue_token(session, user_id=user.id, name="t", actor="system")
    assert issued is not None
    port = _free_port()
    env = {**os.environ, "ZHIDU_DATABASE_URL": url, "ZHIDU_LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--workers", "2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "zhidu serve --workers 2 did not answer"
            time.sleep(0.2)
        failures: list[str] = []

        def client(k: int) -> None:
            with httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {issued[1]}"}, timeout=60
            ) as http:
                for i in range(6):
                    rid = f"W{k}-{i}"
                    for path, body in (
                        ("/records/expense_claim", claim(rid)),
                        ("/records/approval", approval(f"AP{rid}", rid)),
                    ):
                        response = http.post(path, json=body)
                        if response.status_code != 200:
                            failures.append(f"{response.status_code} {response.text[:200]}")

        threads = [threading.Thread(target=client, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert failures == []
    finally:
        process.terminate()
        process.wait(30)
    with session_factory(engine)() as session:
        assert verify_chain(session) == []
        statuses = {
            (v.rule_id, v.record_id): v.status
            for v in session.scalars(select(Violation).where(Violation.rule_id == "EXP-002"))
        }
    assert len(statuses) == 36
    assert set(statuses.values()) == {"closed"}
    engine.dispose()
