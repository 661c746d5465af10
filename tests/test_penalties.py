"""Penalties: the ladder's step by severity and occurrence (same person, same rule, within the
window; the last step repeats; overturned penalties do not count), the department when nobody is
responsible, the supervisor's decision, appeals (window, one only, a reduction must be lighter),
ledgers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import count
from typing import Any

import pytest
import time_machine
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from service.notices.models import Notice, NoticeItem
from service.penalties import service
from service.penalties.models import Penalty
from service.settings import Settings
from service.violations.models import Violation
from tests.access_inspections import PERSON, penalty_in, runtime_of
from tests.api_fixtures import DEPT_A, World, build_world

pytest_plugins = ["tests.api_fixtures"]

T0 = datetime(2026, 1, 10, 2, tzinfo=UTC)
_SEQ = count(1)


def confirmed_finding(
    session: Session,
    *,
    rule: str = "EXP-001",
    severity: str = "minor",
    person: str | None = PERSON,
    dept: str = DEPT_A,
) -> tuple[Notice, NoticeItem]:
    """A closed notice with one confirmed finding (rows as the flows leave them)."""
    n = next(_SEQ)
    violation = Violation(
        rule_id=rule,
        record_type="expense_claim",
        record_id=f"EC{n}",
        dept=dept,
        severity=severity,
        responsible=person,
        clauses=["m001.7.1.1"],
        message_zh="未附发票",
        message_en="no invoice",
        status="closed",
        policy_version="test",
        first_detected_at=T0,
        last_evaluated_at=T0,
        status_changed_at=T0,
        closed_at=T0,
    )
    session.add(violation)
    session.flush()
    notice = Notice(
        number=f"ZG-2000-01-{n:04d}",
        month="2000-01",
        seq=n,
        dept=dept,
        inspection_id=None,
        status="closed",
        escalation_level=0,
        issued_at=T0,
        issued_by="t",
        due_date=date(2026, 1, 25),
        due_at=T0 + timedelta(days=15),
        department_head=None,
        status_changed_at=T0,
    )
    session.add(notice)
    session.flush()
    item = NoticeItem(
        notice_id=notice.id,
        violation_id=violation.id,
        rule_id=rule,
        record_type="expense_claim",
        record_id=f"EC{n}",
        severity=severity,
        responsible=person,
        clauses=["m001.7.1.1"],
        message_zh="未附发票",
        message_en="no invoice",
        rectify_days=30,
        outcome="confirmed",
        verification=None,
    )
    session.add(item)
    session.flush()
    return notice, item


def propose(session: Session, settings: Settings, when: datetime, **kwargs: Any) -> Penalty:
    notice, item = confirmed_finding(session, **kwargs)
    (penalty,) = service.propose(
        session, library=runtime_of(settings).library, notice=notice, items=[item], actor="sup", now=when
    )
    return penalty


def steps(p: Penalty) -> tuple[int, str, int | None, int | None]:
    return (p.occurrence, p.kind, p.amount_cents, p.points)


def test_the_ladder_counts_repetitions_within_the_window(db_session: Session, db_url: str) -> None:
    settings = Settings(database_url=db_url)
    ladder = runtime_of(settings).library.penalties
    assert ladder.repeat_window_days == 365
    first = propose(db_session, settings, T0)
    assert steps(first) == (1, "warning", None, None)
    assert steps(propose(db_session, settings, T0 + timedelta(days=100))) == (
        2,
        "performance_points",
        None,
        2,
    )
    assert steps(propose(db_session, settings, T0 + timedelta(days=200))) == (3, "fine", 20000, None)
    fourth = propose(db_session, settings, T0 + timedelta(days=300))
    assert steps(fourth) == (4, "fine", 20000, None)  # the last step repeats
    # another person, another rule: first occurrences
    assert propose(db_session, settings, T0 + timedelta(days=300), person="李四").occurrence == 1
    assert (
        propose(db_session, settings, T0 + timedelta(days=300), rule="EXP-002", severity="major").occurrence
        == 1
    )
    # a year after the first: it left the window (days 100, 200, 300 remain)
    assert propose(db_session, settings, T0 + timedelta(days=370)).occurrence == 4
    # an overturned penalty does not count as a repetition
    fourth.status = "overturned"
    db_session.flush()
    assert propose(db_session, settings, T0 + timedelta(days=380)).occurrence == 4
    # critical: a fine, then demotion, then demotion again
    kinds = [
        propose(db_session, settings, T0 + timedelta(days=d), rule="PUR-007", severity="critical").kind
        for d in (1, 2, 3)
    ]
    assert kinds == ["fine", "demotion", "demotion"]


def test_without_a_responsible_person_the_department_answers(db_session: Session, db_url: str) -> None:
    settings = Settings(database_url=db_url)
    penalty = propose(db_session, settings, T0, person=None)
    assert penalty.person == DEPT_A


def _post(world: World, principal: str, path: str, status: int, body: dict[str, Any]) -> Any:
    response = world.client.post(f"/api/v1{path}", json=body, headers=world.headers(principal))
    assert response.status_code == status, response.text[:800]
    return response.json()


def test_decisions_and_appeals(world: World) -> None:
    pid = penalty_in(world)
    path = f"/penalties/{pid}"
    _post(world, "supervisor", f"{path}/decision", 422, {"action": "adjust", "kind": "fine", "amount": "100"})
    _post(world, "supervisor", f"{path}/decision", 422, {"action": "confirm", "kind": "warning"})
    _post(world, "supervisor", f"{path}/decision", 422, {"action": "adjust", "kind": "fine", "reason": "x"})
    _post(world, "dept_a", f"{path}/appeal", 409, {"reason": "not decided yet"})
    decided = _post(
        world,
        "supervisor",
        f"{path}/decision",
        200,
        {"action": "adjust", "kind": "fine", "amount": "500.00", "reason": "情节较重"},
    )
    assert decided["penalty"] == {"kind": "fine", "amount": "500.00", "points": None}
    assert decided["proposed"]["kind"] == "fine"  # PUR-007 is critical: a fine of 2,000 first
    assert decided["proposed"]["amount"] == "2000.00"
    _post(world, "supervisor", f"{path}/decision", 409, {"action": "confirm"})
    _post(world, "dept_a", f"{path}/appeal", 201, {"reason": "验收单已补"})
    heavier = {"outcome": "reduced", "reason": "x", "kind": "fine", "amount": "800.00"}
    refused = _post(world, "supervisor", f"{path}/appeal/decision", 409, heavier)
    assert refused["error"]["code"] == "not_a_reduction"
    _post(
        world,
        "supervisor",
        f"{path}/appeal/decision",
        422,
        {"outcome": "upheld", "reason": "x", "kind": "warning"},
    )
    overturned = _post(
        world, "supervisor", f"{path}/appeal/decision", 200, {"outcome": "overturned", "reason": "属实"}
    )
    assert overturned["status"] == "overturned"
    _post(world, "supervisor", f"{path}/appeal/decision", 409, {"outcome": "upheld", "reason": "again"})

    kept = penalty_in(world)
    _post(world, "supervisor", f"/penalties/{kept}/decision", 200, {"action": "confirm"})
    ledger = world.client.get(
        f"/api/v1/penalties/ledger/depts/{DEPT_A}", headers=world.headers("manager_a")
    ).json()
    assert ledger["totals"]["penalties"] == 1
    assert ledger["totals"]["overturned"] == 1
    assert ledger["totals"]["fines"] == "2000.00"
    assert ledger["by_person"] == {DEPT_A: ledger["totals"]}  # PUR-007: the department answers
    listed = world.client.get(
        "/api/v1/penalties", params={"status": "overturned"}, headers=world.headers("dept_a")
    )
    assert [p["id"] for p in listed.json()["items"]] == [pid]
    assert world.client.get(f"/api/v1/penalties/{pid}", headers=world.headers("dept_b")).status_code == 404


def test_an_appeal_comes_within_the_appeal_period(
    api_app: FastAPI, api_client: TestClient, db_session_factory: sessionmaker[Session]
) -> None:
    with time_machine.travel(datetime(2026, 6, 1, 2, tzinfo=UTC), tick=False) as clock:
        world = build_world(api_app, api_client, db_session_factory)
        pid = penalty_in(world, status="confirmed")
        clock.move_to(datetime(2026, 6, 17, 3, tzinfo=UTC))  # 16 days: the window is 15 (inspections.yaml)
        late = _post(world, "dept_a", f"/penalties/{pid}/appeal", 409, {"reason": "迟到的申诉"})
        assert late["error"]["code"] == "appeal_period_over"


@pytest.mark.parametrize("cents", [None, 12345])
def test_money_is_kept_in_cents(cents: int | None) -> None:
    assert service.to_cents(service.from_cents(cents)) == cents
