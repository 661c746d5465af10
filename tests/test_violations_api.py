"""Violations over the API: filters, pagination, department scope, detail (rule, clause texts,
record, related records, history), waive and reopen. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

pytest.register_assert_rewrite("tests.api_fixtures")
pytest_plugins = ["tests.api_fixtures"]

from service.audit.models import AuditEvent  # noqa: E402
from service.audit.service import verify_chain  # noqa: E402
from tests.api_fixtures import DEPT_A, DEPT_B, World, assert_error_shape  # noqa: E402
from tests.ingest_helpers import AS_OF, approval, claim, payment, post, receipt  # noqa: E402

DAY = timedelta(days=1)


@pytest.fixture
def found(world: World) -> dict[str, Any]:
    """Violations in two departments, found on two days: payments without receipts (PUR-007,
    critical) and claims without approvals (EXP-002 major and others)."""
    world.app.state.clock = lambda: AS_OF
    post(world, "admin", "payment", [payment("PA1", "POA1"), payment("PA2", "POA2")])
    post(world, "admin", "payment", payment("PB1", "POB1", dept=DEPT_B))
    world.app.state.clock = lambda: AS_OF + DAY
    post(world, "admin", "expense_claim", claim("CA1"))
    post(world, "admin", "goods_receipt", receipt("GA2", "POA2"))  # closes PUR-007 of PA2
    return {}


def get(world: World, principal: str, path: str = "", **params: Any) -> Any:
    response = world.client.get(f"/api/v1/violations{path}", params=params, headers=world.headers(principal))
    assert response.status_code == 200, response.text
    return response.json()


def keys(page: dict[str, Any]) -> set[tuple[str, str]]:
    return {(v["rule"], v["record_id"]) for v in page["items"]}


def test_filters(world: World, found: dict[str, Any]) -> None:
    assert keys(get(world, "admin", rule="PUR-007", status="open")) == {
        ("PUR-007", "PA1"),
        ("PUR-007", "PB1"),
    }
    assert keys(get(world, "admin", rule="PUR-007", status="closed")) == {("PUR-007", "PA2")}
    assert keys(get(world, "admin", dept=DEPT_B)) == {("PUR-007", "PB1")}
    assert {v["severity"] for v in get(world, "admin", severity="critical")["items"]} == {"critical"}
    assert keys(get(world, "admin", record_type="payment", record_id="PA1")) == {("PUR-007", "PA1")}
    first_day = get(world, "admin", detected_from=AS_OF.isoformat(), detected_to=(AS_OF + DAY).isoformat())
    assert {v["record_type"] for v in first_day["items"]} == {"payment"}
    second_day = get(world, "admin", detected_from=(AS_OF + DAY).isoformat())
    assert {v["record_id"] for v in second_day["items"]} == {"CA1"}
    assert ("EXP-002", "CA1") in keys(second_day)


def test_naive_period_bounds_are_422(world: World) -> None:
    response = world.client.get(
        "/api/v1/violations", params={"detected_from": "2026-03-01T00:00:00"}, headers=world.headers("admin")
    )
    assert response.status_code == 422
    assert_error_shape(response.json(), "validation_error")


def test_pagination_is_newest_first_and_counts_everything(world: World, found: dict[str, Any]) -> None:
    everything = get(world, "admin", limit=500)
    total = everything["total"]
    assert total == len(everything["items"]) > 3
    seen: list[int] = []
    for offset in range(0, total, 2):
        page = get(world, "admin", limit=2, offset=offset)
        assert page["total"] == total
        assert (page["limit"], page["offset"]) == (2, offset)
        seen += [v["id"] for v in page["items"]]
    assert seen == [v["id"] for v in everything["items"]]
    detected = [v["first_detected_at"] for v in everything["items"]]
    assert detected == sorted(detected, reverse=True)


def test_lists_contain_only_your_departments(world: World, found: dict[str, Any]) -> None:
    assert {v["dept"] for v in get(world, "dept_a", limit=500)["items"]} == {DEPT_A}
    assert {v["dept"] for v in get(world, "dept_b", limit=500)["items"]} == {DEPT_B}
    assert {v["dept"] for v in get(world, "manager_a", limit=500)["items"]} == {DEPT_A}
    assert get(world, "dept_b", dept=DEPT_A)["items"] == []  # asking for another department: nothing


def violation_id(world: World, rule: str, record_id: str) -> int:
    (item,) = get(world, "admin", rule=rule, record_id=record_id)["items"]
    return int(item["id"])


def test_detail_shows_rule_clauses_record_related_and_history(world: World, found: dict[str, Any]) -> None:
    vid = violation_id(world, "PUR-007", "PA2")
    body = get(world, "dept_a", f"/{vid}")
    assert (body["rule"], body["status"], body["dept"]) == ("PUR-007", "closed", DEPT_A)
    assert body["rule_detail"]["title"]["en"] == "Payment only after an accepted receipt"
    assert body["rule_detail"]["rectify_days"] > 0
    assert [c["id"] for c in body["clause_texts"]] == body["clauses"]
    assert all(c["text"]["zh"] and c["text"]["en"] for c in body["clause_texts"])
    assert body["record"]["record_id"] == "PA2"
    assert body["record"]["payload"]["po_id"] == "POA2"
    assert [(r["record_type"], r["record_id"], r["via"]) for r in body["related"]] == [
        ("goods_receipt", "GA2", "goods_receipt.po_id = record.po_id")
    ]
    assert [(h["from_status"], h["to_status"], h["actor"]) for h in body["history"]] == [
        (None, "open", "system"),
        ("open", "closed", "system"),
    ]
    assert "goods_receipt" in body["history"][1]["reason"]
    assert body["message_zh"]
    assert body["message_en"]


def test_related_records_of_an_approval_rule(world: World) -> None:
    world.app.state.clock = lambda: AS_OF
    post(world, "admin", "expense_claim", claim("CX"))
    post(world, "admin", "approval", [approval("AX1", "CX", step="finance"), approval("AX2", "OTHER")])
    body = get(world, "manager_a", f"/{violation_id(world, 'EXP-002', 'CX')}")
    assert [(r["record_id"], r["via"]) for r in body["related"]] == [
        ("AX1", "approval.record_id = record.id")
    ]


def test_another_departments_violation_is_404(world: World, found: dict[str, Any]) -> None:
    vid = violation_id(world, "PUR-007", "PB1")
    for principal in ("dept_a", "manager_a"):
        response = world.client.get(f"/api/v1/violations/{vid}", headers=world.headers(principal))
        assert response.status_code == 404
        missing = world.client.get("/api/v1/violations/987654", headers=world.headers(principal))
        assert response.json()["error"]["code"] == missing.json()["error"]["code"] == "not_found"


def patch(world: World, principal: str, vid: int, body: dict[str, Any]) -> Any:
    return world.client.patch(f"/api/v1/violations/{vid}", json=body, headers=world.headers(principal))


def test_waive_and_reopen(world: World, found: dict[str, Any]) -> None:
    world.app.state.clock = lambda: AS_OF + 2 * DAY
    vid = violation_id(world, "PUR-007", "PA1")
    waived = patch(
        world, "supervisor", vid, {"status": "waived", "reason": "prepayment agreed in the contract"}
    )
    assert waived.status_code == 200, waived.text
    assert waived.json()["status"] == "waived"
    assert waived.json()["status_changed_at"] == (AS_OF + 2 * DAY).isoformat().replace("+00:00", "Z")
    again = patch(world, "supervisor", vid, {"status": "waived", "reason": "twice"})
    assert again.status_code == 409
    assert_error_shape(again.json(), "invalid_transition")
    reopened = patch(world, "admin", vid, {"status": "open", "reason": "the contract says otherwise"})
    assert reopened.status_code == 200
    history = get(world, "admin", f"/{vid}")["history"]
    supervisor = world.users["supervisor"].username
    admin = world.users["admin"].username
    assert [(h["from_status"], h["to_status"], h["actor"], h["reason"]) for h in history[1:]] == [
        ("open", "waived", supervisor, "prepayment agreed in the contract"),
        ("waived", "open", admin, "the contract says otherwise"),
    ]
    with world.session_factory() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.entity_type == "violation", AuditEvent.entity_id == str(vid))
        ).all()
        assert [(e.actor, e.detail["from"], e.detail["to"]) for e in events] == [
            ("system", None, "open"),
            (supervisor, "open", "waived"),
            (admin, "waived", "open"),
        ]
        assert all(e.before_digest != e.after_digest for e in events)
        assert verify_chain(session) == []


def test_a_closed_violation_is_not_reopened_by_hand(world: World, found: dict[str, Any]) -> None:
    vid = violation_id(world, "PUR-007", "PA2")
    response = patch(world, "supervisor", vid, {"status": "open", "reason": "no"})
    assert response.status_code == 409


@pytest.mark.parametrize(
    "body",
    [
        {"status": "waived"},
        {"status": "waived", "reason": "  "},
        {"status": "closed", "reason": "x"},
        {"reason": "x"},
    ],
)
def test_a_decision_needs_a_status_and_a_reason(
    world: World, found: dict[str, Any], body: dict[str, Any]
) -> None:
    response = patch(world, "supervisor", violation_id(world, "PUR-007", "PA1"), body)
    assert response.status_code == 422
    assert_error_shape(response.json(), "validation_error")


def test_waiving_another_departments_violation_as_unknown_is_404(world: World) -> None:
    response = patch(world, "supervisor", 987654, {"status": "waived", "reason": "x"})
    assert response.status_code == 404


def test_times_are_utc(world: World, found: dict[str, Any]) -> None:
    item = get(world, "admin", rule="PUR-007", record_id="PA1")["items"][0]
    assert datetime.fromisoformat(item["first_detected_at"]) == AS_OF.astimezone(UTC)
