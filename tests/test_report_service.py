"""Gathering the report documents from the database (`service/reports/service.py`): periods, the
digest, the violation report, the scorecard and the rectification notice, on a company whose every
number is known by hand (`tests/report_scenario.py`), built through the real flows; then every
document rendered in every format and language, and the files parsed back."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import openpyxl
import pypdf
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import reports
from service.penalties.models import Penalty
from service.reports import service
from service.reports.periods import (
    ReportPeriodError,
    digest_period,
    parse_period,
    previous_period,
)
from service.settings import Settings
from tests.access_inspections import config_of, runtime_of
from tests.report_scenario import Scenario, build

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 15, 12, tzinfo=UTC)  # after every deadline of the scenario
OCTOBER = parse_period("2026-10")


# --- periods ------------------------------------------------------------------------------------------


def test_report_periods() -> None:
    assert parse_period("2026-10") == reports.Period(date(2026, 10, 1), date(2026, 10, 31), "2026-10")
    assert parse_period("2026-Q4") == reports.Period(date(2026, 10, 1), date(2026, 12, 31), "2026-Q4")
    assert parse_period("2026-W43") == reports.Period(date(2026, 10, 19), date(2026, 10, 25), "2026-W43")
    assert parse_period(" 2026-10-01..2026-10-15 ").end == date(2026, 10, 15)
    assert parse_period("2026-W53").start  # 2026 has 53 ISO weeks
    assert parse_period("2026-W53").start == date(2026, 12, 28)
    assert previous_period(parse_period("2026-01")).label == "2025-12"
    assert previous_period(parse_period("2026-Q1")).label == "2025-Q4"
    assert previous_period(parse_period("2026-W01")).label == "2025-W52"
    assert previous_period(parse_period("2026-10-11..2026-10-20")) == parse_period("2026-10-01..2026-10-10")
    for bad, why in [
        ("2026-13", "01-12"),
        ("2026-Q5", "Q1-Q4"),
        ("2027-W53", "W01-W52"),
        ("1999-10", "2000-2100"),
        ("2026-10-31..2026-10-01", "ends before it starts"),
        ("2026-02-30..2026-03-01", "not a calendar date"),
        ("2024-01-01..2026-12-31", "at most 731 days"),
        ("october", ""),
        ("", ""),
    ]:
        with pytest.raises(ReportPeriodError) as raised:
            parse_period(bad)
        assert why in raised.value.message, raised.value.message
        assert "报告期间" in raised.value.message_zh


def test_digest_periods_are_the_last_complete_week_or_month() -> None:
    # Monday 2026-10-26: the week before is W43 (19-25 October)
    assert digest_period("weekly", date(2026, 10, 26)).label == "2026-W43"
    assert digest_period("weekly", date(2026, 11, 1)).label == "2026-W43"  # a Sunday: W44 not over
    assert digest_period("weekly", date(2027, 1, 4)) == reports.Period(
        date(2026, 12, 28), date(2027, 1, 3), "2026-W53"
    )
    assert digest_period("monthly", date(2026, 11, 1)).label == "2026-10"
    assert digest_period("monthly", date(2026, 11, 30)).label == "2026-10"
    assert digest_period("monthly", date(2027, 1, 1)) == parse_period("2026-12")
    with pytest.raises(ValueError, match="weekly or monthly"):
        digest_period("daily", date(2026, 11, 1))


# --- the scenario ---------------------------------------------------------------------------------------


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(database_url=db_url)


@pytest.fixture
def scenario(db_session_factory: sessionmaker[Session], settings: Settings) -> Scenario:
    return build(db_session_factory, settings)


@pytest.fixture
def session(db_session_factory: sessionmaker[Session]) -> Iterator[Session]:
    with db_session_factory() as s:
        yield s


@pytest.fixture
def src(settings: Settings) -> service.Sources:
    return service.sources(library=runtime_of(settings).library, config=config_of(settings), now=NOW)


def test_the_weekly_digest(scenario: Scenario, session: Session, src: service.Sources) -> None:
    digest = service.gather_digest(
        session=session,
        manager="赵总",
        depts=["D02", "D01"],
        cadence="weekly",
        period=parse_period("2026-W43"),
        link="/api/v1/reports/digest?cadence=weekly&period=2026-W43",
        src=src,
    )
    assert digest.manager == "赵总"
    assert digest.company == "示例科技有限公司"
    assert [d.code for d in digest.scope] == ["D01", "D02"]
    assert digest.scope[0].name == reports.Text("部门D01", "Dept D01")
    assert [(c.dept.code, c.previous, c.current) for c in digest.score_changes] == [
        ("D01", Decimal("80.0"), Decimal("87.5")),
        ("D02", Decimal("100.0"), Decimal("75.0")),
    ]
    assert digest.score_changes[1].delta == Decimal("-25.0")
    assert digest.new_notices == []  # the notices came in November
    assert digest.overdue_notices == []
    assert [(r.rule, r.findings, r.severity) for r in digest.top_rules] == [("EXP-001", 2, "minor")]
    assert [c.id for c in digest.top_rules[0].clauses] == list(src.library.rule("EXP-001").clauses)
    assert digest.penalties == []
    assert digest.link == "/api/v1/reports/digest?cadence=weekly&period=2026-W43"


def test_the_monthly_digest(scenario: Scenario, session: Session, src: service.Sources) -> None:
    november = service.gather_digest(
        session=session, manager="赵总", depts=["D01", "D02", "D03"], cadence="monthly",
        period=parse_period("2026-11"), src=src,
    )  # fmt: skip
    assert november.score_changes == []  # no records in November
    assert [(n.number, n.dept.code, n.status, n.findings) for n in november.new_notices] == [
        (scenario.d01_notice, "D01", "overdue", 2),
        (scenario.d02_notice, "D02", "closed", 1),
    ]
    d01, d02 = november.new_notices
    assert d01.issued_on == date(2026, 11, 10)
    assert d02.closed_on == date(2026, 11, 15)
    assert d02.days_to_close == 5
    # EXP-001 is rectified within `rectify_minor_days` (30): the D01 notice is due on 10 December,
    # overdue at the end of December (and now), not at the end of November
    assert d01.deadline == date(2026, 12, 10)
    assert november.overdue_notices == []
    december = service.gather_digest(
        session=session,
        manager="赵总",
        depts=["D01", "D02"],
        cadence="monthly",
        period=parse_period("2026-12"),
        src=src,
    )
    assert december.new_notices == []
    assert [(n.number, n.status) for n in december.overdue_notices] == [(scenario.d01_notice, "overdue")]
    assert december.penalties == []
    assert november.top_rules == []  # no records in November
    penalty = session.get(Penalty, scenario.penalty_id)
    assert penalty is not None
    (item,) = november.penalties
    assert (item.person, item.dept.code, item.rule, item.kind, item.decided_on, item.notice) == (
        "李四", "D02", "EXP-001", penalty.kind, date(2026, 11, 16), scenario.d02_notice,
    )  # fmt: skip
    october = service.gather_digest(
        session=session,
        manager="赵总",
        depts=["D03", "D02", "D01"],
        cadence="monthly",
        period=OCTOBER,
        src=src,
    )
    # October's scores are the inspection's; September had no records: no previous score
    assert [(c.dept.code, c.previous, c.current) for c in october.score_changes] == [
        ("D01", None, Decimal("84.6")),
        ("D02", None, Decimal("87.5")),
        ("D03", None, Decimal("100.0")),
    ]
    assert [(r.rule, r.findings) for r in october.top_rules] == [("EXP-001", 3)]
    with pytest.raises(ValueError, match="weekly or monthly"):
        service.gather_digest(session=session, manager="x", depts=["D01"], cadence="daily", period=OCTOBER)
    with pytest.raises(ValueError, match="at least one department"):
        service.gather_digest(session=session, manager="x", depts=[], cadence="weekly", period=OCTOBER)


# --- the violation report ---------------------------------------------------------------------------


def test_the_violation_report(scenario: Scenario, session: Session, src: service.Sources) -> None:
    report = service.gather_violation_report(session=session, period=OCTOBER, src=src)
    totals = report.totals
    # 25 claims, 50 approvals (no department) and 3 department records (standing: every period)
    assert totals == reports.ViolationTotals(
        records_checked=78,
        findings=3,  # B3 was rectified (closed): still a finding of October
        departments=2,
        rules=1,
        open_notices=0,
        overdue_notices=1,
        fines=Decimal("0.00"),
        performance_points=0,
    )
    assert [(d.dept.code, d.findings, d.minor, d.records) for d in report.by_department] == [
        ("D01", 2, 2, 13),
        ("D02", 1, 1, 8),
        ("D03", 0, 0, 4),
    ]
    assert [(r.rule, r.findings) for r in report.by_rule] == [("EXP-001", 3)]
    assert report.by_rule[0].title.zh == src.library.rule("EXP-001").title.zh
    assert [(s.severity, s.findings) for s in report.by_severity] == [("minor", 3)]
    assert [(c.dept.code, c.rule, c.findings) for c in report.by_department_rule] == [
        ("D01", "EXP-001", 2),
        ("D02", "EXP-001", 1),
    ]
    assert len(report.trend) == 31
    assert report.trend[0].label == "10-01"
    assert {p.label: p.findings for p in report.trend if p.findings} == {"10-14": 1, "10-20": 1, "10-21": 1}
    assert [(n.number, n.status, n.findings) for n in report.notices] == [
        (scenario.d01_notice, "overdue", 2),
        (scenario.d02_notice, "closed", 1),
    ]
    assert report.penalties == []  # decided in November
    assert [(f.record_id, f.dept.code if f.dept else None, f.responsible) for f in report.findings] == [
        ("B1", "D01", "张三"),
        ("B2", "D01", "张三"),
        ("B3", "D02", "李四"),
    ]
    from service.violations.models import Violation

    ids = dict(session.execute(select(Violation.record_id, Violation.id)).tuples().all())
    assert [f.link for f in report.findings] == [f"/api/v1/violations/{ids[r]}" for r in ("B1", "B2", "B3")]
    assert report.findings[0].clauses == list(src.library.rule("EXP-001").clauses)
    assert report.findings[0].message.zh
    assert report.findings[0].message.en
    assert report.generated_at == NOW.astimezone(SHANGHAI)

    # scope: one department; rules; severities; a range over October and November (penalties)
    d02 = service.gather_violation_report(session=session, period=OCTOBER, depts=["D02"], src=src)
    assert (d02.totals.records_checked, d02.totals.findings) == (8, 1)
    assert [n.number for n in d02.notices] == [scenario.d02_notice]
    assert [d.code for d in d02.scope.departments] == ["D02"]
    none = service.gather_violation_report(
        session=session, period=OCTOBER, rules=["EXP-002"], severities=["major"], src=src
    )
    assert (none.totals.findings, none.findings, none.notices) == (0, [], [])
    both = service.gather_violation_report(
        session=session, period=parse_period("2026-10-01..2026-11-30"), src=src
    )
    assert len(both.trend) == 61  # 61 days: still daily, labelled by date
    penalty = session.get(Penalty, scenario.penalty_id)
    assert penalty is not None
    (item,) = both.penalties
    assert (item.person, item.kind, item.notice) == ("李四", penalty.kind, scenario.d02_notice)
    fines = Decimal(penalty.amount_cents or 0) / 100 if penalty.kind == "fine" else Decimal(0)
    assert both.totals.fines == fines
    quarter = service.gather_violation_report(session=session, period=parse_period("2026-Q4"), src=src)
    assert quarter.trend[0].label == "2026-W40"
    assert quarter.trend[-1].label == "2026-W53"
    assert sum(p.findings for p in quarter.trend) == 3


# --- the scorecard ----------------------------------------------------------------------------------


def test_the_scorecard(scenario: Scenario, session: Session, src: service.Sources) -> None:
    card = service.gather_scorecard(session=session, dept="D01", period=OCTOBER, src=src)
    assert (card.dept.code, card.score, card.rank, card.ranked_of) == ("D01", Decimal("84.6"), 3, 3)
    # May-September had no records: no score; October's is the inspection's
    assert [(p.label, p.score, p.findings) for p in card.trend] == [("2026-10", Decimal("84.6"), 2)]
    assert [(r.rule, r.findings) for r in card.findings_by_rule] == [("EXP-001", 2)]
    assert [(n.number, n.status, n.days_to_close) for n in card.notices] == [
        (scenario.d01_notice, "overdue", None)
    ]
    assert card.penalties == []
    check = card.self_check
    assert (check.declared, check.found, check.matched, check.accuracy) == (1, 2, 1, Decimal("0.5"))
    assert [(r.rule, r.declared, r.found, r.matched) for r in check.by_rule] == [("EXP-001", 1, 2, 1)]

    d02 = service.gather_scorecard(session=session, dept="D02", period=OCTOBER, src=src)
    assert (d02.score, d02.rank) == (Decimal("87.5"), 2)
    assert [(n.number, n.status, n.closed_on, n.days_to_close) for n in d02.notices] == [
        (scenario.d02_notice, "closed", date(2026, 11, 15), 5)
    ]
    assert (d02.self_check.found, d02.self_check.accuracy) == (0, None)  # no self-check
    # without an inspection of the period the score is computed the same way: October and
    # November together give D02 the inspection's 87.5, and the penalty decided in November
    ranged = service.gather_scorecard(
        session=session, dept="D02", period=parse_period("2026-10-01..2026-11-30"), src=src
    )
    assert (ranged.score, ranged.rank, ranged.ranked_of) == (Decimal("87.5"), 2, 3)
    assert [p.notice for p in ranged.penalties] == [scenario.d02_notice]
    week = service.gather_scorecard(session=session, dept="D03", period=parse_period("2026-W42"), src=src)
    assert (week.score, week.rank, week.ranked_of) == (Decimal("100.0"), 1, 3)  # tied with D02
    assert [(p.label, p.score) for p in week.trend] == [
        ("2026-W40", Decimal("100.0")),
        ("2026-W41", Decimal("100.0")),
        ("2026-W42", Decimal("100.0")),
    ]
    d01_week = service.gather_scorecard(session=session, dept="D01", period=parse_period("2026-W43"), src=src)
    assert (d01_week.score, d01_week.rank) == (Decimal("87.5"), 2)
    assert [(p.label, p.score, p.findings) for p in d01_week.trend] == [
        ("2026-W42", Decimal("80.0"), 1),
        ("2026-W43", Decimal("87.5"), 1),
    ]
    with pytest.raises(service.ReportNotFoundError, match="no department D99"):
        service.gather_scorecard(session=session, dept="D99", period=OCTOBER, src=src)
    with pytest.raises(service.NoScoreError, match="no records in 2026-09"):
        service.gather_scorecard(session=session, dept="D03", period=parse_period("2026-09"), src=src)


# --- the notice -------------------------------------------------------------------------------------


def test_the_rectification_notice(scenario: Scenario, session: Session, src: service.Sources) -> None:
    notice = service.gather_notice(session=session, number=scenario.d01_notice, src=src)
    assert (notice.number, notice.dept.code, notice.issued_on, notice.deadline) == (
        scenario.d01_notice, "D01", date(2026, 11, 10), date(2026, 12, 10),
    )  # fmt: skip
    assert [(f.rule, f.record_id, f.responsible) for f in notice.findings] == [
        ("EXP-001", "B1", "张三"),
        ("EXP-001", "B2", "张三"),
    ]
    rule = src.library.rule("EXP-001")
    clause = src.library.clauses[rule.clauses[0]]
    assert notice.findings[0].clauses[0].text == reports.Text(clause.text.zh, clause.text.en)
    assert notice.findings[0].rule_title.en == rule.title.en
    assert [(p.name, p.role.en) for p in notice.responsible] == [
        ("张三", "Person responsible"),
        ("王经理", "Department head"),
    ]
    assert "费用报销单" in notice.to_submit[1].zh
    assert "10" in notice.to_submit[2].en  # the evidence limit of inspections.yaml
    assert notice.signature == reports.SignatureBlock(
        issuing_body=reports.Text("流程监督小组", "Process Supervision Group"),
        signer="supervisor",
        recipient="王经理",
    )
    with pytest.raises(service.ReportNotFoundError, match="no rectification notice ZG-2099-01-0001"):
        service.gather_notice(session=session, number="ZG-2099-01-0001", src=src)


# --- every document, every format, both languages -----------------------------------------------------


def test_gathered_documents_render_and_parse(
    scenario: Scenario, session: Session, src: service.Sources
) -> None:
    documents: dict[str, reports.Document] = {
        "violations": service.gather_violation_report(session=session, period=OCTOBER, src=src),
        "scorecard": service.gather_scorecard(session=session, dept="D01", period=OCTOBER, src=src),
        "notice": service.gather_notice(session=session, number=scenario.d01_notice, src=src),
        "digest": service.gather_digest(
            session=session, manager="赵总", depts=["D01", "D02"], cadence="monthly", period=OCTOBER, src=src
        ),
    }
    clause = src.library.clauses[src.library.rule("EXP-001").clauses[0]]
    for name, document in documents.items():
        for lang in ("zh", "en"):
            html = reports.render(document, "html", lang).decode("utf-8")
            assert "<html" in html
            pdf = pypdf.PdfReader(io.BytesIO(reports.render(document, "pdf", lang)))
            text = "".join(page.extract_text() for page in pdf.pages)
            if name == "notice":
                assert scenario.d01_notice in text
                if lang == "zh":
                    flat = text.replace("\n", "")
                    assert clause.text.zh[:12] in flat, flat[:2000]
            else:
                assert ("部门D01" if lang == "zh" else "Dept D01") in text
            if name == "notice":
                continue
            book = openpyxl.load_workbook(io.BytesIO(reports.render(document, "xlsx", lang)), read_only=True)
            assert len(book.sheetnames) >= 3
            raw = reports.render(document, "csv", lang)
            assert raw.startswith(b"\xef\xbb\xbf")
            rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
            assert len(rows) >= 2
    findings = list(
        csv.reader(io.StringIO(reports.render(documents["violations"], "csv", "en").decode("utf-8-sig")))
    )
    assert [r for r in findings[1:] if "B2" in r]
    assert len(findings) == 1 + 3
