"""The policy library over the API: /policies, /clauses, /rules."""

from __future__ import annotations

from typing import Any

pytest_plugins = ["tests.api_fixtures"]

from tests.api_fixtures import World  # noqa: E402


def get(world: World, path: str, **params: Any) -> Any:
    response = world.client.get(f"/api/v1/{path}", params=params, headers=world.headers("dept_a"))
    assert response.status_code == 200, response.text
    return response.json()


def test_policies(world: World) -> None:
    body = get(world, "policies")
    assert len(body["version"]) == 16
    assert body["company"]["timezone"] == "Asia/Shanghai"
    assert {m["id"] for m in body["manuals"]} >= {"m000", "m001", "m004"}
    assert all(m["applies"] == (m["id"] in body["company"]["manuals"]) for m in body["manuals"])
    params = {p["id"]: p for p in body["parameters"]}
    days = params["exp_approval_days"]
    assert (days["type"], days["value"], days["default"], days["overridden"]) == ("days", 10, 10, False)
    assert days["label"]["zh"]
    assert days["unit"]["en"] == "days"
    assert all(isinstance(p["value"], str) for p in body["parameters"] if p["type"] == "decimal")
    assert body["rules_in_force"] == 32


def test_clauses_filter_and_page(world: World) -> None:
    everything = get(world, "clauses", limit=500)
    assert everything["total"] == len(everything["items"]) > 100
    m001 = get(world, "clauses", manual="m001", limit=500)
    assert {c["manual"] for c in m001["items"]} == {"m001"}
    checkable = get(world, "clauses", checkable="true", limit=500)
    assert all(c["checkable"] for c in checkable["items"])
    cited = {c["id"]: c["rules"] for c in everything["items"]}
    assert "PUR-007" in cited["m004.3.2.6.1"]
    page = get(world, "clauses", limit=5, offset=5)
    assert [c["id"] for c in page["items"]] == [c["id"] for c in everything["items"][5:10]]


def test_rules(world: World) -> None:
    rules = {r["id"]: r for r in get(world, "rules")}
    assert len(rules) == 32
    exp2 = rules["EXP-002"]
    assert (exp2["record_type"], exp2["severity"], exp2["responsible"]) == (
        "expense_claim",
        "major",
        "applicant",
    )
    assert exp2["clauses"] == ["m001.7.1.2"]
    assert "exp_approval_days" in exp2["parameters"]
    assert "rectify_major_days" in exp2["parameters"]
    assert exp2["in_force"] is True
    assert {r["id"] for r in get(world, "rules", record_type="payment")} == {"PUR-007"}
