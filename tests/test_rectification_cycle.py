"""The whole loop through the API, with time moved deterministically (time-machine):

records → inspection → notice → acknowledged → partial response → returned → reminders → overdue →
escalation (department head, then general manager) → corrected records → verified → closed →
penalties by the ladder; the same person repeating the same rule next month gets the ladder's second
step; an appeal reduces it; the ledger adds it up; every step is in the audit trail.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import time_machine
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from service.notices import flows
from service.settings import Settings
from tests.access_inspections import PERSON, config_of, department, runtime_of, store
from tests.access_inspections import claim_approval as approval
from tests.access_inspections import expense as claim
from tests.api_fixtures import DEPT_A, DEPT_B, World, build_world

pytest_plugins = ["tests.api_fixtures"]

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(month: int, day: int, hour: int = 10, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, tzinfo=SHANGHAI)


def call(world: World, principal: str, method: str, path: str, status: int, **kwargs: Any) -> Any:
    response: httpx.Response = world.client.request(
        method, f"/api/v1{path}", headers=world.headers(principal), **kwargs
    )
    assert response.status_code == status, f"{method} {path} as {principal}: {response.text[:800]}"
    return (
        response.json() if response.headers.get("content-type", "").startswith("application/json") else None
    )


def sweep(world: World) -> dict[str, Any]:
    settings: Settings = world.app.state.settings
    with world.session_factory() as session:
        return flows.sweep(
            session,
            runtime=runtime_of(settings),
            config=config_of(settings),
            now=datetime.now(SHANGHAI),
        ).model_dump()


def test_full_rectification_cycle(
    api_app: FastAPI, api_client: TestClient, db_session_factory: sessionmaker[Session]
) -> None:
    with time_machine.travel(at(10, 1), tick=False) as clock:
        world = build_world(api_app, api_client, db_session_factory)
        settings: Settings = api_app.state.settings
        now = datetime.now(SHANGHAI)
        store(
            db_session_factory,
            settings,
            "department",
            [department(DEPT_A, "王经理"), department(DEPT_B, "李经理")],
            now=now,
        )
        # October: C1 has no invoice (EXP-001, minor), C2 no finance review (EXP-003, major).
        store(
            db_session_factory,
            settings,
            "expense_claim",
            [
                claim("C1", "2026-10-05T10:00:00+08:00", "2026-10-20T10:00:00+08:00", invoice=None),
                claim("C2", "2026-10-06T10:00:00+08:00", "2026-10-21T10:00:00+08:00", invoice="12345678"),
                claim(
                    "C9",
                    "2026-10-07T10:00:00+08:00",
                    "2026-10-22T10:00:00+08:00",
                    invoice="22345678",
                    dept=DEPT_B,
                ),
            ],
            now=now,
        )
        store(
            db_session_factory,
            settings,
            "approval",
            [
                approval("A1", "C1", "dept_head", "2026-10-06T10:00:00+08:00"),
                approval("A2", "C1", "finance", "2026-10-07T10:00:00+08:00"),
                approval("A3", "C2", "dept_head", "2026-10-07T10:00:00+08:00"),
                approval("A8", "C9", "dept_head", "2026-10-08T10:00:00+08:00"),
                approval("A9", "C9", "finance", "2026-10-09T10:00:00+08:00"),
            ],
            now=now,
        )

        # --- the inspection of October, after its grace days --------------------------------
        clock.move_to(at(11, 6))
        inspection = call(world, "supervisor", "POST", "/inspections", 201, json={"period": "2026-10"})
        assert inspection["complete"] is True
        assert inspection["as_of"].startswith("2026-11-05T16:00:00")  # Nov 1 + 5 grace days, local midnight
        summaries = {s["dept"]: s for s in inspection["summaries"]}
        assert summaries[DEPT_A]["findings"] == {"minor": 1, "major": 1, "critical": 0}
        assert summaries[DEPT_A]["records_checked"] == 2
        assert summaries[DEPT_B]["findings"] == {"minor": 0, "major": 0, "critical": 0}
        assert summaries[DEPT_B]["score"] == 100.0
        # 100 × (1 − (1 + 3) / 2), never below zero
        assert summaries[DEPT_A]["score"] == 0.0
        assert [n["number"] for n in inspection["notices"]] == ["ZG-2026-11-0001"]
        notice_id = inspection["notices"][0]["id"]

        notice = call(world, "dept_a", "GET", f"/notices/{notice_id}", 200)
        assert notice["status"] == "issued"
        assert notice["dept"] == DEPT_A
        assert notice["department_head"] == "王经理"
        # deadline: the issue date + the shortest rectification days (EXP-003, major: 15)
        assert notice["due_date"] == "2026-11-21"
        items = {i["record_id"]: i for i in notice["items"]}
        assert {(i["rule"], i["responsible"]) for i in items.values()} == {
            ("EXP-001", PERSON),
            ("EXP-003", PERSON),
        }
        assert items["C1"]["clauses"][0]["id"] == "m001.7.1.1"
        assert items["C1"]["clauses"][0]["text"]["zh"]
        call(world, "dept_b", "GET", f"/notices/{notice_id}", 404)
        call(world, "manager_a", "GET", f"/notices/{notice_id}", 200)

        # --- acknowledged; a partial response (C1 corrected) --------------------------------
        clock.move_to(at(11, 7))
        assert (
            call(world, "dept_a", "POST", f"/notices/{notice_id}/acknowledge", 200)["status"]
            == "acknowledged"
        )
        call(world, "dept_a", "POST", f"/notices/{notice_id}/acknowledge", 409)
        clock.move_to(at(11, 10))
        fixed = claim("C1", "2026-10-05T10:00:00+08:00", "2026-10-20T10:00:00+08:00", invoice="32345678")
        stored = call(world, "dept_a", "POST", "/records/expense_claim", 200, json=fixed)
        assert [v["rule"] for v in stored["violations"]["closed"]] == ["EXP-001"]
        detail = call(
            world,
            "dept_a",
            "POST",
            f"/notices/{notice_id}/responses",
            201,
            data={
                "description": "C1 已补交发票",
                "item_ids": [str(items["C1"]["id"])],
                "records": ["expense_claim:C1"],
            },
            files=[("files", ("invoice.pdf", b"%PDF-1.4 invoice 32345678", "application/pdf"))],
        )
        assert detail["status"] == "response_submitted"
        auto = detail["responses"][0]["verification"]
        assert auto["all_rectified"] is True  # of what it addresses
        assert [c["record_id"] for c in auto["items"]] == ["C1"]
        evidence = detail["responses"][0]["evidence"][0]
        assert evidence["filename"] == "invoice.pdf"

        # --- the supervisor re-runs the rules: C2 still fails; verify refused, returned -------
        check = call(world, "supervisor", "GET", f"/notices/{notice_id}/verification", 200)
        assert {c["record_id"]: c["violated"] for c in check["items"]} == {"C1": False, "C2": True}
        refused = call(world, "supervisor", "POST", f"/notices/{notice_id}/verify", 409, json={})
        assert refused["error"]["code"] == "not_rectified"
        returned = call(
            world,
            "supervisor",
            "POST",
            f"/notices/{notice_id}/return",
            200,
            json={"reason": "C2 仍无财务审核"},
        )
        assert returned["status"] == "returned"

        # --- reminders before the deadline, then overdue and escalated twice -----------------
        clock.move_to(at(11, 18))
        assert sweep(world)["reminders"] == 0
        clock.move_to(at(11, 19))
        assert sweep(world)["reminders"] == 1  # 3 days before
        assert sweep(world)["reminders"] == 0  # once
        clock.move_to(at(11, 21))
        assert sweep(world)["reminders"] == 1  # 1 day before
        clock.move_to(at(11, 22))
        report = sweep(world)
        assert (report["escalations"], report["reminders"]) == (1, 1)
        notice = call(world, "supervisor", "GET", f"/notices/{notice_id}", 200)
        assert notice["overdue"] is True
        assert notice["escalation_level"] == 1
        assert notice["reminders"][-1]["recipients"][1] == {
            "role": "department_head",
            "dept": DEPT_A,
            "name": "王经理",
        }
        overdue = call(world, "manager_a", "GET", "/notices", 200, params={"overdue": "true"})
        assert [n["number"] for n in overdue["items"]] == ["ZG-2026-11-0001"]
        clock.move_to(at(11, 26))
        assert sweep(world) | {"at": None} == {
            "at": None,
            "reminders": 1,  # overdue for 4 days: the reminder of the second 3-day period
            "escalations": 0,
            "waivers_expired": 0,
            "findings_revived": 0,
            "missing_selfchecks": 0,
        }
        clock.move_to(at(11, 29))
        assert sweep(world)["escalations"] == 1
        notice = call(world, "dept_a", "GET", f"/notices/{notice_id}", 200)
        assert notice["escalation_level"] == 2
        keys = [r["key"] for r in notice["reminders"]]
        assert keys == [
            "due:3",
            "due:1",
            "escalation:1",
            "overdue:0",
            "overdue:1",
            "escalation:2",
            "overdue:2",
        ]
        assert notice["reminders"][5]["recipients"][-1]["role"] == "general_manager"

        # --- corrected: the finance review of C2 arrives; full response; verified; closed -----
        clock.move_to(at(11, 30))
        stored = call(
            world,
            "supervisor",
            "POST",
            "/records/approval",
            200,
            json=approval("A4", "C2", "finance", "2026-11-30T09:00:00+08:00"),
        )
        assert [v["rule"] for v in stored["violations"]["closed"]] == ["EXP-003"]
        detail = call(
            world,
            "dept_a",
            "POST",
            f"/notices/{notice_id}/responses",
            201,
            data={"description": "C2 已补财务审核"},
        )
        assert detail["responses"][-1]["verification"]["all_rectified"] is True
        call(world, "dept_a", "POST", f"/notices/{notice_id}/verify", 403, json={})
        verified = call(
            world, "supervisor", "POST", f"/notices/{notice_id}/verify", 200, json={"note": "已核验"}
        )
        assert verified["status"] == "verified"
        assert {i["outcome"] for i in verified["items"]} == {"rectified"}
        assert verified["overdue"] is False
        closed = call(world, "supervisor", "POST", f"/notices/{notice_id}/close", 200, json={"note": "结案"})
        assert closed["notice"]["status"] == "closed"
        proposed = {p["rule"]: p for p in closed["penalties"]}
        assert proposed["EXP-001"]["occurrence"] == 1
        assert proposed["EXP-001"]["proposed"] == {"kind": "warning", "amount": None, "points": None}
        assert proposed["EXP-003"]["proposed"] == {"kind": "performance_points", "amount": None, "points": 5}
        assert {p["person"] for p in proposed.values()} == {PERSON}
        call(
            world,
            "supervisor",
            "POST",
            f"/penalties/{proposed['EXP-001']['id']}/decision",
            200,
            json={"action": "confirm"},
        )
        adjusted = call(
            world,
            "supervisor",
            "POST",
            f"/penalties/{proposed['EXP-003']['id']}/decision",
            200,
            json={"action": "adjust", "kind": "performance_points", "points": 3, "reason": "逾期后主动整改"},
        )
        assert adjusted["penalty"] == {"kind": "performance_points", "amount": None, "points": 3}
        assert adjusted["adjusted"] is True

        # --- November: the same person, the same rule again -> the ladder's second step -------
        clock.move_to(at(11, 10))
        store(
            db_session_factory,
            settings,
            "expense_claim",
            [claim("C3", "2026-11-10T10:00:00+08:00", "2026-11-25T10:00:00+08:00", invoice=None)],
            now=datetime.now(SHANGHAI),
        )
        store(
            db_session_factory,
            settings,
            "approval",
            [
                approval("A5", "C3", "dept_head", "2026-11-11T10:00:00+08:00"),
                approval("A6", "C3", "finance", "2026-11-12T10:00:00+08:00"),
            ],
            now=datetime.now(SHANGHAI),
        )
        clock.move_to(at(12, 6))
        second = call(
            world, "supervisor", "POST", "/inspections", 201, json={"period": "2026-11", "depts": [DEPT_A]}
        )
        assert [n["number"] for n in second["notices"]] == ["ZG-2026-12-0001"]
        notice_id = second["notices"][0]["id"]
        call(world, "dept_a", "POST", f"/notices/{notice_id}/acknowledge", 200)
        fixed = claim("C3", "2026-11-10T10:00:00+08:00", "2026-11-25T10:00:00+08:00", invoice="42345678")
        call(world, "dept_a", "POST", "/records/expense_claim", 200, json=fixed)
        call(
            world,
            "dept_a",
            "POST",
            f"/notices/{notice_id}/responses",
            201,
            data={"description": "已补交发票"},
        )
        call(world, "supervisor", "POST", f"/notices/{notice_id}/verify", 200, json={})
        (repeat,) = call(world, "supervisor", "POST", f"/notices/{notice_id}/close", 200, json={})[
            "penalties"
        ]
        assert (repeat["rule"], repeat["person"], repeat["occurrence"]) == ("EXP-001", PERSON, 2)
        assert repeat["proposed"] == {"kind": "performance_points", "amount": None, "points": 2}
        call(
            world,
            "supervisor",
            "POST",
            f"/penalties/{repeat['id']}/decision",
            200,
            json={"action": "confirm"},
        )

        # --- appeal (申诉): the department appeals, the supervisor reduces -------------------
        clock.move_to(at(12, 8))
        call(world, "manager_a", "POST", f"/penalties/{repeat['id']}/appeal", 403, json={"reason": "x"})
        call(world, "dept_b", "POST", f"/penalties/{repeat['id']}/appeal", 404, json={"reason": "x"})
        appealed = call(
            world,
            "dept_a",
            "POST",
            f"/penalties/{repeat['id']}/appeal",
            201,
            json={"reason": "发票系统故障，次日已补交"},
        )
        assert appealed["status"] == "appealed"
        call(world, "dept_a", "POST", f"/penalties/{repeat['id']}/appeal", 409, json={"reason": "again"})
        decided = call(
            world,
            "supervisor",
            "POST",
            f"/penalties/{repeat['id']}/appeal/decision",
            200,
            json={"outcome": "reduced", "reason": "情有可原", "kind": "warning"},
        )
        assert decided["status"] == "reduced"
        assert decided["penalty"]["kind"] == "warning"
        assert decided["appeal"]["status"] == "reduced"

        ledger = call(world, "manager_a", "GET", f"/penalties/ledger/persons/{PERSON}", 200)
        assert ledger["totals"]["penalties"] == 3
        assert ledger["totals"]["by_kind"] == {"performance_points": 1, "warning": 2}
        assert ledger["totals"]["points"] == 3
        dept = call(world, "dept_a", "GET", f"/penalties/ledger/depts/{DEPT_A}", 200)
        assert dept["by_person"][PERSON]["penalties"] == 3
        call(world, "dept_b", "GET", f"/penalties/ledger/depts/{DEPT_A}", 404)
        assert call(world, "dept_b", "GET", f"/penalties/ledger/persons/{PERSON}", 200)["penalties"] == []

        # --- the audit trail has every step, and its chain holds ---------------------------
        actions = {
            e["action"]
            for e in call(world, "supervisor", "GET", "/audit", 200, params={"limit": 500})["items"]
        }
        assert {
            "inspection.completed",
            "notice.issued",
            "notice.acknowledged",
            "notice.response_submitted",
            "notice.returned",
            "notice.reminded",
            "notice.escalated",
            "notice.verified",
            "notice.closed",
            "penalty.proposed",
            "penalty.confirmed",
            "penalty.adjusted",
            "penalty.appealed",
            "penalty.appeal_decided",
        } <= actions
        assert call(world, "supervisor", "GET", "/audit/verify", 200)["ok"] is True


@pytest.mark.parametrize("grace_passed", [True, False])
def test_inspection_before_the_grace_ends_judges_as_of_now(
    api_app: FastAPI, api_client: TestClient, db_session_factory: sessionmaker[Session], grace_passed: bool
) -> None:
    when = at(11, 20) if grace_passed else at(11, 2)
    with time_machine.travel(when, tick=False):
        world = build_world(api_app, api_client, db_session_factory)
        body = call(
            world,
            "supervisor",
            "POST",
            "/inspections",
            201,
            json={"period": "2026-10", "issue_notices": False},
        )
        assert body["complete"] is grace_passed
        expected = "2026-11-05T16:00:00" if grace_passed else "2026-11-02T02:00:00"
        assert body["as_of"].startswith(expected)
        refused = call(world, "supervisor", "POST", "/inspections", 409, json={"period": "2026-12"})
        assert refused["error"]["code"] == "period_not_begun"
