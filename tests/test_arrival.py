"""Evaluation on arrival: a later record closes or opens violations of earlier ones; the violations
after uploading a whole synthetic company (in either order) are the batch engine's over all of it;
the key index and the payload codec agree with what they stand for. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

pytest.register_assert_rewrite("tests.api_fixtures")
pytest_plugins = ["tests.api_fixtures"]

from rules.engine.encode import encode_frame  # noqa: E402
from rules.lang.ir import RECORD, TRUE, And, CompiledLevel, CompiledRule, Exists, Ref  # noqa: E402
from rules.readers import read_data_dir  # noqa: E402
from rules.validate import content_hash, from_payloads, to_payloads  # noqa: E402
from service.evaluation.joins import ReversePath, Step, plan_joins  # noqa: E402
from service.evaluation.runtime import runtime_for  # noqa: E402
from service.evaluation.service import evaluate_frames  # noqa: E402
from service.evaluation.source import PayloadCodec, timestamp_ms  # noqa: E402
from service.records.flows import load_dataset  # noqa: E402
from service.records.models import RecordKey, RecordKeyField  # noqa: E402
from service.settings import Settings  # noqa: E402
from service.synthetic import Manifest, generate  # noqa: E402
from service.violations.models import Violation, ViolationHistory  # noqa: E402
from tests.api_fixtures import World  # noqa: E402
from tests.ingest_helpers import (  # noqa: E402
    AS_OF,
    approval,
    claim,
    open_violations,
    payment,
    post,
    receipt,
    status_of,
)


@pytest.fixture(autouse=True)
def fixed_clock(request: pytest.FixtureRequest) -> None:
    if "world" in request.fixturenames:  # tests without the API stay off the database
        world: World = request.getfixturevalue("world")
        world.app.state.clock = lambda: AS_OF


def status(world: World, rule: str, record_id: str) -> str | None:
    with world.session_factory() as session:
        return status_of(session, rule, record_id)


def changes(body: dict[str, Any], kind: str) -> set[tuple[str, str]]:
    return {(v["rule"], v["record_id"]) for v in body["violations"][kind]}


# --- scenarios ----------------------------------------------------------------------------------


def test_acceptance_after_the_payment_closes_pur_007(world: World) -> None:
    first = post(world, "dept_a", "payment", payment("PM1", "PO1")).json()
    assert ("PUR-007", "PM1") in changes(first, "opened")
    later = post(world, "dept_a", "goods_receipt", receipt("GR1", "PO1")).json()
    assert changes(later, "closed") == {("PUR-007", "PM1")}
    assert later["evaluation"]["judged"] == {"goods_receipt": 1, "payment": 1}
    assert status(world, "PUR-007", "PM1") == "closed"


def test_a_rejected_receipt_does_not_close_it_and_a_versioned_one_does(world: World) -> None:
    post(world, "dept_a", "payment", payment("PM2", "PO2"))
    rejected = post(world, "dept_a", "goods_receipt", receipt("GR2", "PO2", result="rejected")).json()
    assert rejected["violations"]["closed"] == []
    assert rejected["violations"]["still_open"] == 1
    fixed = post(world, "dept_a", "goods_receipt", receipt("GR2", "PO2")).json()
    assert fixed["records"][0]["outcome"] == "versioned"
    assert changes(fixed, "closed") == {("PUR-007", "PM2")}


def test_a_receipt_moved_to_another_order_reopens_the_payment(world: World) -> None:
    post(world, "dept_a", "goods_receipt", receipt("GR3", "PO3"))
    first = post(world, "dept_a", "payment", payment("PM3", "PO3")).json()
    assert ("PUR-007", "PM3") not in changes(first, "opened")
    moved = post(world, "dept_a", "goods_receipt", receipt("GR3", "PO-OTHER")).json()
    # the previous version's key (PO3) leads back to the payment, which has lost its receipt
    assert changes(moved, "opened") == {("PUR-007", "PM3")}


def test_an_approval_after_the_claim_closes_exp_002(world: World) -> None:
    first = post(world, "admin", "expense_claim", claim("C1")).json()
    assert ("EXP-002", "C1") in changes(first, "opened")
    later = post(world, "admin", "approval", approval("AP1", "C1")).json()
    assert ("EXP-002", "C1") in changes(later, "closed")
    assert status(world, "EXP-002", "C1") == "closed"
    # the approval withdrawn (a new version, rejected): violated again
    again = post(world, "admin", "approval", approval("AP1", "C1", decision="rejected")).json()
    assert ("EXP-002", "C1") in changes(again, "reopened")
    (vid,) = [v["id"] for v in again["violations"]["reopened"] if v["rule"] == "EXP-002"]
    with world.session_factory() as session:
        steps = session.execute(
            select(ViolationHistory.from_status, ViolationHistory.to_status, ViolationHistory.actor)
            .where(ViolationHistory.violation_id == vid)
            .order_by(ViolationHistory.id)
        ).all()
    assert [tuple(s) for s in steps] == [
        (None, "open", "system"),
        ("open", "closed", "system"),
        ("closed", "open", "system"),
    ]


def test_a_claim_reusing_an_invoice_opens_exp_009_for_the_later_one(world: World) -> None:
    post(world, "admin", "expense_claim", claim("C10", invoice="FP-1"))
    later = post(
        world,
        "admin",
        "expense_claim",
        claim("C11", invoice="FP-1", submitted_at="2026-03-05T10:00:00+08:00"),
    ).json()
    assert ("EXP-009", "C11") in changes(later, "opened")
    assert ("EXP-009", "C10") not in changes(later, "opened")
    assert later["evaluation"]["judged"] == {"expense_claim": 2}  # the earlier claim judged again too
    assert status(world, "EXP-009", "C10") is None


def test_an_earlier_claim_arriving_late_moves_exp_009_to_the_later_one(world: World) -> None:
    post(
        world,
        "admin",
        "expense_claim",
        claim("C21", invoice="FP-2", submitted_at="2026-03-05T10:00:00+08:00"),
    )
    assert status(world, "EXP-009", "C21") is None
    body = post(world, "admin", "expense_claim", claim("C20", invoice="FP-2")).json()
    assert changes(body, "opened") >= {("EXP-009", "C21")}
    assert ("EXP-009", "C20") not in changes(body, "opened")


def test_a_waived_violation_stays_waived_until_it_is_fixed(world: World) -> None:
    body = post(world, "admin", "payment", payment("PM4", "PO4")).json()
    (vid,) = [v["id"] for v in body["violations"]["opened"] if v["rule"] == "PUR-007"]
    waived = world.client.patch(
        f"/api/v1/violations/{vid}",
        json={"status": "waived", "reason": "paid in advance by contract"},
        headers=world.headers("supervisor"),
    )
    assert waived.status_code == 200
    changed = post(world, "admin", "payment", payment("PM4", "PO4", amount="150.00")).json()
    assert changed["violations"]["still_open"] == 1
    assert status(world, "PUR-007", "PM4") == "waived"
    fixed = post(world, "admin", "goods_receipt", receipt("GR4", "PO4")).json()
    assert changes(fixed, "closed") == {("PUR-007", "PM4")}


def test_violations_are_never_duplicated(world: World) -> None:
    for amount in ("100.00", "101.00", "102.00"):
        post(world, "admin", "payment", payment("PM5", "PO5", amount=amount))
    listed = world.client.get(
        "/api/v1/violations",
        params={"record_type": "payment", "record_id": "PM5"},
        headers=world.headers("admin"),
    ).json()
    assert [v["rule"] for v in listed["items"]] == ["PUR-007"]


# --- the key index ------------------------------------------------------------------------------


def test_the_join_plan_reads_the_rules() -> None:
    settings = Settings(database_url="sqlite:///:memory:")
    runtime = runtime_for(settings)
    plan = plan_joins([r.compiled for r in runtime.library.rules])
    targets = {
        (t, p.subject_type, p.start, p.steps[0].match) for t, paths in plan.reverse.items() for p in paths
    }
    assert ("goods_receipt", "payment", "po_id", "po_id") in targets  # PUR-007
    assert ("approval", "expense_claim", "record_id", "id") in targets  # EXP-002..008
    assert ("expense_claim", "expense_claim", "invoice_no", "invoice_no") in targets  # EXP-009
    assert ("payment", "budget", "dept", "dept") in targets  # FIN-001's aggregate
    assert ("payment", "purchase_order", "po_id", "id") in targets  # PUR-008's aggregate
    assert {("approval", "record_id"), ("goods_receipt", "po_id"), ("expense_claim", "invoice_no")} <= set(
        runtime.key_fields
    )
    assert not any(field == "id" for _, field in runtime.key_fields)


def test_nested_joins_lead_back_through_the_outer_join() -> None:
    # record (S) -> Exists a: X with X.xf = record.sf -> Exists b: T with T.tf = a.af
    inner = Exists("b", "T", (("tf", Ref("a", "af")),), TRUE)
    outer = Exists("a", "X", (("xf", Ref(RECORD, "sf")),), inner)
    keyless = Exists("c", "Y", (), Exists("d", "Z", (("zf", Ref("c", "cf")),), TRUE))
    rule = CompiledRule("T-001", "S", (CompiledLevel("major", And((outer, keyless))),))
    plan = plan_joins([rule])
    to_s = Step("S", "sf", "id")
    assert plan.reverse["X"] == (ReversePath("xf", (to_s,)),)
    assert plan.reverse["T"] == (ReversePath("tf", (Step("X", "af", "xf"), to_s)),)
    every = Step("S", None, "id")
    assert plan.reverse["Y"] == (ReversePath(None, (every,)),)
    assert plan.reverse["Z"] == (ReversePath("zf", (Step("Y", "cf", "id"), every)),)
    assert plan.lookups == {("X", "xf"), ("S", "sf"), ("T", "tf"), ("X", "af"), ("Z", "zf"), ("Y", "cf")}


def test_records_stored_before_a_field_was_indexed_are_back_filled(
    world: World, db_session_factory: sessionmaker[Session]
) -> None:
    with db_session_factory() as session:
        session.execute(RecordKeyField.__table__.delete())
        session.execute(RecordKey.__table__.delete())
        session.commit()
    # stored without evaluation (as `zhidu load` does), while no field is indexed
    rows = [receipt("GR9", "PO9")]
    load_dataset(
        db_session_factory,
        records={"goods_receipt": [(p, content_hash(p)) for p in _canonical("goods_receipt", rows)]},
        submitted_by="cli",
        source="test",
    )
    body = post(world, "admin", "payment", payment("PM9", "PO9")).json()
    assert ("PUR-007", "PM9") not in changes(body, "opened")  # the receipt was found through the index
    with db_session_factory() as session:
        assert session.scalars(select(RecordKey.value).where(RecordKey.field == "po_id")).all() == [
            "PO9",
            "PO9",
        ]


def _canonical(record_type: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    library = runtime_for(Settings(database_url="sqlite:///:memory:")).library
    rt = library.model[record_type]
    from service.ingest.service import check_json

    checked = check_json(rt, rows, tz=library.company.tz, dept=None)
    return to_payloads(rt, checked.frame, library.company.tz)


# --- a whole company, in two orders -------------------------------------------------------------


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Manifest]:
    folder = tmp_path_factory.mktemp("company")
    return folder, generate(folder, records=1500, seed=11)


@pytest.mark.parametrize("order", ["arrival", "reversed"])
def test_uploading_a_company_gives_the_batch_engines_violations(
    world: World, company: tuple[Path, Manifest], order: str
) -> None:
    folder, manifest = company
    as_of = datetime.fromisoformat(manifest.as_of)
    world.app.state.clock = lambda: as_of
    types = [f.removesuffix(".csv") for f in manifest.files if f.endswith(".csv") and f != "ground_truth.csv"]
    if order == "reversed":
        types.reverse()
    for record_type in types:
        data = (folder / f"{record_type}.csv").read_bytes()
        response = world.client.post(
            "/api/v1/uploads",
            files={"file": (f"{record_type}.csv", data, "text/csv")},
            headers=world.headers("supervisor"),
        )
        assert response.status_code == 200, response.text[:500]
    library = runtime_for(world.app.state.settings).library
    dataset = read_data_dir(folder, library.model, library.company.tz)
    findings = evaluate_frames(library, dataset.frames, as_of=pd.Timestamp(manifest.as_of), engine="batch")
    expected = {(f.rule, f.record_id) for f in findings}
    with world.session_factory() as session:
        got = open_violations(session)
        stored = {
            (v.rule_id, v.record_id): v
            for v in session.scalars(select(Violation).where(Violation.status == "open"))
        }
    assert got == expected
    assert len(expected) > 50
    for f in findings:  # described as the batch engine's findings are, and at the same severity
        v = stored[(f.rule, f.record_id)]
        assert (v.severity, v.dept, v.responsible, v.clauses) == (
            f.severity,
            f.dept,
            f.responsible,
            f.clauses,
        )
        assert (v.message_zh, v.message_en) == (f.message_zh, f.message_en)


# --- the payload codec --------------------------------------------------------------------------


def test_the_codec_encodes_like_the_engines(company: tuple[Path, Manifest]) -> None:
    folder, _ = company
    library = runtime_for(Settings(database_url="sqlite:///:memory:")).library
    tz = library.company.tz
    codec = PayloadCodec(library.model, tz)
    dataset = read_data_dir(folder, library.model, tz)
    for record_type, frame in dataset.frames.items():
        rt = library.model[record_type]
        payloads = to_payloads(rt, frame, tz)
        expected = encode_frame(rt, from_payloads(rt, payloads, tz)).reset_index(drop=True)
        rows = [codec.types[record_type].encode(p) for p in payloads]
        got = codec.types[record_type].frame(rows, list(range(len(rows)))).reset_index(drop=True)
        pd.testing.assert_frame_equal(got, expected, check_dtype=False, obj=record_type)


@pytest.mark.parametrize(
    "text",
    [
        "2026-03-01T10:00:00+08:00",
        "2026-03-01T10:00:00.5-05:30",
        "1969-12-31T23:59:59.9999+00:00",
        "1901-01-01T00:00:00+08:05:43",
        "2026-03-01T10:00:00.000000001Z",
    ],
)
def test_timestamps_decode_to_engine_milliseconds(text: str) -> None:
    if text.count(":") == 4:  # an offset with seconds (local mean time), which pandas does not parse
        expected = int(datetime.fromisoformat(text).timestamp() * 1000)
    else:
        expected = pd.Timestamp(text).tz_convert("UTC").value // 1_000_000
    assert timestamp_ms(text) == expected
