"""Ingestion over the API (`POST /api/v1/records/{record_type}`): what is stored, what is rejected
and why, all-or-nothing vs partial, re-submission, versions, Idempotency-Key, department limits,
size limits. On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

pytest.register_assert_rewrite("tests.api_fixtures")
pytest_plugins = ["tests.api_fixtures"]

from rules.validate import content_hash  # noqa: E402
from service.audit.models import AuditEvent  # noqa: E402
from service.audit.service import verify_chain  # noqa: E402
from service.records import service as records  # noqa: E402
from service.records.models import RecordKey  # noqa: E402
from tests.api_fixtures import DEPT_B, World, app_for, assert_error_shape, build_world  # noqa: E402
from tests.ingest_helpers import AS_OF, approval, claim, counts, payment, post  # noqa: E402


@pytest.fixture(autouse=True)
def fixed_clock(world: World) -> None:
    world.app.state.clock = lambda: AS_OF


def stored(world: World, record_type: str, record_id: str) -> dict[str, Any] | None:
    with world.session_factory() as session:
        record = records.current_record(session, record_type=record_type, record_id=record_id)
        return None if record is None else {"version": record.version, "payload": record.payload}


# --- stored -------------------------------------------------------------------------------------


def test_one_record_is_stored_evaluated_and_audited(world: World) -> None:
    response = post(world, "dept_a", "payment", payment("PM1", "PO1"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["record_type"] == "payment"
    assert body["source"] == "api"
    assert body["counts"] == {"received": 1, "created": 1, "versioned": 0, "unchanged": 0, "rejected": 0}
    assert body["records"] == [{"row": 1, "record_id": "PM1", "outcome": "created", "version": 1}]
    assert body["rejected"] == []
    assert [(v["rule"], v["record_id"], v["status"]) for v in body["violations"]["opened"]] == [
        ("PUR-007", "PM1", "open")
    ]
    assert body["evaluation"]["judged"] == {"payment": 1}
    assert body["evaluation"]["as_of"] == "2026-04-01T00:00:00Z"
    saved = stored(world, "payment", "PM1")
    assert saved is not None
    assert saved["payload"]["amount"] == "100.00"
    with world.session_factory() as session:
        events = list(session.scalars(select(AuditEvent).where(AuditEvent.entity_id == "payment:PM1")))
        assert [(e.action, e.actor, e.after_digest) for e in events] == [
            ("record.submitted", world.users["dept_a"].username, content_hash(saved["payload"]))
        ]
        changed = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "violation.status_changed")
        ).all()
        assert len(changed) == 1
        assert verify_chain(session) == []


def test_a_list_is_stored_row_by_row(world: World) -> None:
    body = post(world, "supervisor", "expense_claim", [claim("C1"), claim("C2", dept=DEPT_B)]).json()
    assert [(r["row"], r["record_id"], r["outcome"]) for r in body["records"]] == [
        (1, "C1", "created"),
        (2, "C2", "created"),
    ]
    assert body["evaluation"]["judged"] == {"expense_claim": 2}


def test_text_values_are_read_like_csv_cells(world: World) -> None:
    record = payment("PM2", "PO2", amount="¥1,234.50", paid_at="2026-03-10 10:00")
    assert post(world, "admin", "payment", record).status_code == 200
    saved = stored(world, "payment", "PM2")
    assert saved is not None
    assert saved["payload"]["amount"] == "1234.50"
    assert saved["payload"]["paid_at"] == "2026-03-10T10:00:00+08:00"  # the company's zone


def test_formula_looking_cells_are_stored_as_text(world: World) -> None:
    formulas = ["=1+2", "+86 138 0000 0000", "-cmd|' /C calc'!A0", "@SUM(A1:A9)"]
    body = [claim(f"F{i}", applicant=text) for i, text in enumerate(formulas)]
    assert post(world, "admin", "expense_claim", body).status_code == 200
    for i, text in enumerate(formulas):
        saved = stored(world, "expense_claim", f"F{i}")
        assert saved is not None
        assert saved["payload"]["applicant"] == text


# --- rejected rows ------------------------------------------------------------------------------

BAD_ROWS: list[tuple[dict[str, Any], str, str]] = [
    ({"amount": None}, "amount", "required value is empty"),
    ({"amount": "12.345"}, "amount", "more than 2 decimal places"),
    ({"amount": "twelve"}, "amount", "is not a number"),
    ({"amount": "-5"}, "amount", "below the minimum"),
    ({"invoice_count": "1.5"}, "invoice_count", "is not an integer"),
    ({"category": "party"}, "category", "is not one of"),
    ({"submitted_at": "yesterday"}, "submitted_at", "is not an ISO 8601 date/time"),
    ({"submitted_at": "2026-02-30T10:00:00"}, "submitted_at", "is not a valid calendar date/time"),
    ({"applicant": ["a", "b"]}, "applicant", "is a list or object"),
    ({"applicant": "nul\x00byte"}, "applicant", "NUL character"),
]


@pytest.mark.parametrize(("change", "field", "reason"), BAD_ROWS, ids=[f for _, f, _ in BAD_ROWS])
def test_every_kind_of_bad_cell_is_a_rejected_row(
    world: World, change: dict[str, Any], field: str, reason: str
) -> None:
    before = _counts(world)
    response = post(world, "admin", "expense_claim", [claim("OK1"), claim("BAD", **change)])
    assert response.status_code == 422, response.text
    error = assert_error_shape(response.json(), "rejected_rows")
    assert "nothing was stored" in error["message"]
    assert "未保存任何记录" in error["message_zh"]
    assert error["details"] == [
        {
            "row": 2,
            "record_id": "BAD",
            "field": field,
            "message": error["details"][0]["message"],
            "message_zh": error["details"][0]["message_zh"],
        }
    ]
    assert reason in error["details"][0]["message"]
    assert error["details"][0]["message_zh"]
    assert _counts(world) == before  # all or nothing


def _counts(world: World) -> tuple[int, int, int]:
    with world.session_factory() as session:
        return counts(session)


def test_every_problem_of_every_row_is_listed(world: World) -> None:
    body = [
        claim("A1"),
        claim("A2", amount="x", category="party"),
        "not an object",
        claim("A1"),  # a duplicate id
        {k: v for k, v in claim("A5").items() if k != "applicant"},
    ]
    response = post(world, "admin", "expense_claim", body)
    assert response.status_code == 422
    details = response.json()["error"]["details"]
    assert [(d["row"], d["record_id"], d["field"]) for d in details] == [
        (2, "A2", "category"),
        (2, "A2", "amount"),
        (3, None, None),
        (4, "A1", "id"),
        (5, "A5", "applicant"),
    ]
    assert "duplicates row 1" in details[3]["message"]
    assert "不是对象" in details[2]["message_zh"]


def test_an_unknown_column_refuses_the_whole_input_even_when_partial(world: World) -> None:
    response = post(world, "admin", "payment", [payment("PM3", "PO3", colour="red")], partial="true")
    assert response.status_code == 422
    details = response.json()["error"]["details"]
    assert details[0]["row"] is None
    assert details[0]["field"] == "colour"
    assert "unknown column" in details[0]["message"]
    assert stored(world, "payment", "PM3") is None


def test_partial_keeps_the_valid_rows_and_says_which_were_rejected(world: World) -> None:
    response = post(
        world,
        "admin",
        "expense_claim",
        [claim("P1"), claim("P2", amount="x"), claim("P3")],
        partial="true",
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["partial"] is True
    assert body["counts"] == {"received": 3, "created": 2, "versioned": 0, "unchanged": 0, "rejected": 1}
    assert [r["record_id"] for r in body["records"]] == ["P1", "P3"]
    assert [(r["row"], r["record_id"], r["field"]) for r in body["rejected"]] == [(2, "P2", "amount")]
    assert stored(world, "expense_claim", "P2") is None
    assert stored(world, "expense_claim", "P3") is not None


def test_an_empty_list_is_refused(world: World) -> None:
    response = post(world, "admin", "payment", [])
    assert response.status_code == 422
    assert_error_shape(response.json(), "rejected_rows")


def test_an_unknown_record_type_is_404(world: World) -> None:
    response = post(world, "admin", "spaceship", {"id": "X"})
    assert response.status_code == 404
    error = assert_error_shape(response.json(), "not_found")
    assert "expense_claim" in error["message"]


# --- re-submission and versions -----------------------------------------------------------------


def test_identical_resubmission_is_a_no_op(world: World) -> None:
    first = post(world, "admin", "payment", payment("PM4", "PO4")).json()
    with world.session_factory() as session:
        events = len(session.scalars(select(AuditEvent)).all())
        records_before = counts(session)[0]
    again = post(world, "admin", "payment", payment("PM4", "PO4")).json()
    assert again["records"] == [{"row": 1, "record_id": "PM4", "outcome": "unchanged", "version": 1}]
    assert again["counts"]["unchanged"] == 1
    assert again["evaluation"]["judged"] == {}
    assert again["violations"] == {"opened": [], "reopened": [], "closed": [], "still_open": 0}
    with world.session_factory() as session:
        assert len(session.scalars(select(AuditEvent)).all()) == events
        assert counts(session)[0] == records_before
    assert first["violations"]["opened"]


def test_a_changed_record_is_a_new_version(world: World) -> None:
    post(world, "admin", "payment", payment("PM5", "PO5"))
    body = post(world, "admin", "payment", payment("PM5", "PO5", amount="200.00")).json()
    assert body["records"] == [{"row": 1, "record_id": "PM5", "outcome": "versioned", "version": 2}]
    assert body["violations"]["still_open"] == 1  # PUR-007 judged again, still violated
    saved = stored(world, "payment", "PM5")
    assert saved is not None
    assert saved["version"] == 2
    with world.session_factory() as session:
        history = records.record_history(session, record_type="payment", record_id="PM5")
        assert [r.version for r in history] == [1, 2]
        event = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "record.versioned", AuditEvent.entity_id == "payment:PM5"
            )
        ).one()
        assert event.before_digest == history[0].content_hash
        assert event.after_digest == history[1].content_hash
        # the key index holds the current version only
        keys = session.scalars(
            select(RecordKey).where(RecordKey.record_pk.in_([r.id for r in history]))
        ).all()
        assert {k.record_pk for k in keys} == {history[1].id}


# --- Idempotency-Key ----------------------------------------------------------------------------


def test_a_retried_request_replays_the_first_response(world: World) -> None:
    headers = {**world.headers("admin"), "Idempotency-Key": "retry-0001"}
    body = [payment("PM6", "PO6")]
    first = world.client.post("/api/v1/records/payment", json=body, headers=headers)
    assert first.status_code == 200
    assert "Idempotency-Replayed" not in first.headers
    before = _counts(world)
    second = world.client.post("/api/v1/records/payment", json=body, headers=headers)
    assert second.status_code == 200
    assert second.headers["Idempotency-Replayed"] == "true"
    assert second.json() == first.json()  # not "unchanged": the very same response
    assert _counts(world) == before


def test_the_same_key_with_another_request_is_409(world: World) -> None:
    headers = {**world.headers("admin"), "Idempotency-Key": "retry-0002"}
    assert (
        world.client.post("/api/v1/records/payment", json=payment("PM7", "PO7"), headers=headers).status_code
        == 200
    )
    other = world.client.post("/api/v1/records/payment", json=payment("PM8", "PO8"), headers=headers)
    assert other.status_code == 409
    assert_error_shape(other.json(), "idempotency_key_reused")
    assert stored(world, "payment", "PM8") is None
    partial = world.client.post(
        "/api/v1/records/payment", json=payment("PM7", "PO7"), params={"partial": "true"}, headers=headers
    )
    assert partial.status_code == 409  # another request: partial differs


def test_keys_belong_to_their_user(world: World) -> None:
    key = {"Idempotency-Key": "shared-key"}
    a = world.client.post(
        "/api/v1/records/payment", json=payment("PM9", "PO9"), headers={**world.headers("admin"), **key}
    )
    b = world.client.post(
        "/api/v1/records/payment",
        json=payment("PM10", "PO10"),
        headers={**world.headers("supervisor"), **key},
    )
    assert (a.status_code, b.status_code) == (200, 200)
    assert b.json()["records"][0]["record_id"] == "PM10"


def test_a_rejected_request_is_not_remembered(world: World) -> None:
    headers = {**world.headers("admin"), "Idempotency-Key": "retry-0003"}
    bad = world.client.post(
        "/api/v1/records/payment", json=payment("PM11", "PO11", amount="x"), headers=headers
    )
    assert bad.status_code == 422
    fixed = world.client.post("/api/v1/records/payment", json=payment("PM11", "PO11"), headers=headers)
    assert fixed.status_code == 200


def test_a_malformed_key_is_422(world: World) -> None:
    headers = {**world.headers("admin"), "Idempotency-Key": "has space"}
    response = world.client.post("/api/v1/records/payment", json=payment("PM12", "PO12"), headers=headers)
    assert response.status_code == 422


# --- who may submit what ------------------------------------------------------------------------


def test_a_department_user_submits_only_its_department(world: World) -> None:
    response = post(
        world,
        "dept_a",
        "payment",
        [payment("PMA", "POA"), payment("PMB", "POB", dept=DEPT_B)],
        partial="true",
    )
    assert response.status_code == 200
    body = response.json()
    assert [r["record_id"] for r in body["records"]] == ["PMA"]
    (rejected,) = body["rejected"]
    assert (rejected["row"], rejected["record_id"], rejected["field"]) == (2, "PMB", "dept")
    assert "not your department" in rejected["message"]
    assert "不是您所在的部门" in rejected["message_zh"]


def test_a_department_user_may_not_submit_records_without_a_department(world: World) -> None:
    response = post(world, "dept_a", "approval", approval("AP1", "C1"))
    assert response.status_code == 403
    error = assert_error_shape(response.json(), "forbidden")
    assert "approval" in error["message"]


def test_a_manager_may_not_submit(world: World) -> None:
    assert post(world, "manager_a", "payment", payment("PMM", "POM")).status_code == 403


# --- limits -------------------------------------------------------------------------------------


def test_a_body_over_the_limit_is_413(db_url: str, db_session_factory: sessionmaker[Session]) -> None:
    limit = 2048
    app = app_for(db_url, db_session_factory, max_upload_bytes=limit)
    client = TestClient(app, raise_server_exceptions=False)
    world = build_world(app, client, db_session_factory)
    many = [payment(f"PM{i}", f"PO{i}") for i in range(40)]
    response = client.post("/api/v1/records/payment", json=many, headers=world.headers("admin"))
    assert response.status_code == 413
    error = assert_error_shape(response.json(), "payload_too_large")
    assert str(limit) in error["message"]
    assert stored(world, "payment", "PM0") is None


def test_a_body_that_cannot_be_parsed_is_422(world: World) -> None:
    headers = {**world.headers("admin"), "Content-Type": "application/json"}
    response = world.client.post("/api/v1/records/payment", content=b"\xff\xfe{", headers=headers)
    assert response.status_code == 422
    assert_error_shape(response.json(), "validation_error")
    broken = world.client.post(
        "/api/v1/uploads",
        content=b"--b\r\nbroken--b--\r\n",
        headers={**world.headers("admin"), "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert broken.status_code == 422
    assert_error_shape(broken.json(), "validation_error")


def test_a_huge_offset_is_422_not_a_database_error(world: World) -> None:
    response = world.client.get(
        "/api/v1/violations", params={"offset": 2**64}, headers=world.headers("admin")
    )
    assert response.status_code == 422
