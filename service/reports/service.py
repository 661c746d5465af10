"""Gathering the documents of `reports/` from the database: keyword-only functions on a session
that only read (never flush, never commit).

    gather_violation_report(session=s, period=p, depts=["D01"])   -> reports.ViolationReport
    gather_scorecard(session=s, dept="D01", period=p)             -> reports.DepartmentScorecard
    gather_notice(session=s, number="ZG-2026-11-0001")            -> reports.RectificationNotice
    gather_digest(session=s, manager="王经理", depts=[...], cadence="weekly", period=p) -> reports.Digest
    digest_period("weekly", date.today())                          -> the last complete ISO week

Which findings belong to a period: those (not waived) of records placed in it the way inspections
place them, by the record type's period field (`policies/inspections.yaml`), read from the stored
canonical payload in SQL (its first ten characters are the local date: timestamps are stored as
the company's wall-clock time with its offset); a year field places a record in that year; types
without a period field are standing records, in every period. A closed (rectified) finding still
counts: it was a finding of that period.

Scores: the stored result of the latest inspection of exactly that period (a month or quarter)
for the department; otherwise computed the way inspections compute them
(`service.inspections.core.score`) from the period's records and findings.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal, or_, select, true
from sqlalchemy.orm import Session

import reports
from rules.library import Library
from service.accounts.models import User
from service.audit.schemas import SYSTEM_ACTOR
from service.inspections.config import InspectionConfig, load_config
from service.inspections.core import score
from service.inspections.models import DataQualityFinding, Inspection, InspectionSummary
from service.inspections.periods import Period as InspectionPeriod
from service.inspections.periods import PeriodError
from service.notices import service as notices
from service.notices.models import Notice, NoticeItem
from service.notices.schemas import DEPARTMENT_TO_ACT, NoticeStatus
from service.penalties.models import Penalty
from service.records.models import Record
from service.reports.periods import (
    CADENCES,
    ReportPeriodError,
    digest_period,
    last_periods,
    parse_period,
    previous_period,
)
from service.selfchecks.models import SelfCheck
from service.violations.models import Violation

SEVERITY_ORDER = {s: n for n, s in enumerate(reports.models.SEVERITIES)}  # most severe first
DECIDED_PENALTIES = ("confirmed", "appealed", "upheld", "reduced")  # not proposed, not overturned
TREND_DAILY_MAX_DAYS = 62  # longer periods: one trend point per ISO week
TREND_PERIODS = 6  # a scorecard's score trend: this period and the five before
TOP_RULES = 10
STANDING = "*"  # the period key of a record type without a period field: in every period
NO_DEPT = reports.Department("-", reports.Text("（无部门）", "(no department)"))
ISSUING_BODY = reports.Text("流程监督小组", "Process Supervision Group")
RESPONSIBLE_ROLE = reports.Text("责任人", "Person responsible")
HEAD_ROLE = reports.Text("部门负责人", "Department head")
VIOLATION_LINK = "/api/v1/violations/{id}"


class ReportNotFoundError(LookupError):
    """What a document is about does not exist (a notice number, a department)."""

    def __init__(self, message: str, message_zh: str) -> None:
        super().__init__(message)
        self.message = message
        self.message_zh = message_zh


class NoScoreError(ValueError):
    """A department without any record in the period has no score (inspections give none)."""

    def __init__(self, dept: str, period: reports.Period) -> None:
        self.message = (
            f"department {dept} has no records in {period.describe()}: it has no score for that period"
        )
        self.message_zh = f"部门 {dept} 在 {period.describe()} 没有任何记录，该期间没有得分"
        super().__init__(self.message)


# --- what every gatherer needs ----------------------------------------------------------------------


@dataclass(frozen=True)
class Sources:
    """The policy library (rules, clauses, company), the inspection configuration (period fields,
    score weights) and the time the documents are generated."""

    library: Library
    config: InspectionConfig
    now: datetime

    @property
    def tz(self) -> Any:
        return self.library.company.tz

    @property
    def company(self) -> str:
        return self.library.company.name.zh

    def local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.tz).date()

    def start_of(self, day: date) -> datetime:
        """The first instant of `day` in the company's zone, in UTC."""
        return datetime.combine(day, time(0), tzinfo=self.tz).astimezone(UTC)

    def bounds(self, period: reports.Period) -> tuple[datetime, datetime]:
        """[first instant, first instant after) of `period`, in UTC."""
        return self.start_of(period.start), self.start_of(period.end + timedelta(days=1))


def sources(
    *, library: Library | None = None, config: InspectionConfig | None = None, now: datetime | None = None
) -> Sources:
    """The library and configuration of the process' settings unless given; `now` defaults to now."""
    if library is None or config is None:
        from service.evaluation.runtime import runtime_for
        from service.settings import get_settings

        settings = get_settings()
        library = library or runtime_for(settings).library
        config = config or load_config(settings.policies_dir, library.model)
    return Sources(library, config, (now or datetime.now(UTC)).astimezone(UTC))


def _rule_title(src: Sources, rule_id: str) -> reports.Text:
    try:
        rule = src.library.rule(rule_id)
    except KeyError:  # a rule no longer in the library: its id is all we have
        return reports.Text(rule_id, rule_id)
    return reports.Text(rule.title.zh, rule.title.en)


def _rule_severity(src: Sources, rule_id: str, seen: Iterable[str]) -> str:
    try:
        return src.library.rule(rule_id).severity
    except KeyError:
        return min(seen, key=lambda s: SEVERITY_ORDER.get(s, 99), default="minor")


def _clause(src: Sources, clause_id: str, *, with_text: bool = False) -> reports.Clause:
    clause = src.library.clauses.get(clause_id)
    if clause is None:
        return reports.Clause(clause_id, reports.Text(clause_id, clause_id))
    text = reports.Text(clause.text.zh, clause.text.en) if with_text else None
    return reports.Clause(clause_id, reports.Text(clause.title.zh, clause.title.en), text)


def _rule_clauses(src: Sources, rule_id: str) -> list[reports.Clause]:
    try:
        ids = src.library.rule(rule_id).clauses
    except KeyError:
        return []
    return [_clause(src, c) for c in ids]


class _Departments:
    """Department codes to `reports.Department`, named from the current `department` records."""

    def __init__(self, session: Session) -> None:
        self.names: dict[str, reports.Text] = {}
        self.heads: dict[str, str] = {}
        rows = session.execute(
            select(Record.record_id, Record.payload).where(
                Record.record_type == "department", Record.is_current == true()
            )
        )
        for code, payload in rows:
            zh = str(payload.get("name") or code)
            self.names[str(code)] = reports.Text(zh, str(payload.get("name_en") or zh))
            if payload.get("head"):
                self.heads[str(code)] = str(payload["head"])

    def __call__(self, code: str | None) -> reports.Department:
        if code is None:
            return NO_DEPT
        return reports.Department(code, self.names.get(code, reports.Text(code, code)))


def department_exists(session: Session, *, dept: str) -> bool:
    """A department is known when it has a department record, records, findings or notices."""
    for query in (
        select(Record.id).where(Record.record_type == "department", Record.record_id == dept),
        select(Record.id).where(Record.dept == dept),
        select(Violation.id).where(Violation.dept == dept),
        select(Notice.id).where(Notice.dept == dept),
    ):
        if session.scalar(query.limit(1)) is not None:
            return True
    return False


# --- placing records in periods (SQL) ---------------------------------------------------------------


def _period_key(config: InspectionConfig) -> ColumnElement[Any]:
    """Per current record: its local date 'YYYY-MM-DD' (timestamp or date period field), its year
    'YYYY' (int period field), STANDING (no period field), NULL (period field empty)."""
    whens = [
        (Record.record_type == record_type, func.substr(Record.payload[name].as_string(), 1, 10))
        for record_type, name in sorted(config.period_fields.items())
    ]
    return case(*whens, else_=literal(STANDING))


def _key_in_range(key: ColumnElement[Any], start: date, end: date) -> ColumnElement[bool]:
    years = [str(y) for y in range(start.year, end.year + 1)]
    return or_(key == STANDING, key.between(start.isoformat(), end.isoformat()), key.in_(years))


def _key_in(key: str | None, period: reports.Period) -> bool:
    """The Python side of `_key_in_range`, for counts grouped by key."""
    if key is None:
        return False
    if key == STANDING:
        return True
    if len(key) == 4:
        return period.start.year <= int(key) <= period.end.year
    return period.start.isoformat() <= key <= period.end.isoformat()


def _record_join() -> ColumnElement[bool]:
    return and_(
        Record.record_type == Violation.record_type,
        Record.record_id == Violation.record_id,
        Record.is_current == true(),
    )


@dataclass(frozen=True)
class _Filter:
    """Which findings a document counts: not waived, of records of the period, in the scope."""

    key: ColumnElement[Any]
    conditions: tuple[ColumnElement[bool], ...]

    @classmethod
    def of(
        cls,
        src: Sources,
        *,
        start: date,
        end: date,
        depts: Sequence[str] = (),
        rules: Sequence[str] = (),
        severities: Sequence[str] = (),
    ) -> _Filter:
        key = _period_key(src.config)
        conditions: list[ColumnElement[bool]] = [
            Violation.status != "waived",
            _key_in_range(key, start, end),
        ]
        if depts:
            conditions.append(Violation.dept.in_(sorted(set(depts))))
        if rules:
            conditions.append(Violation.rule_id.in_(sorted(set(rules))))
        if severities:
            conditions.append(Violation.severity.in_(sorted(set(severities))))
        return cls(key, tuple(conditions))

    def select(self, *columns: Any) -> Any:
        return select(*columns).select_from(Violation).join(Record, _record_join()).where(*self.conditions)


# --- notices and penalties --------------------------------------------------------------------------


def _notice_status(notice: Notice, at: datetime) -> str:
    if notice.status == NoticeStatus.CLOSED:
        return "closed"
    return "overdue" if notices.is_overdue(notice, at) else "open"


def _notice_summaries(
    session: Session, src: Sources, rows: Sequence[Notice], depts: _Departments
) -> list[reports.NoticeSummary]:
    counts = notices.item_counts(session, notice_ids=[n.id for n in rows])
    out = [
        reports.NoticeSummary(
            number=n.number,
            dept=depts(n.dept),
            issued_on=src.local_date(n.issued_at),
            deadline=n.due_date,
            status=_notice_status(n, src.now),
            findings=counts.get(n.id, 0),
            closed_on=None if n.closed_at is None else src.local_date(n.closed_at),
        )
        for n in rows
    ]
    return sorted(out, key=lambda s: (s.issued_on, s.number))


def _notices_of_findings(session: Session, finding_filter: _Filter) -> list[Notice]:
    """Notices listing at least one of the findings `finding_filter` selects."""
    listed = (
        select(NoticeItem.notice_id)
        .join(Violation, NoticeItem.violation_id == Violation.id)
        .join(Record, _record_join())
        .where(*finding_filter.conditions)
    )
    return list(session.scalars(select(Notice).where(Notice.id.in_(listed)).order_by(Notice.id)))


def _penalties(
    session: Session,
    src: Sources,
    depts: _Departments,
    *,
    period: reports.Period,
    scope: Sequence[str] = (),
    rules: Sequence[str] = (),
    severities: Sequence[str] = (),
) -> list[reports.PenaltyItem]:
    """Penalties decided (confirmed, appealed or decided on appeal; not overturned) in `period`."""
    start, end = src.bounds(period)
    query = (
        select(Penalty, Notice.number)
        .join(Notice, Penalty.notice_id == Notice.id)
        .where(
            Penalty.status.in_(DECIDED_PENALTIES),
            Penalty.decided_at >= start,
            Penalty.decided_at < end,
        )
        .order_by(Penalty.decided_at, Penalty.id)
    )
    if scope:
        query = query.where(Penalty.dept.in_(sorted(set(scope))))
    if rules:
        query = query.where(Penalty.rule_id.in_(sorted(set(rules))))
    if severities:
        query = query.where(Penalty.severity.in_(sorted(set(severities))))
    out: list[reports.PenaltyItem] = []
    for penalty, number in session.execute(query):
        assert penalty.decided_at is not None  # the query asks for it
        out.append(
            reports.PenaltyItem(
                person=penalty.person,
                dept=depts(penalty.dept),
                rule=penalty.rule_id,
                kind=penalty.kind,
                decided_on=src.local_date(penalty.decided_at),
                occurrence=penalty.occurrence,
                amount=None
                if penalty.kind != "fine" or penalty.amount_cents is None
                else Decimal(penalty.amount_cents) / 100,
                points=penalty.points if penalty.kind == "performance_points" else None,
                notice=number,
            )
        )
    return out


# --- counts -----------------------------------------------------------------------------------------


def _rule_counts(src: Sources, counts: Mapping[str, Counter[str]]) -> list[reports.RuleCount]:
    """RuleCounts from rule -> severity -> findings, most findings first."""
    out = [
        reports.RuleCount(
            rule=rule,
            title=_rule_title(src, rule),
            severity=_rule_severity(src, rule, by_severity),
            clauses=_rule_clauses(src, rule),
            findings=sum(by_severity.values()),
        )
        for rule, by_severity in counts.items()
    ]
    return sorted(out, key=lambda r: (-r.findings, SEVERITY_ORDER.get(r.severity, 99), r.rule))


def _trend(period: reports.Period, by_key: Mapping[str | None, int]) -> list[reports.TrendPoint]:
    """Findings per day (periods up to TREND_DAILY_MAX_DAYS days) or per ISO week, every day or
    week of the period listed (zeros too); findings of standing records have no day and are not in it."""
    days = (period.end - period.start).days + 1
    per_day: Counter[date] = Counter()
    for key, n in by_key.items():
        if key is not None and len(key) == 10:
            per_day[date.fromisoformat(key)] += n
    if days <= TREND_DAILY_MAX_DAYS:
        same_year = period.start.year == period.end.year
        points = []
        for offset in range(days):
            day = period.start + timedelta(days=offset)
            label = day.strftime("%m-%d") if same_year else day.isoformat()
            points.append(reports.TrendPoint(label, per_day[day]))
        return points
    weeks: dict[str, int] = {}
    for offset in range(days):
        day = period.start + timedelta(days=offset)
        iso = day.isocalendar()
        label = f"{iso.year}-W{iso.week:02d}"
        weeks[label] = weeks.get(label, 0) + per_day[day]
    return [reports.TrendPoint(label, n) for label, n in weeks.items()]


def _records_checked(
    session: Session, src: Sources, *, start: date, end: date, depts: Sequence[str] = ()
) -> list[tuple[str | None, str | None, int]]:
    """(dept, period key, current records) of the record types of the model, between `start` and
    `end` (keys in range), grouped."""
    key = _period_key(src.config)
    query = (
        select(Record.dept, key, func.count())
        .where(
            Record.is_current == true(),
            Record.record_type.in_(sorted(src.library.model.types)),
            _key_in_range(key, start, end),
        )
        .group_by(Record.dept, key)
    )
    if depts:
        query = query.where(Record.dept.in_(sorted(set(depts))))
    return [(d, k, int(n)) for d, k, n in session.execute(query)]


# --- scores -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeptScore:
    score: Decimal
    findings: int
    source: str  # "inspection" (stored result) or "computed"


def _decimal_score(value: float) -> Decimal:
    return Decimal(str(round(value, 1)))


def scores_for(
    session: Session, src: Sources, periods: Sequence[reports.Period]
) -> dict[str, dict[str, DeptScore]]:
    """Period label -> department -> score and findings, for every department with a score:
    the stored result of the latest inspection of that exact period, else computed like
    inspections do (`service.inspections.core.score`) from the period's records, findings (not
    waived) and data-quality findings."""
    out: dict[str, dict[str, DeptScore]] = {p.label: {} for p in periods}
    stored = session.execute(
        select(
            Inspection.period,
            InspectionSummary.dept,
            InspectionSummary.score,
            InspectionSummary.findings_minor
            + InspectionSummary.findings_major
            + InspectionSummary.findings_critical,
        )
        .join(Inspection, InspectionSummary.inspection_id == Inspection.id)
        .where(Inspection.period.in_(sorted(out)), InspectionSummary.score.is_not(None))
        .order_by(Inspection.started_at, Inspection.id)
    )
    for label, summary_dept, value, findings in stored:
        if value is not None:  # the query asks for scores; typed as optional
            out[label][summary_dept] = DeptScore(_decimal_score(float(value)), int(findings), "inspection")

    start = min(p.start for p in periods)
    end = max(p.end for p in periods)
    records = _records_checked(session, src, start=start, end=end)
    key = _period_key(src.config)
    found = _Filter.of(src, start=start, end=end)
    violation_rows = session.execute(
        found.select(Violation.dept, Violation.severity, key, func.count()).group_by(
            Violation.dept, Violation.severity, key
        )
    ).all()
    quality_rows = session.execute(
        select(DataQualityFinding.dept, DataQualityFinding.severity, key, func.count())
        .select_from(DataQualityFinding)
        .join(
            Record,
            and_(
                Record.record_type == DataQualityFinding.record_type,
                Record.record_id == DataQualityFinding.record_id,
                Record.is_current == true(),
            ),
        )
        .where(_key_in_range(key, start, end))
        .group_by(DataQualityFinding.dept, DataQualityFinding.severity, key)
    ).all()
    for period in periods:
        checked: Counter[str] = Counter()
        for record_dept, k, n in records:
            if record_dept is not None and _key_in(k, period):
                checked[record_dept] += n
        severities: dict[str, Counter[str]] = defaultdict(Counter)
        for dept, severity, k, n in violation_rows:
            if dept is not None and _key_in(k, period):
                severities[dept][severity] += int(n)
        quality: dict[str, Counter[str]] = defaultdict(Counter)
        for dept, severity, k, n in quality_rows:
            if dept is not None and _key_in(k, period):
                quality[dept][severity] += int(n)
        have = out[period.label]
        for dept, n in checked.items():
            if dept in have:
                continue
            value = score(
                src.config, records_checked=n, severities=severities[dept], quality_severities=quality[dept]
            )
            if value is not None:
                have[dept] = DeptScore(_decimal_score(value), sum(severities[dept].values()), "computed")
    return out


def rank_of(scores: Mapping[str, DeptScore], dept: str) -> int:
    """Competition ranking: 1 + the departments with a strictly higher score."""
    mine = scores[dept].score
    return 1 + sum(1 for s in scores.values() if s.score > mine)


# --- the violation report ---------------------------------------------------------------------------


def gather_violation_report(
    *,
    session: Session,
    period: reports.Period,
    depts: Sequence[str] = (),
    rules: Sequence[str] = (),
    severities: Sequence[str] = (),
    src: Sources | None = None,
) -> reports.ViolationReport:
    """The violation report of `period` for `depts`, `rules` and `severities` (empty: all): counts
    by department, rule, severity and department x rule, the trend, the notices listing its
    findings, the penalties decided in the period and every finding."""
    src = src or sources()
    names = _Departments(session)
    found = _Filter.of(
        src, start=period.start, end=period.end, depts=depts, rules=rules, severities=severities
    )

    counts = session.execute(
        found.select(Violation.dept, Violation.rule_id, Violation.severity, func.count()).group_by(
            Violation.dept, Violation.rule_id, Violation.severity
        )
    ).all()
    by_dept: dict[str | None, Counter[str]] = defaultdict(Counter)
    by_rule: dict[str, Counter[str]] = defaultdict(Counter)
    by_severity: Counter[str] = Counter()
    cells: Counter[tuple[str | None, str]] = Counter()
    for dept, rule, severity, n in counts:
        by_dept[dept][severity] += n
        by_rule[rule][severity] += n
        by_severity[severity] += n
        cells[(dept, rule)] += n
    trend_rows = session.execute(found.select(found.key, func.count()).group_by(found.key)).all()

    checked: Counter[str | None] = Counter()
    for dept, _key, n in _records_checked(session, src, start=period.start, end=period.end, depts=depts):
        checked[dept] += n

    listed = session.execute(
        found.select(
            Violation.id,
            Violation.rule_id,
            Violation.record_type,
            Violation.record_id,
            Violation.dept,
            Violation.severity,
            Violation.clauses,
            Violation.responsible,
            Violation.message_zh,
            Violation.message_en,
            Violation.first_detected_at,
        ).order_by(
            case(*((Violation.severity == s, n) for s, n in SEVERITY_ORDER.items()), else_=99),
            Violation.dept,
            Violation.rule_id,
            Violation.record_id,
        )
    )
    tz = src.tz
    findings = [
        reports.FindingRow(
            rule=rule,
            record_type=record_type,
            record_id=record_id,
            dept=None if dept is None else names(dept),
            severity=severity,
            clauses=list(clauses),
            responsible=responsible,
            message=reports.Text(zh, en),
            link=VIOLATION_LINK.format(id=vid),
            found_at=found_at.astimezone(tz),
        )
        for vid, rule, record_type, record_id, dept, severity, clauses, responsible, zh, en, found_at in listed
    ]

    notice_rows = _notices_of_findings(session, found)
    notice_list = _notice_summaries(session, src, notice_rows, names)
    penalties = _penalties(
        session, src, names, period=period, scope=depts, rules=rules, severities=severities
    )
    total = sum(by_severity.values())
    department_counts = [
        reports.DepartmentCount(
            dept=names(dept),
            findings=sum(c.values()),
            critical=c["critical"],
            major=c["major"],
            minor=c["minor"],
            records=checked.get(dept, 0),
        )
        for dept, c in by_dept.items()
    ]
    # departments whose records were checked without a finding belong in the table too
    department_counts += [
        reports.DepartmentCount(dept=names(dept), findings=0, records=n)
        for dept, n in checked.items()
        if dept is not None and dept not in by_dept
    ]
    department_counts.sort(key=lambda d: (-d.findings, d.dept.code))
    return reports.ViolationReport(
        company=src.company,
        period=period,
        scope=reports.ReportScope(
            departments=[names(d) for d in sorted(set(depts))],
            rules=sorted(set(rules)),
            severities=sorted(set(severities), key=lambda s: SEVERITY_ORDER.get(s, 99)),
        ),
        generated_at=src.now.astimezone(tz),
        totals=reports.ViolationTotals(
            records_checked=sum(checked.values()),
            findings=total,
            departments=sum(1 for d in by_dept if d is not None),
            rules=len(by_rule),
            open_notices=sum(1 for n in notice_list if n.status == "open"),
            overdue_notices=sum(1 for n in notice_list if n.status == "overdue"),
            fines=sum((p.amount or Decimal(0) for p in penalties if p.kind == "fine"), Decimal("0.00")),
            performance_points=sum(p.points or 0 for p in penalties if p.kind == "performance_points"),
        ),
        by_department=department_counts,
        by_rule=_rule_counts(src, by_rule),
        by_severity=[
            reports.SeverityCount(s, by_severity[s]) for s in reports.models.SEVERITIES if by_severity[s]
        ],
        by_department_rule=[
            reports.DeptRuleCount(names(dept), rule, n)
            for (dept, rule), n in sorted(cells.items(), key=lambda c: (c[0][0] or "", c[0][1]))
        ],
        trend=_trend(period, {k: int(n) for k, n in trend_rows}),
        notices=notice_list,
        penalties=penalties,
        findings=findings,
    )


# --- the department scorecard -----------------------------------------------------------------------


def _selfcheck(session: Session, src: Sources, *, dept: str, period: reports.Period) -> reports.SelfCheck:
    """The department's self-checks of periods lying within `period`: deviations it declared,
    findings zhidu found on its records, found ones it had declared; per rule."""
    declared: Counter[str] = Counter()
    found: Counter[str] = Counter()
    matched: Counter[str] = Counter()
    for check in session.scalars(select(SelfCheck).where(SelfCheck.dept == dept).order_by(SelfCheck.period)):
        try:
            checked = InspectionPeriod.parse(check.period)
        except PeriodError:
            continue
        first = checked.start(src.tz).astimezone(src.tz).date()
        last = checked.end(src.tz).astimezone(src.tz).date() - timedelta(days=1)
        if first < period.start or last > period.end:
            continue
        for deviation in check.declaration.get("deviations", []):
            declared[str(deviation["rule"])] += 1
        for item in check.result.get("findings", []):
            found[str(item["rule"])] += 1
            if item.get("declared"):
                matched[str(item["rule"])] += 1
    rules = sorted(set(declared) | set(found))
    return reports.SelfCheck(
        declared=sum(declared.values()),
        found=sum(found.values()),
        matched=sum(matched.values()),
        by_rule=[
            reports.SelfCheckRow(r, _rule_title(src, r), declared[r], found[r], matched[r]) for r in rules
        ],
    )


def gather_scorecard(
    *, session: Session, dept: str, period: reports.Period, src: Sources | None = None
) -> reports.DepartmentScorecard:
    """`dept`'s scorecard for `period`. ReportNotFoundError for an unknown department, NoScoreError
    when it has no records in the period."""
    src = src or sources()
    if not department_exists(session, dept=dept):
        raise ReportNotFoundError(f"no department {dept}", f"部门 {dept} 不存在")
    names = _Departments(session)
    periods = last_periods(period, TREND_PERIODS)
    scores = scores_for(session, src, periods)
    current = scores[period.label]
    if dept not in current:
        raise NoScoreError(dept, period)
    found = _Filter.of(src, start=period.start, end=period.end, depts=[dept])
    by_rule: dict[str, Counter[str]] = defaultdict(Counter)
    for rule, severity, n in session.execute(
        found.select(Violation.rule_id, Violation.severity, func.count()).group_by(
            Violation.rule_id, Violation.severity
        )
    ):
        by_rule[rule][severity] += n
    start, end = src.bounds(period)
    issued = session.scalars(
        select(Notice).where(Notice.dept == dept, Notice.issued_at >= start, Notice.issued_at < end)
    )
    notice_rows = {n.id: n for n in [*_notices_of_findings(session, found), *issued]}
    return reports.DepartmentScorecard(
        company=src.company,
        dept=names(dept),
        period=period,
        generated_at=src.now.astimezone(src.tz),
        score=current[dept].score,
        rank=rank_of(current, dept),
        ranked_of=len(current),
        trend=[
            reports.ScorePoint(p.label, scores[p.label][dept].score, scores[p.label][dept].findings)
            for p in periods
            if dept in scores[p.label]
        ],
        findings_by_rule=_rule_counts(src, by_rule),
        notices=_notice_summaries(session, src, list(notice_rows.values()), names),
        penalties=_penalties(session, src, names, period=period, scope=[dept]),
        self_check=_selfcheck(session, src, dept=dept, period=period),
    )


# --- the rectification notice -----------------------------------------------------------------------


def _to_submit(src: Sources, record_types: Iterable[str]) -> list[reports.Text]:
    labels = [src.library.model[t].label for t in sorted(set(record_types)) if t in src.library.model.types]
    zh_types = "、".join(label.zh for label in labels)
    en_types = ", ".join(label.en.lower() for label in labels)
    config = src.config
    mib = config.evidence_max_file_bytes // (1024 * 1024)
    return [
        reports.Text(
            "整改报告：说明问题原因、采取的整改措施及完成情况",
            "A rectification report: the causes, the measures taken and their completion",
        ),
        reports.Text(
            f"更正后的业务记录（{zh_types}），通过系统上传，提交时系统自动复核",
            f"The corrected records ({en_types}), uploaded to zhidu, which re-checks them on submission",
        ),
        reports.Text(
            f"证明材料（最多 {config.evidence_max_files} 个文件，每个不超过 {mib} MiB）",
            f"Evidence files (at most {config.evidence_max_files}, each up to {mib} MiB)",
        ),
        reports.Text("相关责任人的书面说明", "Written statements by the persons responsible"),
    ]


def gather_notice(
    *, session: Session, number: str, src: Sources | None = None
) -> reports.RectificationNotice:
    """The rectification notice `number` as a formal document; ReportNotFoundError when there is none."""
    src = src or sources()
    notice = notices.by_number(session, number=number)
    if notice is None:
        raise ReportNotFoundError(f"no rectification notice {number}", f"整改通知 {number} 不存在")
    names = _Departments(session)
    items = sorted(
        notices.items_of(session, notice_id=notice.id),
        key=lambda i: (SEVERITY_ORDER.get(i.severity, 99), i.rule_id, i.record_id),
    )
    findings = [
        reports.NoticeFinding(
            rule=i.rule_id,
            rule_title=_rule_title(src, i.rule_id),
            record_type=i.record_type,
            record_id=i.record_id,
            severity=i.severity,
            clauses=[_clause(src, c, with_text=True) for c in i.clauses],
            message=reports.Text(i.message_zh, i.message_en),
            responsible=i.responsible,
        )
        for i in items
    ]
    # A rule without a person responsible names the department itself: not a person to list.
    people = sorted({i.responsible for i in items if i.responsible and i.responsible != notice.dept})
    head = notice.department_head or names.heads.get(notice.dept)
    responsible = [reports.ResponsiblePerson(p, RESPONSIBLE_ROLE) for p in people if p != head]
    if head:
        responsible.append(reports.ResponsiblePerson(head, HEAD_ROLE))
    # Issued by a person: their name; by the system (a scheduled inspection): left blank to sign by hand.
    issuer = session.scalar(select(User.display_name).where(User.username == notice.issued_by))
    signer = issuer or ("" if notice.issued_by == SYSTEM_ACTOR else notice.issued_by)
    return reports.RectificationNotice(
        number=notice.number,
        company=src.company,
        dept=names(notice.dept),
        issued_on=src.local_date(notice.issued_at),
        deadline=notice.due_date,
        findings=findings,
        responsible=responsible,
        to_submit=_to_submit(src, (i.record_type for i in items)),
        signature=reports.SignatureBlock(issuing_body=ISSUING_BODY, signer=signer, recipient=head or ""),
    )


# --- the manager's digest ---------------------------------------------------------------------------


def gather_digest(
    *,
    session: Session,
    manager: str,
    depts: Sequence[str],
    cadence: str,
    period: reports.Period,
    link: str | None = None,
    src: Sources | None = None,
) -> reports.Digest:
    """The digest of `manager` (a display name) for `depts` and `period` (see `digest_period`):
    score changes against the previous period of the same kind, notices issued in the period,
    notices overdue at its end, the top 10 violated rules of the period and the penalties
    decided in it."""
    if cadence not in CADENCES:
        raise ValueError(f"cadence must be weekly or monthly, not {cadence!r}")
    if not depts:
        raise ValueError("a digest needs at least one department")
    src = src or sources()
    names = _Departments(session)
    scope = sorted(set(depts))
    before = previous_period(period)
    scores = scores_for(session, src, [before, period])
    changes = [
        reports.ScoreChange(
            names(d),
            scores[before.label][d].score if d in scores[before.label] else None,
            scores[period.label][d].score,
        )
        for d in scope
        if d in scores[period.label]
    ]
    start, end = src.bounds(period)
    issued = session.scalars(
        select(Notice)
        .where(Notice.dept.in_(scope), Notice.issued_at >= start, Notice.issued_at < end)
        .order_by(Notice.issued_at, Notice.id)
    ).all()
    # Overdue at the period's end: due by then, not closed by then, and (as far as the current
    # status tells) still with the department, not waiting for the supervision group.
    overdue = session.scalars(
        select(Notice)
        .where(
            Notice.dept.in_(scope),
            Notice.issued_at < end,
            Notice.due_at <= end,
            or_(Notice.closed_at.is_(None), Notice.closed_at > end),
            Notice.status.in_([s.value for s in (*DEPARTMENT_TO_ACT, NoticeStatus.CLOSED)]),
        )
        .order_by(Notice.due_at, Notice.id)
    ).all()
    found = _Filter.of(src, start=period.start, end=period.end, depts=scope)
    by_rule: dict[str, Counter[str]] = defaultdict(Counter)
    for rule, severity, n in session.execute(
        found.select(Violation.rule_id, Violation.severity, func.count()).group_by(
            Violation.rule_id, Violation.severity
        )
    ):
        by_rule[rule][severity] += n
    return reports.Digest(
        company=src.company,
        manager=manager,
        scope=[names(d) for d in scope],
        cadence=cadence,
        period=period,
        generated_at=src.now.astimezone(src.tz),
        score_changes=changes,
        new_notices=_notice_summaries(session, src, issued, names),
        overdue_notices=_notice_summaries(session, src, overdue, names),
        top_rules=_rule_counts(src, by_rule)[:TOP_RULES],
        penalties=_penalties(session, src, names, period=period, scope=scope),
        link=link,
    )


__all__ = [
    "DeptScore",
    "NoScoreError",
    "ReportNotFoundError",
    "ReportPeriodError",
    "Sources",
    "department_exists",
    "digest_period",
    "gather_digest",
    "gather_notice",
    "gather_scorecard",
    "gather_violation_report",
    "parse_period",
    "rank_of",
    "scores_for",
    "sources",
]
