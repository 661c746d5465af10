"""Access matrix entries of violations (see tests/access_matrix.py): everyone reads the violations
of its departments (another department's answers 404); supervisors and admins waive and reopen."""

from __future__ import annotations

import httpx

from tests.access_matrix import Access, Call, authenticated, expect, register, supervisors
from tests.api_fixtures import DEPT_A, DEPT_B, World
from tests.ingest_helpers import violation_in


def _violations_of_both(world: World, _principal: str) -> Call:
    violation_in(world, dept=DEPT_A)
    violation_in(world, dept=DEPT_B)
    return Call()


def _check_list(_world: World, principal: str, response: httpx.Response) -> None:
    if response.status_code != 200:
        return
    depts = {v["dept"] for v in response.json()["items"]}
    visible = {"admin": {DEPT_A, DEPT_B}, "supervisor": {DEPT_A, DEPT_B}, "manager_a": {DEPT_A}}
    assert depts == visible.get(principal, {DEPT_A} if principal == "dept_a" else {DEPT_B}), depts


def _violation_of_a(world: World, _principal: str) -> Call:
    return Call(path={"violation_id": violation_in(world, dept=DEPT_A)})


def _waive(world: World, _principal: str) -> Call:
    return Call(
        path={"violation_id": violation_in(world, dept=DEPT_A)},
        json={"status": "waived", "reason": "special approval by the general manager"},
    )


def _check_detail(_world: World, _principal: str, response: httpx.Response) -> None:
    if response.status_code == 200:
        body = response.json()
        assert body["dept"] == DEPT_A
        assert body["record"]["record_type"] == "payment"


register(
    "GET", "/api/v1/violations", Access(expect=authenticated(), build=_violations_of_both, check=_check_list)
)
register(
    "GET",
    "/api/v1/violations/{violation_id}",
    Access(
        expect=expect(admin=200, supervisor=200, dept_a=200, dept_b=404, manager_a=200),
        build=_violation_of_a,
        check=_check_detail,
    ),
)
register("PATCH", "/api/v1/violations/{violation_id}", Access(expect=supervisors(), build=_waive))
