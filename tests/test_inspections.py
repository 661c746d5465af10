"""Inspections: periods and configuration, the compliance score, an inspection of a generated
company against the batch engine run independently, re-runs that never duplicate, closing what no
longer holds (and not what arose after the cut-off), department scope, data-quality findings, the
scheduled job kinds (idempotent per fire time), the API and the CLI."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import time_machine
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from rules.problems import InputError
from rules.readers import read_data_dir
from rules.validate import content_hash, to_payloads
from service.db.base import engine_for, session_factory
from service.db.migrate import upgrade
from service.evaluation.service import evaluate_frames
from service.inspections import flows, jobs
from service.inspections.config import InspectionConfig, load_config
from service.inspections.core import score
from service.inspections.models import DataQualityFinding, Inspection, InspectionFinding
from service.inspections.periods import Period, PeriodError
from service.notices.models import Notice, NoticeItem
from service.records.flows import load_dataset
from service.scheduling.registry import is_registered
from service.settings import Settings, get_settings
from service.synthetic import generate
from service.violations.models import Violation
from tests.access_inspections import claim_approval as approval
from tests.access_inspections import config_of, department, runtime_of, store
from tests.access_inspections import expense as claim
from tests.api_fixtures import World
from tests.helpers import POLICIES

pytest_plugins = ["tests.api_fixtures"]

SHANGHAI = ZoneInfo("Asia/Shanghai")
OCTOBER = Period.parse("2026-10")
AFTER_GRACE = datetime(2026, 11, 10, 10, tzinfo=SHANGHAI)


# --- periods, configuration, score -----------------------------------------------------------------


def test_periods() -> None:
    assert Period.parse("2026-10") == Period(2026, 10, 1)
    assert Period.parse("2026-Q3") == Period(2026, 7, 3)
    assert Period.parse("2026-Q4").label == "2026-Q4"
    assert Period.parse("2026-12").next().label == "2027-01"
    assert Period.parse("2027-01").previous().label == "2026-12"
    assert Period.parse("2027-Q1").previous().label == "2026-Q4"
    assert OCTOBER.start(SHANGHAI) == datetime(2026, 9, 30, 16, tzinfo=UTC)
    assert OCTOBER.end(SHANGHAI) == datetime(2026, 10, 31, 16, tzinfo=UTC)
    assert Period.month_of(datetime(2026, 10, 31, 17, tzinfo=UTC), SHANGHAI).label == "2026-11"
    assert Period.quarter_of(datetime(2026, 10, 31, 17, tzinfo=UTC), SHANGHAI).label == "2026-Q4"
    late = OCTOBER.as_of(SHANGHAI, grace_days=5, now=AFTER_GRACE)
    assert late == datetime(2026, 11, 5, 16, tzinfo=UTC)
    early = datetime(2026, 11, 2, tzinfo=UTC)
    assert OCTOBER.as_of(SHANGHAI, grace_days=5, now=early) == early
    for bad in ("2026-13", "2026-Q5", "1999-01", "26-10", "2026-1", " "):
        with pytest.raises(PeriodError):
            Period.parse(bad)


def test_the_configuration_is_data(tmp_path: Path) -> None:
    model = runtime_of(Settings(database_url="sqlite:///unused.db")).library.model
    config = load_config(POLICIES, model)
    assert config.grace_days == 5
    assert [s.to for s in config.escalation] == ["department_head", "general_manager"]
    assert config.period_fields["expense_claim"] == "submitted_at"
    text = (POLICIES / "inspections.yaml").read_text(encoding="utf-8")
    broken = text.replace("grace_days: 5", "grace_days: -1").replace(
        "expense_claim: submitted_at", "expense_claim: amount"
    )
    broken = broken.replace(
        "    - {level: 2, after_overdue_days: 7", "    - {level: 3, after_overdue_days: 7"
    )
    (tmp_path / "inspections.yaml").write_text(broken, encoding="utf-8")
    with pytest.raises(InputError) as raised:
        load_config(tmp_path, model)
    where = {(p.key, p.line) for p in raised.value.problems}
    messages = [(p.key, p.message_en) for p in raised.value.problems]
    lines = text.splitlines()
    grace_line = next(i for i, line in enumerate(lines, 1) if "grace_days:" in line)
    assert ("inspection.grace_days", grace_line) in where
    assert any(key == "notices" and "escalation levels" in m for key, m in messages)
    (tmp_path / "inspections.yaml").write_text(
        text.replace("grace_days: 5", "grace_days: 5").replace(
            "expense_claim: submitted_at", "expense_claim: amount"
        ),
        encoding="utf-8",
    )
    with pytest.raises(InputError) as raised:
        load_config(tmp_path, model)
    assert [p.key for p in raised.value.problems] == ["inspection.period_fields.expense_claim"]


def test_the_compliance_score() -> None:
    config = load_config(POLICIES, runtime_of(Settings(database_url="sqlite:///unused.db")).library.model)
    assert score(config, records_checked=0, severities={}, quality_severities={}) is None
    assert score(config, records_checked=100, severities={}, quality_severities={}) == 100.0
    # weights minor 1, major 3, critical 5; data quality counts half
    assert (
        score(config, records_checked=100, severities={"minor": 2, "critical": 1}, quality_severities={})
        == 93.0
    )
    assert score(config, records_checked=100, severities={}, quality_severities={"major": 2}) == 97.0
    assert score(config, records_checked=2, severities={"critical": 1}, quality_severities={}) == 0.0


# --- a generated company -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("company")
    generate(folder, records=3000, seed=11)
    return folder


def load_company(factory: sessionmaker[Session], settings: Settings, folder: Path) -> dict[str, pd.DataFrame]:
    library = runtime_of(settings).library
    frames = read_data_dir(folder, library.model, library.company.tz).frames
    records = {
        t: [(p, content_hash(p)) for p in to_payloads(library.model[t], f, library.company.tz)]
        for t, f in frames.items()
    }
    load_dataset(
        factory,
        records=records,
        submitted_by="test",
        source=str(folder),
        now=datetime(2026, 11, 1, tzinfo=UTC),
    )
    return frames


def inspect(
    factory: sessionmaker[Session],
    settings: Settings,
    *,
    period: Period = OCTOBER,
    depts: list[str] | None = None,
    now: datetime = AFTER_GRACE,
) -> flows.InspectionOutcome:
    with factory() as session:
        return flows.run_inspection(
            session,
            runtime=runtime_of(settings),
            config=config_of(settings),
            period=period,
            depts=depts,
            actor="supervisor",
            trigger="api",
            now=now,
        )


def in_scope(
    frames: dict[str, pd.DataFrame], config: InspectionConfig, depts: set[str] | None
) -> set[tuple[str, str]]:
    """(record type, id) of the records of October (computed here, independently)."""
    out: set[tuple[str, str]] = set()
    start, end = pd.Timestamp(OCTOBER.start(SHANGHAI)), pd.Timestamp(OCTOBER.end(SHANGHAI))
    for name, frame in frames.items():
        keep = pd.Series(True, index=frame.index)
        if depts is not None:
            keep &= frame["dept"].isin(sorted(depts)) if "dept" in frame.columns else False
        field = config.period_fields.get(name)
        if field == "year":
            keep &= frame[field] == 2026
        elif field is not None:
            keep &= (frame[field] >= start) & (frame[field] < end)
        out.update((name, str(i)) for i in frame.loc[keep.fillna(False).astype(bool), "id"])
    return out


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(database_url=db_url)


def test_an_inspection_finds_what_the_batch_engine_finds_and_never_duplicates(
    db_session_factory: sessionmaker[Session], settings: Settings, company: Path
) -> None:
    frames = load_company(db_session_factory, settings, company)
    config = config_of(settings)
    first = inspect(db_session_factory, settings)
    inspection = first.inspection
    assert inspection.complete
    assert inspection.as_of == datetime(2026, 11, 5, 16, tzinfo=UTC)

    library = runtime_of(settings).library
    scope = in_scope(frames, config, None)
    expected = {
        (f.rule, f.record_id)
        for f in evaluate_frames(library, frames, as_of=pd.Timestamp(inspection.as_of))
        if (f.record_type, f.record_id) in scope
    }
    with db_session_factory() as session:
        opened = {
            (v.rule_id, v.record_id)
            for v in session.scalars(select(Violation).where(Violation.status == "open"))
        }
        unverifiable = {
            (q.code, q.record_id)
            for q in session.scalars(
                select(DataQualityFinding).where(DataQualityFinding.kind == "unverifiable")
            )
        }
        quality = session.scalar(select(func.count()).select_from(DataQualityFinding)) or 0
    assert expected, "the generated October has violations"
    assert opened == expected - unverifiable
    assert unverifiable <= expected
    assert quality == inspection.counts["data_quality"] > 0
    assert inspection.records_checked == len(scope)

    # one notice per department with findings, numbered in order
    depts = sorted(
        {s.dept for s in first.summaries if s.findings_minor + s.findings_major + s.findings_critical}
    )
    assert [n.dept for n in first.notices] == depts
    assert [n.number for n in first.notices] == [f"ZG-2026-11-{i:04d}" for i in range(1, len(depts) + 1)]
    with db_session_factory() as session:
        listed = {i.violation_id for i in session.scalars(select(NoticeItem))}
        assert len(listed) == len(opened)
    dept_of = {
        (t, str(i)): str(d)
        for t, f in frames.items()
        if "dept" in f.columns
        for i, d in zip(f["id"], f["dept"], strict=True)
        if not pd.isna(d)
    }
    per_dept = Counter(dept_of[key] for key in scope if key in dept_of)
    assert {s.dept: s.records_checked for s in first.summaries} == dict(per_dept)

    # again: nothing new, nothing duplicated
    second = inspect(db_session_factory, settings, now=AFTER_GRACE + timedelta(hours=1))
    assert second.inspection.counts["opened"] == 0
    assert second.inspection.counts["still_open"] == len(opened)
    assert second.inspection.counts["data_quality_opened"] == 0
    assert second.notices == []
    with db_session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Violation)) == len(opened)
        assert session.scalar(select(func.count()).select_from(DataQualityFinding)) == quality
        assert session.scalar(select(func.count()).select_from(Notice)) == len(depts)
        changes = Counter(
            session.scalars(
                select(InspectionFinding.change).where(
                    InspectionFinding.inspection_id == second.inspection.id
                )
            )
        )
    assert changes == {"still_open": len(opened)}


def test_an_inspection_closes_what_no_longer_holds_in_its_scope_only(
    db_session_factory: sessionmaker[Session], settings: Settings
) -> None:
    now = datetime(2026, 10, 1, tzinfo=UTC)
    store(
        db_session_factory,
        settings,
        "department",
        [department("D01", "王经理"), department("D02", "李经理")],
        now=now,
    )
    claims = [
        claim("C1", "2026-10-05T10:00:00+08:00", "2026-10-20T10:00:00+08:00", invoice=None),
        claim("C2", "2026-10-05T10:00:00+08:00", "2026-10-20T10:00:00+08:00", invoice=None, dept="D02"),
        # submitted late in October, not approved: overdue for approval only from Nov 8 on
        claim("C3", "2026-10-29T10:00:00+08:00", None, invoice="52345678"),
    ]
    store(db_session_factory, settings, "expense_claim", claims, now=now)
    store(
        db_session_factory,
        settings,
        "approval",
        [
            approval(f"A{n}{step}", cid, step, "2026-10-06T10:00:00+08:00")
            for n, cid in enumerate(["C1", "C2"])
            for step in ("dept_head", "finance")
        ],
        now=now,
    )
    first = inspect(
        db_session_factory, settings, depts=["D01"], now=datetime(2026, 11, 6, 10, tzinfo=SHANGHAI)
    )
    assert [s.dept for s in first.summaries] == ["D01"]
    with db_session_factory() as session:
        found = {(v.rule_id, v.record_id, v.dept) for v in session.scalars(select(Violation))}
    assert found == {("EXP-001", "C1", "D01")}  # D02's C2 is out of scope; C3 not yet overdue

    # C1 corrected, C3 now overdue for approval: evaluation on arrival (Nov 20) finds C3
    fixed = claim("C1", "2026-10-05T10:00:00+08:00", "2026-10-20T10:00:00+08:00", invoice="62345678")
    store(db_session_factory, settings, "expense_claim", [fixed], now=now)
    from service.evaluation.arrival import judge

    late = datetime(2026, 11, 20, 10, tzinfo=SHANGHAI)
    runtime = runtime_of(settings)
    with db_session_factory() as session:
        from service.violations import service as violations

        (judgement,) = judge(session, runtime, {"expense_claim": ["C3"]}, as_of=late)
        violations.reconcile(
            session,
            record_type="expense_claim",
            record_ids=judgement.record_ids,
            rule_ids=judgement.rule_ids,
            findings=judgement.findings,
            policy_version=runtime.version,
            now=late,
            reason="on arrival",
        )
        session.commit()
        arrived = {v.rule_id for v in session.scalars(select(Violation).where(Violation.record_id == "C3"))}
    assert {"EXP-002", "EXP-003"} <= arrived

    # re-inspecting October (judged as of Nov 6): C1 closes; C3 stays open, it arose after the cut-off
    again = inspect(db_session_factory, settings, depts=["D01"], now=late)
    assert again.inspection.counts["closed"] == 1
    with db_session_factory() as session:
        statuses = {(v.rule_id, v.record_id): v.status for v in session.scalars(select(Violation))}
    assert statuses[("EXP-001", "C1")] == "closed"
    assert all(statuses[(rule, "C3")] == "open" for rule in arrived)
    assert again.summaries[0].closed == 1


def test_scheduled_inspections_run_once_per_fire_time(
    db_session_factory: sessionmaker[Session], settings: Settings
) -> None:
    assert all(is_registered(k) for k in ("inspection.monthly", "inspection.quarterly", "notices.sweep"))
    assert jobs.register_scheduled_jobs() == ["inspection.monthly", "inspection.quarterly", "notices.sweep"]
    fire = datetime(2026, 12, 1, 2, tzinfo=SHANGHAI)
    with time_machine.travel(fire + timedelta(minutes=1), tick=False):
        first = jobs.run_monthly_inspection(db_session_factory, fire_time=fire, job_id="inspection.monthly")
        again = jobs.run_monthly_inspection(db_session_factory, fire_time=fire, job_id="inspection.monthly")
        assert first["period"] == "2026-11"
        assert (first["replayed"], again["replayed"]) == (False, True)
        assert again["inspection_id"] == first["inspection_id"]
        quarter = datetime(2027, 1, 1, 3, tzinfo=SHANGHAI)
    with time_machine.travel(quarter + timedelta(minutes=1), tick=False):
        result = jobs.run_quarterly_inspection(
            db_session_factory, fire_time=quarter, job_id="inspection.quarterly"
        )
        assert result["period"] == "2026-Q4"
        swept = jobs.run_sweep(db_session_factory, fire_time=quarter, job_id="notices.sweep")
        assert swept["reminders"] == 0
    with db_session_factory() as session:
        keys = sorted(k for k in session.scalars(select(Inspection.run_key)) if k)
    assert keys == [
        "inspection.monthly@2026-11-30T18:00:00+00:00",
        "inspection.quarterly@2026-12-31T19:00:00+00:00",
    ]


# --- the API ------------------------------------------------------------------------------------------


def test_the_api_runs_and_reads_inspections(world: World, company: Path) -> None:
    settings: Settings = world.app.state.settings
    load_company(world.session_factory, settings, company)
    headers = world.headers("supervisor")
    bad = world.client.post("/api/v1/inspections", json={"period": "2026-13"}, headers=headers)
    assert bad.status_code == 422
    bad = world.client.post("/api/v1/inspections", json={"period": "1999-01"}, headers=headers)
    assert bad.status_code == 422
    assert bad.json()["error"]["message_zh"]
    made = world.client.post(
        "/api/v1/inspections", json={"period": "2026-10", "depts": ["FIN", "PUR"]}, headers=headers
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert [s["dept"] for s in body["summaries"]] == ["FIN", "PUR"]
    assert {n["dept"] for n in body["notices"]} <= {"FIN", "PUR"}
    listed = world.client.get(
        "/api/v1/inspections", params={"period": "2026-10"}, headers=world.headers("dept_a")
    )
    assert listed.json()["total"] == 0  # dept_a (D01) is not covered
    listed = world.client.get("/api/v1/inspections", headers=headers)
    assert listed.json()["items"][0]["id"] == body["id"]
    quality = world.client.get(
        "/api/v1/data-quality-findings", params={"inspection_id": body["id"], "limit": 500}, headers=headers
    ).json()
    assert quality["total"] == sum(s["data_quality"] for s in body["summaries"])
    assert {q["dept"] for q in quality["items"]} <= {"FIN", "PUR"}
    assert (
        world.client.get(f"/api/v1/inspections/{body['id']}", headers=world.headers("dept_a")).status_code
        == 404
    )
    # an inspection of every department covers D01 too (with no summary of it: no records)
    every = world.client.post(
        "/api/v1/inspections", json={"period": "2026-10", "issue_notices": False}, headers=headers
    )
    assert every.status_code == 201, every.text
    seen = world.client.get("/api/v1/inspections", headers=world.headers("dept_a")).json()
    assert [i["id"] for i in seen["items"]] == [every.json()["id"]]
    assert seen["items"][0]["depts"] is None
    assert seen["items"][0]["summaries"] == []
    assert seen["items"][0]["counts"]["still_open"] > 0


# --- the CLI -------------------------------------------------------------------------------------------


@pytest.fixture
def cli_env(empty_db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("ZHIDU_DATABASE_URL", empty_db_url)
    get_settings.cache_clear()
    yield empty_db_url
    get_settings.cache_clear()


def test_the_cli_inspects_and_lists_notices(cli_env: str, company: Path) -> None:
    from service.cli import app

    upgrade(cli_env)
    engine = engine_for(cli_env)
    try:
        load_company(session_factory(engine), Settings(database_url=cli_env), company)
    finally:
        engine.dispose()
    runner = CliRunner()
    with time_machine.travel(AFTER_GRACE, tick=False):
        result = runner.invoke(app, ["inspect", "--period", "2026-10", "--format", "json"])
        assert result.exit_code == 0, result.output
        doc: dict[str, Any] = json.loads(result.stdout)
        assert doc["period"] == "2026-10"
        assert doc["notices"]
        first = doc["notices"][0]["number"]
        assert first == "ZG-2026-11-0001"
        table = runner.invoke(app, ["inspect", "--period", "2026-10", "--dept", "FIN"])
        assert table.exit_code == 0, table.output
        assert "FIN" in table.stdout
        listed = runner.invoke(app, ["notices", "list"])
        assert listed.exit_code == 0, listed.output
        assert first in listed.stdout
        shown = runner.invoke(app, ["notices", "show", first, "--lang", "en"])
        assert shown.exit_code == 0, shown.output
        assert "issued" in shown.stdout
        assert runner.invoke(app, ["notices", "show", "ZG-1999-01-0001"]).exit_code == 2
        assert runner.invoke(app, ["inspect", "--period", "2026-13"]).exit_code == 2
        assert runner.invoke(app, ["inspect", "--period", "2027-01"]).exit_code == 2
    with time_machine.travel(AFTER_GRACE + timedelta(days=40), tick=False):
        swept = runner.invoke(app, ["notices", "sweep"])
        assert swept.exit_code == 0, swept.output
        assert "escalations" in swept.stdout
