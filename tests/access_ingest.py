"""Access matrix entries of ingestion: submit JSON records, upload a file (see tests/access_matrix.py).

A department user submits records of its own department only: a record of another department is a
rejected row (422, nothing stored), a record type without departments 403. Managers only read (403).
"""

from __future__ import annotations

import httpx

from tests.access_matrix import Access, Call, expect, register
from tests.api_fixtures import DEPT_A, World, unique
from tests.ingest_helpers import payment

SUBMIT = expect(admin=200, supervisor=200, dept_a=200, dept_b=422, manager_a=403)


def _payment_json(_world: World, _principal: str) -> Call:
    pid = unique("PM")
    return Call(path={"record_type": "payment"}, json=payment(pid, f"PO-{pid}", dept=DEPT_A))


def _payment_csv(_world: World, _principal: str) -> Call:
    pid = unique("PM")
    csv = f"id,dept,po_id,amount,paid_at\n{pid},{DEPT_A},PO-{pid},100.00,2026-03-10T10:00:00+08:00\n"
    return Call(files={"file": ("payment.csv", csv.encode(), "text/csv")})


def _check_stored(_world: World, principal: str, response: httpx.Response) -> None:
    if response.status_code == 200:
        body = response.json()
        assert body["counts"]["created"] == 1
        assert [v["rule"] for v in body["violations"]["opened"]] == ["PUR-007"]
    elif response.status_code == 422:
        details = response.json()["error"]["details"]
        assert [d["field"] for d in details] == ["dept"], details


register(
    "POST",
    "/api/v1/records/{record_type}",
    Access(expect=SUBMIT, build=_payment_json, check=_check_stored),
)
register("POST", "/api/v1/uploads", Access(expect=SUBMIT, build=_payment_csv, check=_check_stored))
