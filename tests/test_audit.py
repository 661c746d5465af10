"""The audit trail: the hash chain, tamper detection (altered, removed, inserted, replaced events),
concurrent appends, the API and `zhidu audit verify`."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool
from typer.testing import CliRunner

from rules.validate import content_hash
from service.audit.models import AuditChainHead, AuditEvent
from service.audit.schemas import AuditProblem, ProblemKind
from service.audit.service import (
    GENESIS_HASH,
    append_event,
    canonical_json,
    chain_head,
    digest,
    event_hash,
    lock_for_append,
    stored_hash,
    verify_chain,
    verify_chain_report,
)
from service.db.base import engine_for, session_factory
from service.db.migrate import upgrade
from service.settings import get_settings

pytest.register_assert_rewrite("tests.api_fixtures")
pytest_plugins = ["tests.api_fixtures"]

from tests.api_fixtures import World, assert_error_shape  # noqa: E402

NOW = datetime(2025, 3, 1, 9, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
EVENTS = AuditEvent.__table__


def append(session: Session, n: int, *, actor: str = "alice", start: int = 0) -> list[AuditEvent]:
    return [
        append_event(
            session,
            actor=actor,
            action="record.submitted",
            entity_type="record",
            entity_id=f"expense_claim:C{i}",
            after={"id": f"C{i}", "amount": 100 * i},
            detail={"i": i, "source": "claims.xlsx"},
            now=NOW + timedelta(seconds=i),
        )
        for i in range(start, start + n)
    ]


def forged_row(seq: int, prev_hash: str, **overrides: Any) -> dict[str, Any]:
    """An event row with a correctly computed hash, as a forger who knows the scheme would write."""
    fields: dict[str, Any] = {
        "seq": seq,
        "at": NOW,
        "actor": "mallory",
        "action": "token.issued",
        "entity_type": "token",
        "entity_id": "999",
        "before_digest": None,
        "after_digest": None,
        "detail": {"forged": True},
        **overrides,
    }
    return {**fields, "prev_hash": prev_hash, "hash": event_hash(prev_hash=prev_hash, **fields)}


def problems_for(session: Session) -> list[tuple[int, ProblemKind]]:
    return [(p.seq, p.kind) for p in verify_chain(session)]


# --- the chain ----------------------------------------------------------------------------------


def test_appends_form_a_chain(db_session: Session) -> None:
    head = chain_head(db_session)
    assert head is not None
    events = append(db_session, 4)
    seqs = [e.seq for e in events]
    assert seqs == list(range(head[0] + 1, head[0] + 5))
    assert events[0].prev_hash == head[1]
    for before, after in itertools.pairwise(events):
        assert after.prev_hash == before.hash
    assert chain_head(db_session) == (events[-1].seq, events[-1].hash)
    db_session.expire_all()
    stored = db_session.scalars(
        select(AuditEvent).where(AuditEvent.seq.in_(seqs)).order_by(AuditEvent.seq)
    ).all()
    assert [stored_hash(e) for e in stored] == [e.hash for e in stored]
    assert all(e.at.tzinfo is not None for e in stored)
    assert verify_chain(db_session) == []


def test_digests_are_sha256_of_canonical_json_like_record_hashes(db_session: Session) -> None:
    payload = {"id": "C1", "dept": "D01", "applicant": "张三", "amount": 12_000}
    event = append_event(
        db_session,
        actor="system",
        action="record.versioned",
        entity_type="record",
        entity_id="expense_claim:C1",
        before={**payload, "amount": 10_000},
        after=payload,
        now=NOW,
    )
    assert event.after_digest == content_hash(payload)
    assert event.before_digest == content_hash({**payload, "amount": 10_000})
    assert digest(None) is None
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'


def test_detail_is_stored_as_hashed(db_session: Session) -> None:
    event = append_event(
        db_session,
        actor="system",
        action="policy.override",
        entity_type="parameter",
        entity_id="m001.max_amount",
        detail={"when": NOW, "values": (1, 2), "n": 1.5},
        now=NOW,
    )
    db_session.expire_all()
    stored = db_session.get(AuditEvent, event.seq)
    assert stored is not None
    assert stored.detail == {"when": "2025-03-01T01:30:00.000000+00:00", "values": [1, 2], "n": 1.5}
    assert stored_hash(stored) == stored.hash


@pytest.mark.parametrize(
    ("field", "value"),
    [("now", datetime(2025, 3, 1)), ("action", "Record Submitted"), ("action", "submitted"), ("actor", "")],
)
def test_append_refuses_malformed_events(db_session: Session, field: str, value: Any) -> None:
    kwargs: dict[str, Any] = {
        "actor": "alice",
        "action": "record.submitted",
        "entity_type": "record",
        "entity_id": "1",
        "now": NOW,
    }
    kwargs[field] = value
    with pytest.raises(ValueError, match=field if field != "now" else "timezone-aware"):
        append_event(db_session, **kwargs)


def test_event_hash_covers_every_field() -> None:
    base: dict[str, Any] = {
        "prev_hash": GENESIS_HASH,
        "seq": 1,
        "at": NOW,
        "actor": "a",
        "action": "x.y",
        "entity_type": "t",
        "entity_id": "1",
        "before_digest": None,
        "after_digest": None,
        "detail": {},
    }
    reference = event_hash(**base)
    changed = {
        "prev_hash": "1" * 64,
        "seq": 2,
        "at": NOW + timedelta(microseconds=1),
        "actor": "b",
        "action": "x.z",
        "entity_type": "u",
        "entity_id": "2",
        "before_digest": "0" * 64,
        "after_digest": "0" * 64,
        "detail": {"k": 1},
    }
    for key, value in changed.items():
        assert event_hash(**{**base, key: value}) != reference, key


# --- tampering ----------------------------------------------------------------------------------


def test_altered_event_is_named(db_session: Session) -> None:
    events = append(db_session, 5)
    target = events[2].seq
    db_session.execute(
        update(EVENTS).where(EVENTS.c.seq == target).values(detail={"i": 2, "source": "forged"})
    )
    problems = verify_chain(db_session)
    assert [(p.seq, p.kind) for p in problems] == [(target, ProblemKind.ALTERED)]
    assert str(target) in problems[0].message
    assert str(target) in problems[0].message_zh


def test_altered_actor_or_time_is_named(db_session: Session) -> None:
    events = append(db_session, 3)
    db_session.execute(update(EVENTS).where(EVENTS.c.seq == events[0].seq).values(actor="bob"))
    db_session.execute(update(EVENTS).where(EVENTS.c.seq == events[2].seq).values(at=NOW + timedelta(days=1)))
    assert problems_for(db_session) == [
        (events[0].seq, ProblemKind.ALTERED),
        (events[2].seq, ProblemKind.ALTERED),
    ]


def test_removed_middle_event_is_named(db_session: Session) -> None:
    events = append(db_session, 5)
    target = events[2].seq
    db_session.execute(delete(EVENTS).where(EVENTS.c.seq == target))
    problems = verify_chain(db_session)
    assert [(p.seq, p.kind) for p in problems] == [(target, ProblemKind.REMOVED)]
    assert problems[0].message == f"event {target} is missing"


def test_removed_newest_events_are_named(db_session: Session) -> None:
    events = append(db_session, 5)
    db_session.execute(delete(EVENTS).where(EVENTS.c.seq >= events[3].seq))
    assert problems_for(db_session) == [
        (events[3].seq, ProblemKind.REMOVED),
        (events[4].seq, ProblemKind.REMOVED),
    ]


def test_inserted_forged_event_is_named(db_session: Session) -> None:
    events = append(db_session, 3)
    forged = forged_row(events[-1].seq + 1, events[-1].hash)  # chained perfectly to the last event
    db_session.execute(insert(EVENTS).values(**forged))
    problems = verify_chain(db_session)
    assert [(p.seq, p.kind) for p in problems] == [(forged["seq"], ProblemKind.INSERTED)]
    assert f"ends at {events[-1].seq}" in problems[0].message


def test_inserted_event_before_the_first_is_named(db_session: Session) -> None:
    append(db_session, 2)
    db_session.execute(insert(EVENTS).values(**forged_row(0, GENESIS_HASH)))
    assert problems_for(db_session) == [(0, ProblemKind.INSERTED)]


def test_replaced_event_is_named(db_session: Session) -> None:
    # The forger removes event k and writes its own event k, correctly chained to k-1: only the
    # hash event k+1 recorded for the original betrays it.
    events = append(db_session, 5)
    target = events[2]
    db_session.execute(delete(EVENTS).where(EVENTS.c.seq == target.seq))
    db_session.execute(insert(EVENTS).values(**forged_row(target.seq, events[1].hash)))
    problems = verify_chain(db_session)
    assert [(p.seq, p.kind) for p in problems] == [(target.seq, ProblemKind.REPLACED)]
    assert f"event {target.seq + 1} recorded another hash" in problems[0].message


def test_altered_and_rehashed_event_is_named(db_session: Session) -> None:
    events = append(db_session, 4)
    target = events[1]
    db_session.execute(
        update(EVENTS).where(EVENTS.c.seq == target.seq).values(detail={"i": 1, "source": "x"})
    )
    db_session.expire_all()
    stored = db_session.get(AuditEvent, target.seq)
    assert stored is not None
    db_session.execute(update(EVENTS).where(EVENTS.c.seq == target.seq).values(hash=stored_hash(stored)))
    assert problems_for(db_session) == [(target.seq, ProblemKind.REPLACED)]


def test_newest_event_replaced_is_caught_by_the_head(db_session: Session) -> None:
    events = append(db_session, 3)
    last = events[-1]
    db_session.execute(delete(EVENTS).where(EVENTS.c.seq == last.seq))
    db_session.execute(insert(EVENTS).values(**forged_row(last.seq, events[-2].hash)))
    problems = verify_chain(db_session)
    assert [(p.seq, p.kind) for p in problems] == [(last.seq, ProblemKind.REPLACED)]
    assert "chain head" in problems[0].message


def test_missing_head_is_reported(db_session: Session) -> None:
    append(db_session, 2)
    db_session.execute(delete(AuditChainHead))
    assert problems_for(db_session) == [(0, ProblemKind.REMOVED)]
    # Appending again restarts the head from the newest event: the chain continues intact.
    append(db_session, 1, start=10)
    assert verify_chain(db_session) == []


def test_report_counts_events_and_names_the_head(db_session: Session) -> None:
    events = append(db_session, 3)
    report = verify_chain_report(db_session)
    assert report.ok
    assert report.events >= 3
    assert (report.head_seq, report.head_hash) == (events[-1].seq, events[-1].hash)
    problem = AuditProblem(
        seq=3, kind=ProblemKind.REMOVED, message="event 3 is missing", message_zh="事件 3 缺失"
    )
    assert str(problem) == "seq 3: removed: event 3 is missing"


# --- concurrency --------------------------------------------------------------------------------


def test_concurrent_appends_keep_one_valid_chain(empty_db_url: str) -> None:
    """Two writers appending at once, each event in its own committed transaction, on a real
    database (PostgreSQL: row lock on the head; SQLite: the write lock)."""
    upgrade(empty_db_url)
    engine = engine_for(empty_db_url, poolclass=NullPool)
    factory = session_factory(engine)
    per_writer = 30
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def writer(name: str) -> None:
        try:
            barrier.wait()
            for i in range(per_writer):
                with factory() as session:
                    # As a flow does: lock first (SQLite), read, append, commit.
                    lock_for_append(session)
                    session.execute(select(AuditEvent.seq).limit(1)).all()
                    append_event(
                        session,
                        actor=name,
                        action="record.submitted",
                        entity_type="record",
                        entity_id=f"{name}-{i}",
                        detail={"i": i},
                        now=datetime.now(UTC),
                    )
                    session.commit()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("w1", "w2")]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
        with factory() as session:
            seqs = session.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq)).all()
            assert seqs == list(range(1, 2 * per_writer + 1))
            actors = session.scalars(select(AuditEvent.actor)).all()
            assert sorted(set(actors)) == ["w1", "w2"]
            assert verify_chain(session) == []
            assert chain_head(session) == (2 * per_writer, session.get(AuditEvent, 2 * per_writer).hash)  # type: ignore[union-attr]
    finally:
        engine.dispose()


# --- API ----------------------------------------------------------------------------------------


def test_audit_lists_account_changes_with_filters(world: World) -> None:
    client, headers = world.client, world.headers("supervisor")
    revoked = world.token_rows["revoked"]
    response = client.get("/api/v1/audit", params={"action": "token.revoked"}, headers=headers)
    assert response.status_code == 200
    page = response.json()
    assert str(revoked.id) in {e["entity_id"] for e in page["items"]}
    assert all(e["action"] == "token.revoked" for e in page["items"])
    assert page["total"] == len(page["items"])

    user = world.users["dept_a"]
    response = client.get(
        "/api/v1/audit", params={"entity_type": "user", "entity_id": str(user.id)}, headers=headers
    )
    items = response.json()["items"]
    assert [e["action"] for e in items] == ["user.created"]
    assert items[0]["actor"] == "system"
    assert items[0]["detail"]["username"] == user.username
    assert items[0]["after_digest"]
    assert items[0]["before_digest"] is None

    response = client.get("/api/v1/audit", params={"limit": 2, "offset": 1}, headers=headers)
    page = response.json()
    assert len(page["items"]) == 2
    assert (page["limit"], page["offset"]) == (2, 1)
    assert page["total"] >= 14  # 7 users and 7 tokens were created, one revoked, one user updated
    seqs = [e["seq"] for e in page["items"]]
    assert seqs == sorted(seqs, reverse=True)

    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    response = client.get("/api/v1/audit", params={"since": future}, headers=headers)
    assert response.json()["items"] == []
    response = client.get("/api/v1/audit", params={"until": future, "actor": "nobody"}, headers=headers)
    assert response.json()["total"] == 0


def test_audit_refuses_a_time_without_offset(world: World) -> None:
    response = world.client.get(
        "/api/v1/audit", params={"since": "2025-03-01T09:30:00"}, headers=world.headers("admin")
    )
    assert response.status_code == 422
    error = assert_error_shape(response.json(), "validation_error")
    assert error["details"][0]["loc"] == ["query", "since"]


def test_audit_never_shows_token_secrets(world: World) -> None:
    response = world.client.get("/api/v1/audit", params={"limit": 500}, headers=world.headers("admin"))
    text = response.text
    for secret in world.tokens.values():
        assert secret not in text
        assert secret[8:20] not in text


def test_verify_endpoint_reports_tampering(world: World) -> None:
    client, headers = world.client, world.headers("admin")
    report = client.get("/api/v1/audit/verify", headers=headers).json()
    assert report["ok"] is True
    assert report["problems"] == []
    with world.session_factory() as session:
        seq = session.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1).offset(3)).one()
        session.execute(update(EVENTS).where(EVENTS.c.seq == seq).values(actor="mallory"))
        session.commit()
    report = client.get("/api/v1/audit/verify", headers=headers).json()
    assert report["ok"] is False
    assert report["problems"] == [
        {
            "seq": seq,
            "kind": "altered",
            "message": f"event {seq} was altered: its content does not match its hash",
            "message_zh": f"事件 {seq} 被篡改：内容与其哈希不符",
        }
    ]


# --- CLI ----------------------------------------------------------------------------------------


def test_cli_audit_verify(empty_db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from service.cli import app

    monkeypatch.setenv("ZHIDU_DATABASE_URL", empty_db_url)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        upgrade(empty_db_url)
        engine = engine_for(empty_db_url, poolclass=NullPool)
        try:
            with session_factory(engine)() as session:
                events = append(session, 4)
                session.commit()
            result = runner.invoke(app, ["audit", "verify"])
            assert result.exit_code == 0, result.output
            assert "intact" in result.output
            assert events[-1].hash in result.output.replace("\n", "")
            with engine.begin() as connection:
                connection.execute(delete(EVENTS).where(EVENTS.c.seq == events[1].seq))
                connection.execute(update(EVENTS).where(EVENTS.c.seq == events[3].seq).values(detail={}))
            result = runner.invoke(app, ["audit", "verify"])
            assert result.exit_code == 1
            assert f"seq {events[1].seq}: removed" in result.output
            assert f"seq {events[3].seq}: altered" in result.output
        finally:
            engine.dispose()
    finally:
        get_settings.cache_clear()
