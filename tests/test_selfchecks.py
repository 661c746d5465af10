"""Self-checks: the department's declaration against what zhidu finds on its records of the period
(under-reporting flagged for the supervision group, hidden from the department), resubmission,
periods not over, and missing self-checks found by the sweep (resolved by a late submission)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import time_machine
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from service.notices import flows
from service.settings import Settings
from tests.access_inspections import claim_approval as approval
from tests.access_inspections import config_of, department, runtime_of, store
from tests.access_inspections import expense as claim
from tests.api_fixtures import DEPT_A, DEPT_B, World, build_world

pytest_plugins = ["tests.api_fixtures"]

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _company(world: World) -> None:
    settings: Settings = world.app.state.settings
    now = datetime.now(UTC)
    store(
        world.session_factory,
        settings,
        "department",
        [department(DEPT_A, "王经理"), department(DEPT_B, "李经理")],
        now=now,
    )
    store(
        world.session_factory,
        settings,
        "expense_claim",
        [
            claim("C1", "2026-10-05T10:00:00+08:00", "2026-10-20T10:00:00+08:00", invoice=None),
            claim("C2", "2026-10-06T10:00:00+08:00", "2026-10-21T10:00:00+08:00", invoice="12345678"),
            claim("C8", "2026-09-06T10:00:00+08:00", "2026-09-21T10:00:00+08:00", invoice=None),  # September
        ],
        now=now,
    )
    store(
        world.session_factory,
        settings,
        "approval",
        [
            approval("A1", "C1", "dept_head", "2026-10-06T10:00:00+08:00"),
            approval("A2", "C1", "finance", "2026-10-07T10:00:00+08:00"),
            approval("A3", "C2", "dept_head", "2026-10-07T10:00:00+08:00"),
            approval("A7", "C8", "dept_head", "2026-09-07T10:00:00+08:00"),
            approval("A8", "C8", "finance", "2026-09-08T10:00:00+08:00"),
        ],
        now=now,
    )


def _post(world: World, principal: str, status: int, body: dict[str, Any]) -> Any:
    response = world.client.post("/api/v1/selfchecks", json=body, headers=world.headers(principal))
    assert response.status_code == status, response.text[:800]
    return response.json()


def _sweep(world: World) -> int:
    settings: Settings = world.app.state.settings
    with world.session_factory() as session:
        report = flows.sweep(
            session, runtime=runtime_of(settings), config=config_of(settings), now=datetime.now(UTC)
        )
    return report.missing_selfchecks


def test_under_reporting_is_flagged_for_the_supervision_group(
    api_app: FastAPI, api_client: TestClient, db_session_factory: sessionmaker[Session]
) -> None:
    with time_machine.travel(datetime(2026, 11, 5, 10, tzinfo=SHANGHAI), tick=False):
        world = build_world(api_app, api_client, db_session_factory)
        _company(world)
        refused = _post(world, "dept_a", 409, {"period": "2026-11", "declaration": {}})
        assert refused["error"]["code"] == "period_not_over"
        deviations = [
            {"rule": "EXP-001", "record_id": "C1", "action": "已要求申请人补交发票"},
            {"rule": "EXP-004", "record_id": "C2", "action": "补分管领导审批"},
        ]
        declaration: dict[str, Any] = {
            "compliant_rules": ["EXP-002", "EXP-003"],
            "deviations": deviations,
            "statement": "十月自查",
        }
        mine = _post(world, "dept_a", 201, {"period": "2026-10", "declaration": declaration})
        assert mine["dept"] == DEPT_A
        assert mine["late"] is False
        found = {(f["rule"], f["record_id"]): f["declared"] for f in mine["result"]["findings"]}
        assert found == {("EXP-001", "C1"): True, ("EXP-003", "C2"): False}  # September's C8 is not in it
        assert mine["result"]["records_checked"] == 2
        assert mine["under_reported"] == 1
        assert mine["flagged"] is True
        assert mine["comparison"] is None  # the department reads its result, not the comparison

        seen = world.client.get(
            f"/api/v1/selfchecks/{mine['id']}", headers=world.headers("supervisor")
        ).json()
        comparison = seen["comparison"]
        assert comparison["undeclared"] == [
            {"rule": "EXP-003", "record_type": "expense_claim", "record_id": "C2", "severity": "major"}
        ]
        assert comparison["contradicted_rules"] == ["EXP-003"]
        assert comparison["declared_not_found"] == [
            {"rule": "EXP-004", "record_type": None, "record_id": "C2", "severity": None}
        ]
        assert comparison["matched"] == 1
        assert (
            world.client.get(f"/api/v1/selfchecks/{mine['id']}", headers=world.headers("dept_b")).status_code
            == 404
        )
        flagged = world.client.get(
            "/api/v1/selfchecks", params={"flagged": "true"}, headers=world.headers("manager_a")
        )
        assert [s["id"] for s in flagged.json()["items"]] == [mine["id"]]

        # declared in full: a new revision, nothing under-reported
        deviations.append({"rule": "EXP-003", "record_id": "C2", "action": "补财务审核"})
        again = _post(world, "dept_a", 201, {"period": "2026-10", "declaration": declaration})
        assert (again["id"], again["revision"], again["under_reported"]) == (mine["id"], 2, 0)


def test_missing_self_checks_are_findings(
    api_app: FastAPI, api_client: TestClient, db_session_factory: sessionmaker[Session]
) -> None:
    with time_machine.travel(datetime(2026, 11, 10, 10, tzinfo=SHANGHAI), tick=False) as clock:
        world = build_world(api_app, api_client, db_session_factory)
        _company(world)
        _post(world, "dept_a", 201, {"period": "2026-10", "declaration": {}})
        # August and September are past their deadlines (10 days after the month); October is not yet
        assert _sweep(world) == 4
        clock.move_to(datetime(2026, 11, 11, 0, 30, tzinfo=SHANGHAI))
        assert _sweep(world) == 1  # October: D02 only, D01 submitted in time
        assert _sweep(world) == 0
        missing = world.client.get("/api/v1/selfchecks/missing", headers=world.headers("supervisor")).json()
        assert sorted((m["dept"], m["period"]) for m in missing["items"]) == [
            (DEPT_A, "2026-08"),
            (DEPT_A, "2026-09"),
            (DEPT_B, "2026-08"),
            (DEPT_B, "2026-09"),
            (DEPT_B, "2026-10"),
        ]
        mine = world.client.get("/api/v1/selfchecks/missing", headers=world.headers("dept_b")).json()
        assert {m["dept"] for m in mine["items"]} == {DEPT_B}

        clock.move_to(datetime(2026, 11, 12, 10, tzinfo=SHANGHAI))
        late = _post(world, "dept_b", 201, {"period": "2026-10", "declaration": {}})
        assert late["late"] is True
        resolved = world.client.get(
            "/api/v1/selfchecks/missing",
            params={"period": "2026-10", "status": "submitted_late"},
            headers=world.headers("manager_a"),
        ).json()
        assert resolved["items"] == []  # D02's row is not manager_a's to see
        resolved = world.client.get(
            "/api/v1/selfchecks/missing", params={"period": "2026-10"}, headers=world.headers("supervisor")
        ).json()
        assert [(m["dept"], m["status"]) for m in resolved["items"]] == [(DEPT_B, "submitted_late")]
        actions = {
            e["action"]
            for e in world.client.get(
                "/api/v1/audit", params={"entity_type": "selfcheck"}, headers=world.headers("supervisor")
            ).json()["items"]
        }
        assert actions == {"selfcheck.submitted", "selfcheck.missing"}
