"""Rectification notices: numbering under concurrency (two threads, real transactions), gap-free
after a rollback, the lifecycle's refusals, response checks and evidence limits, a new deadline on
return, issuing on demand, waivers (expiry revives the finding, revocation), closing a notice whose
findings are all waived."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from service.db.base import engine_for, session_factory
from service.db.migrate import upgrade
from service.notices import flows, service
from service.notices.models import Notice, NoticeItem, Waiver
from service.settings import Settings
from service.violations.models import Violation
from tests.access_inspections import config_of, notice_for, runtime_of
from tests.api_fixtures import DEPT_A, DEPT_B, World, build_world
from tests.ingest_helpers import violation_in

pytest_plugins = ["tests.api_fixtures"]

SHANGHAI = ZoneInfo("Asia/Shanghai")
DEPTS = [f"D{n:02d}" for n in range(1, 11)]


# --- numbering ------------------------------------------------------------------------------------


@pytest.fixture
def engine(empty_db_url: str) -> Iterator[Engine]:
    upgrade(empty_db_url)
    engine = engine_for(empty_db_url)
    yield engine
    engine.dispose()


def _violations(factory: sessionmaker[Session], depts: list[str]) -> None:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    with factory() as session:
        for n, dept in enumerate(depts):
            session.add(
                Violation(
                    rule_id="PUR-007",
                    record_type="payment",
                    record_id=f"PM{n}",
                    dept=dept,
                    severity="critical",
                    responsible=dept,
                    clauses=["m004.3.2.6.1"],
                    message_zh="付款前没有验收",
                    message_en="paid without acceptance",
                    status="open",
                    policy_version="test",
                    first_detected_at=now,
                    last_evaluated_at=now,
                    status_changed_at=now,
                    closed_at=None,
                )
            )
        session.commit()


def test_notice_numbers_are_unique_and_gap_free_under_concurrency(engine: Engine, db_url: str) -> None:
    factory = session_factory(engine)
    settings = Settings(database_url=db_url)
    runtime, config = runtime_of(settings), config_of(settings)
    _violations(factory, DEPTS)
    now = datetime(2026, 11, 3, tzinfo=UTC)
    barrier = threading.Barrier(2)
    numbers: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def issue(depts: list[str]) -> None:
        try:
            barrier.wait()
            for dept in depts:
                with factory() as session:
                    made = flows.issue(
                        session,
                        runtime=runtime,
                        config=config,
                        dept=dept,
                        violation_ids=None,
                        actor="t",
                        now=now,
                    )
                with lock:
                    numbers.extend(n.number for n in made)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=issue, args=(DEPTS[i::2],)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert sorted(numbers) == [f"ZG-2026-11-{i:04d}" for i in range(1, 11)]
    with factory() as session:
        rows = session.execute(select(Notice.dept, Notice.seq)).all()
    assert sorted(seq for _, seq in rows) == list(range(1, 11))
    assert sorted(dept for dept, _ in rows) == DEPTS

    # a rolled-back issue gives its number back; the next month starts again at 1
    with factory() as session:
        assert service.allocate_numbers(session, month="2026-11", count=2) == [11, 12]
        session.rollback()
    with factory() as session:
        assert service.allocate_numbers(session, month="2026-11", count=1) == [11]
        assert service.allocate_numbers(session, month="2026-12", count=1) == [1]
        session.commit()


# --- lifecycle, responses, evidence ------------------------------------------------------------------


def _post(world: World, principal: str, path: str, status: int, **kwargs: Any) -> Any:
    response = world.client.post(f"/api/v1{path}", headers=world.headers(principal), **kwargs)
    assert response.status_code == status, response.text[:800]
    return response.json()


def test_the_lifecycle_refuses_steps_out_of_order(world: World) -> None:
    notice = notice_for(world)
    path = f"/notices/{notice.id}"
    refused = _post(world, "dept_a", f"{path}/responses", 409, data={"description": "x"})
    assert "acknowledge it first" in str(refused["error"])
    _post(world, "supervisor", f"{path}/verify", 409, json={})
    _post(world, "supervisor", f"{path}/return", 409, json={"reason": "x"})
    _post(world, "supervisor", f"{path}/close", 409, json={})
    _post(world, "dept_b", f"{path}/acknowledge", 404)
    _post(world, "dept_a", f"{path}/acknowledge", 200)

    # what a response may name
    error = _post(
        world, "dept_a", f"{path}/responses", 422, data={"description": "x", "item_ids": ["999999"]}
    )
    assert error["error"]["details"][0]["type"] == "unknown_item"
    violation_in(world, dept=DEPT_B, record_id="PM-OF-B")
    bad_ref = _post(
        world, "dept_a", f"{path}/responses", 422, data={"description": "x", "records": ["payment:PM-OF-B"]}
    )
    assert bad_ref["error"]["details"][0]["type"] == "unknown_record"
    many = [("files", (f"f{i}.txt", b"x", "text/plain")) for i in range(11)]
    _post(world, "dept_a", f"{path}/responses", 422, data={"description": "x"}, files=many)
    huge = [("files", ("big.bin", b"x" * (5 * 1024 * 1024 + 1), "application/octet-stream"))]
    too_large = _post(world, "dept_a", f"{path}/responses", 413, data={"description": "x"}, files=huge)
    assert too_large["error"]["code"] == "payload_too_large"

    # nothing of the refused responses was stored
    detail = world.client.get(f"/api/v1{path}", headers=world.headers("supervisor")).json()
    assert detail["responses"] == []
    assert detail["status"] == "acknowledged"
    assert [e["action"] for e in detail["events"]] == ["issued", "acknowledged"]


def test_return_may_set_a_new_deadline(world: World) -> None:
    notice = notice_for(world, state="response_submitted")
    path = f"/notices/{notice.id}/return"
    past = (datetime.now(UTC) - timedelta(days=3)).date().isoformat()
    _post(world, "supervisor", path, 422, json={"reason": "x", "due_date": past})
    later = (datetime.now(SHANGHAI) + timedelta(days=40)).date()
    _post(world, "supervisor", path, 200, json={"reason": "请补充照片", "due_date": later.isoformat()})
    detail = world.client.get(f"/api/v1/notices/{notice.id}", headers=world.headers("dept_a")).json()
    assert detail["due_date"] == later.isoformat()
    assert detail["status"] == "returned"
    assert detail["responses"][0]["decision"] == "returned"
    assert detail["events"][-1]["action"] == "deadline_changed"


def test_issuing_on_demand_lists_each_open_violation_once(world: World) -> None:
    first = violation_in(world, dept=DEPT_A)
    made = _post(world, "supervisor", "/notices", 201, json={"dept": DEPT_A})
    assert [n["dept"] for n in made] == [DEPT_A]
    assert _post(world, "supervisor", "/notices", 201, json={"dept": DEPT_A}) == []
    second = violation_in(world, dept=DEPT_A)
    (again,) = _post(world, "supervisor", "/notices", 201, json={"violation_ids": [first, second]})
    with world.session_factory() as session:
        listed = list(
            session.scalars(select(NoticeItem.violation_id).where(NoticeItem.notice_id == again["id"]))
        )
    assert listed == [second]


# --- waivers ----------------------------------------------------------------------------------------


def test_a_waiver_expires_and_revives_the_finding(
    api_app: FastAPI, api_client: TestClient, db_session_factory: sessionmaker[Session]
) -> None:
    start = datetime(2026, 5, 4, 10, tzinfo=SHANGHAI)
    with time_machine.travel(start, tick=False) as clock:
        world = build_world(api_app, api_client, db_session_factory)
        settings: Settings = api_app.state.settings
        notice = notice_for(world)
        with world.session_factory() as session:
            (item,) = service.items_of(session, notice_id=notice.id)
        body = {
            "violation_id": item.violation_id,
            "reason": "总经理特批",
            "expires_at": "2026-05-14T00:00:00+08:00",
        }
        waiver = _post(world, "supervisor", "/waivers", 201, json=body)
        assert waiver["status"] == "active"
        _post(world, "supervisor", "/waivers", 409, json=body)  # no longer open
        assert world.client.get("/api/v1/waivers", headers=world.headers("dept_b")).json()["total"] == 0
        detail = world.client.get(f"/api/v1/notices/{notice.id}", headers=world.headers("dept_a")).json()
        assert detail["items"][0]["outcome"] == "waived"
        assert detail["events"][-1]["action"] == "item_waived"

        clock.move_to(datetime(2026, 5, 13, 10, tzinfo=SHANGHAI))
        with world.session_factory() as session:
            assert (
                flows.sweep(
                    session, runtime=runtime_of(settings), config=config_of(settings), now=datetime.now(UTC)
                ).waivers_expired
                == 0
            )
        clock.move_to(datetime(2026, 5, 14, 10, tzinfo=SHANGHAI))
        with world.session_factory() as session:
            report = flows.sweep(
                session, runtime=runtime_of(settings), config=config_of(settings), now=datetime.now(UTC)
            )
        assert (report.waivers_expired, report.findings_revived) == (1, 1)
        with world.session_factory() as session:
            violation = session.get(Violation, item.violation_id)
            assert violation is not None
            assert violation.status == "open"
            expired = session.get(Waiver, waiver["id"])
            assert expired is not None
            assert expired.status == "expired"
        detail = world.client.get(f"/api/v1/notices/{notice.id}", headers=world.headers("dept_a")).json()
        assert detail["items"][0]["outcome"] == "pending"
        assert detail["events"][-1]["action"] == "item_revived"
        actions = [
            e["action"]
            for e in world.client.get(
                "/api/v1/audit", params={"entity_type": "waiver"}, headers=world.headers("supervisor")
            ).json()["items"]
        ]
        assert actions == ["waiver.expired", "waiver.granted"]

        # waived again and revoked: open again at once; a waiver in the past is refused
        past = {**body, "expires_at": "2026-05-01T00:00:00+08:00"}
        assert _post(world, "supervisor", "/waivers", 409, json=past)["error"]["code"] == "invalid_expiry"
        again = _post(
            world, "supervisor", "/waivers", 201, json={**body, "expires_at": "2026-06-30T00:00:00+08:00"}
        )
        revoked = _post(
            world, "supervisor", f"/waivers/{again['id']}/revoke", 200, json={"reason": "特批撤回"}
        )
        assert revoked["status"] == "revoked"
        _post(world, "supervisor", f"/waivers/{again['id']}/revoke", 409, json={"reason": "again"})
        with world.session_factory() as session:
            reopened = session.get(Violation, item.violation_id)
            assert reopened is not None
            assert reopened.status == "open"


def test_a_notice_whose_findings_are_all_waived_closes_without_penalty(world: World) -> None:
    notice = notice_for(world)
    with world.session_factory() as session:
        (item,) = service.items_of(session, notice_id=notice.id)
    expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    _post(
        world,
        "supervisor",
        "/waivers",
        201,
        json={"violation_id": item.violation_id, "reason": "特批", "expires_at": expires},
    )
    closed = _post(world, "supervisor", f"/notices/{notice.id}/close", 200, json={"note": "全部豁免"})
    assert closed["penalties"] == []
    assert closed["notice"]["status"] == "closed"
