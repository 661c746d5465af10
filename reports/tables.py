"""Each document as a list of typed tables. XLSX writes one sheet per table, CSV writes one table
(the document's primary one unless asked), HTML and PDF lay the same tables out on the page, so
every format shows the same numbers under the same headings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from reports.i18n import (
    Lang,
    Messages,
    fmt_amount,
    fmt_date,
    fmt_datetime,
    fmt_delta,
    fmt_int,
    fmt_percent,
    fmt_score,
)
from reports.models import (
    Department,
    DepartmentScorecard,
    Digest,
    Document,
    NoticeSummary,
    PenaltyItem,
    RectificationNotice,
    RuleCount,
    ViolationReport,
)


class Kind(StrEnum):
    """How a column's values are typed in XLSX and written in HTML/PDF/CSV."""

    TEXT = "text"
    INT = "int"
    AMOUNT = "amount"  # Decimal CNY, two decimals
    SCORE = "score"  # Decimal 0–100, one decimal
    DELTA = "delta"  # signed Decimal score change
    PERCENT = "percent"  # Decimal fraction 0–1
    DATE = "date"
    DATETIME = "datetime"
    LINK = "link"  # a URL (text in XLSX/CSV, an anchor in HTML, a link in PDF)


Value = str | int | Decimal | date | datetime | None


@dataclass(frozen=True, slots=True)
class Typed:
    """A cell whose kind differs from its column's (key/value tables)."""

    value: Value
    kind: Kind


Cell = Value | Typed


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    kind: Kind = Kind.TEXT
    width: float = 1.0  # relative width on the PDF page
    in_pdf: bool = True  # links are not printed as a column in the PDF


@dataclass(frozen=True, slots=True)
class Table:
    key: str  # stable id: CSV `table=` and the order of XLSX sheets
    title: str  # XLSX sheet name and section heading
    columns: list[Column]
    rows: Sequence[Sequence[Cell]]
    empty: str = ""  # shown instead of an empty table
    notes: list[str] = field(default_factory=list)


def unwrap(cell: Cell, column: Column) -> tuple[Value, Kind]:
    if isinstance(cell, Typed):
        return cell.value, cell.kind
    return cell, column.kind


def display(value: Value, kind: Kind, lang: Lang) -> str:
    """A cell as people read it in HTML and PDF."""
    if value is None:
        return "—" if kind in (Kind.DELTA, Kind.PERCENT) else ""
    if isinstance(value, datetime):
        return fmt_datetime(value)
    if isinstance(value, date):
        return fmt_date(value, lang)
    if isinstance(value, bool):  # not a number to people
        return str(value)
    if isinstance(value, int) and kind in (Kind.INT, Kind.TEXT):
        return fmt_int(value)
    if isinstance(value, int | Decimal):
        number = Decimal(value)
        if kind == Kind.AMOUNT:
            return fmt_amount(number)
        if kind == Kind.SCORE:
            return fmt_score(number)
        if kind == Kind.DELTA:
            return fmt_delta(number)
        if kind == Kind.PERCENT:
            return fmt_percent(number)
        return f"{number:,}"
    return value


def _dept(m: Messages, dept: Department | None) -> str:
    return "" if dept is None else m.text(dept.name)


def _ratio(part: int, whole: int | None) -> Decimal | None:
    return None if not whole else Decimal(part) / Decimal(whole)


# --- shared tables ---


def rules_table(m: Messages, key: str, title: str, rules: list[RuleCount]) -> Table:
    cols = [
        Column("rule", m("col.rule"), width=0.9),
        Column("title", m("col.rule_title"), width=2.4),
        Column("severity", m("col.severity"), width=0.8),
        Column("clauses", m("col.clauses"), width=1.4),
        Column("clause_titles", m("col.clause_titles"), width=2.6),
        Column("findings", m("col.findings"), Kind.INT, width=0.8),
    ]
    rows = [
        (
            r.rule,
            m.text(r.title),
            m.known("severity", r.severity),
            "; ".join(c.id for c in r.clauses),
            "; ".join(m.text(c.title) for c in r.clauses),
            r.findings,
        )
        for r in rules
    ]
    return Table(key, title, cols, rows, empty=m("empty.rules"))


def notices_table(m: Messages, key: str, title: str, notices: list[NoticeSummary]) -> Table:
    cols = [
        Column("number", m("col.notice_number"), width=1.5),
        Column("dept", m("col.dept"), width=1.3),
        Column("issued_on", m("col.issued_on"), Kind.DATE, width=1.0),
        Column("deadline", m("col.deadline"), Kind.DATE, width=1.0),
        Column("status", m("col.status"), width=0.8),
        Column("findings", m("col.findings"), Kind.INT, width=0.7),
        Column("closed_on", m("col.closed_on"), Kind.DATE, width=1.0),
        Column("days_to_close", m("col.days_to_close"), Kind.INT, width=0.8),
    ]
    rows = [
        (
            n.number,
            _dept(m, n.dept),
            n.issued_on,
            n.deadline,
            m.known("status", n.status),
            n.findings,
            n.closed_on,
            n.days_to_close,
        )
        for n in notices
    ]
    return Table(key, title, cols, rows, empty=m("empty.notices"))


def penalties_table(m: Messages, key: str, title: str, penalties: list[PenaltyItem]) -> Table:
    cols = [
        Column("person", m("col.person"), width=1.0),
        Column("dept", m("col.dept"), width=1.2),
        Column("rule", m("col.rule"), width=0.9),
        Column("kind", m("col.penalty_kind"), width=1.1),
        Column("amount", m("col.amount"), Kind.AMOUNT, width=1.0),
        Column("points", m("col.points"), Kind.INT, width=0.7),
        Column("occurrence", m("col.occurrence"), Kind.INT, width=0.7),
        Column("decided_on", m("col.decided_on"), Kind.DATE, width=1.0),
        Column("notice", m("col.notice_number"), width=1.5),
    ]
    rows = [
        (
            p.person,
            _dept(m, p.dept),
            p.rule,
            m.known("penalty", p.kind),
            p.amount,
            p.points,
            p.occurrence,
            p.decided_on,
            p.notice,
        )
        for p in penalties
    ]
    return Table(key, title, cols, rows, empty=m("empty.penalties"))


def _kv(m: Messages, key: str, title: str, items: list[tuple[str, Cell]]) -> Table:
    cols = [Column("item", m("col.item"), width=1.0), Column("value", m("col.value"), width=2.0)]
    return Table(key, title, cols, [(label, value) for label, value in items])


def _scope_text(m: Messages, report: ViolationReport) -> str:
    s = report.scope
    parts = [
        m("scope.departments") + ": " + (", ".join(_dept(m, d) for d in s.departments) or m("scope.all")),
        m("scope.rules") + ": " + (", ".join(s.rules) or m("scope.all")),
        m("scope.severities")
        + ": "
        + (", ".join(m.known("severity", v) for v in s.severities) or m("scope.all")),
    ]
    return "; ".join(parts)


# --- per document ---


def violation_tables(report: ViolationReport, m: Messages) -> list[Table]:
    t = report.totals
    summary = _kv(
        m,
        "summary",
        m("sheet.summary"),
        [
            (m("field.company"), report.company),
            (m("field.period"), report.period.describe()),
            (m("field.period_start"), Typed(report.period.start, Kind.DATE)),
            (m("field.period_end"), Typed(report.period.end, Kind.DATE)),
            (m("field.scope"), _scope_text(m, report)),
            (m("field.generated_at"), Typed(report.generated_at, Kind.DATETIME)),
            (m("field.records_checked"), Typed(t.records_checked, Kind.INT)),
            (m("field.findings"), Typed(t.findings, Kind.INT)),
            (m("field.departments_with_findings"), Typed(t.departments, Kind.INT)),
            (m("field.rules_violated"), Typed(t.rules, Kind.INT)),
            (m("field.open_notices"), Typed(t.open_notices, Kind.INT)),
            (m("field.overdue_notices"), Typed(t.overdue_notices, Kind.INT)),
            (m("field.fines"), Typed(t.fines, Kind.AMOUNT)),
            (m("field.performance_points"), Typed(t.performance_points, Kind.INT)),
        ],
    )
    by_dept = Table(
        "by_department",
        m("sheet.by_department"),
        [
            Column("dept_code", m("col.dept_code"), width=0.8),
            Column("dept", m("col.dept"), width=1.6),
            Column("findings", m("col.findings"), Kind.INT),
            Column("critical", m("severity.critical"), Kind.INT),
            Column("major", m("severity.major"), Kind.INT),
            Column("minor", m("severity.minor"), Kind.INT),
            Column("records", m("col.records_checked"), Kind.INT),
            Column("rate", m("col.finding_rate"), Kind.PERCENT),
        ],
        [
            (
                d.dept.code,
                _dept(m, d.dept),
                d.findings,
                d.critical,
                d.major,
                d.minor,
                d.records,
                _ratio(d.findings, d.records),
            )
            for d in report.by_department
        ],
        empty=m("empty.findings"),
    )
    total = sum(s.findings for s in report.by_severity)
    by_sev = Table(
        "by_severity",
        m("sheet.by_severity"),
        [
            Column("severity", m("col.severity")),
            Column("findings", m("col.findings"), Kind.INT),
            Column("share", m("col.share"), Kind.PERCENT),
        ],
        [
            (m.known("severity", s.severity), s.findings, _ratio(s.findings, total))
            for s in report.by_severity
        ],
        empty=m("empty.findings"),
    )
    heat = Table(
        "by_department_rule",
        m("sheet.by_department_rule"),
        [
            Column("dept_code", m("col.dept_code")),
            Column("dept", m("col.dept")),
            Column("rule", m("col.rule")),
            Column("findings", m("col.findings"), Kind.INT),
        ],
        [(c.dept.code, _dept(m, c.dept), c.rule, c.findings) for c in report.by_department_rule],
        empty=m("empty.findings"),
    )
    trend = Table(
        "trend",
        m("sheet.trend"),
        [Column("label", m("col.sub_period")), Column("findings", m("col.findings"), Kind.INT)],
        [(p.label, p.findings) for p in report.trend],
        empty=m("empty.findings"),
    )
    findings = Table(
        "findings",
        m("sheet.findings"),
        [
            Column("severity", m("col.severity"), width=0.6),
            Column("rule", m("col.rule"), width=0.65),
            Column("record_type", m("col.record_type"), width=1.0),
            Column("record_id", m("col.record_id"), width=1.15),
            Column("dept_code", m("col.dept_code"), width=0.6, in_pdf=False),
            Column("dept", m("col.dept"), width=1.0),
            Column("clauses", m("col.clauses"), width=1.1),
            Column("responsible", m("col.responsible"), width=0.75),
            Column("message", m("col.message"), width=3.9),
            Column("found_at", m("col.found_at"), Kind.DATETIME, width=1.0, in_pdf=False),
            Column("link", m("col.link"), Kind.LINK, in_pdf=False),
        ],
        [
            (
                m.known("severity", f.severity),
                f.rule,
                f.record_type,
                f.record_id,
                None if f.dept is None else f.dept.code,
                _dept(m, f.dept),
                "; ".join(f.clauses),
                f.responsible,
                m.text(f.message),
                f.found_at,
                f.link,
            )
            for f in report.findings
        ],
        empty=m("empty.findings"),
    )
    return [
        summary,
        by_dept,
        rules_table(m, "by_rule", m("sheet.by_rule"), report.by_rule),
        by_sev,
        heat,
        trend,
        notices_table(m, "notices", m("sheet.notices"), report.notices),
        penalties_table(m, "penalties", m("sheet.penalties"), report.penalties),
        findings,
    ]


def scorecard_tables(card: DepartmentScorecard, m: Messages) -> list[Table]:
    sc = card.self_check
    summary = _kv(
        m,
        "summary",
        m("sheet.summary"),
        [
            (m("field.company"), card.company),
            (m("field.dept"), _dept(m, card.dept)),
            (m("field.period"), card.period.describe()),
            (m("field.generated_at"), Typed(card.generated_at, Kind.DATETIME)),
            (m("field.score"), Typed(card.score, Kind.SCORE)),
            (m("field.rank"), Typed(card.rank, Kind.INT)),
            (m("field.ranked_of"), Typed(card.ranked_of, Kind.INT)),
            (m("field.self_declared"), Typed(sc.declared, Kind.INT)),
            (m("field.self_found"), Typed(sc.found, Kind.INT)),
            (m("field.self_matched"), Typed(sc.matched, Kind.INT)),
            (m("field.self_accuracy"), Typed(sc.accuracy, Kind.PERCENT)),
        ],
    )
    trend = Table(
        "trend",
        m("sheet.score_trend"),
        [
            Column("label", m("col.period")),
            Column("score", m("col.score"), Kind.SCORE),
            Column("findings", m("col.findings"), Kind.INT),
        ],
        [(p.label, p.score, p.findings) for p in card.trend],
        empty=m("empty.trend"),
    )
    self_check = Table(
        "self_check",
        m("sheet.self_check"),
        [
            Column("rule", m("col.rule"), width=0.9),
            Column("title", m("col.rule_title"), width=2.6),
            Column("declared", m("col.declared"), Kind.INT),
            Column("found", m("col.found"), Kind.INT),
            Column("matched", m("col.matched"), Kind.INT),
            Column("accuracy", m("col.accuracy"), Kind.PERCENT),
        ],
        [(r.rule, m.text(r.title), r.declared, r.found, r.matched, r.accuracy) for r in sc.by_rule],
        empty=m("empty.self_check"),
    )
    return [
        summary,
        trend,
        rules_table(m, "findings_by_rule", m("sheet.findings_by_rule"), card.findings_by_rule),
        notices_table(m, "notices", m("sheet.notices"), card.notices),
        penalties_table(m, "penalties", m("sheet.penalties"), card.penalties),
        self_check,
    ]


def notice_tables(notice: RectificationNotice, m: Messages) -> list[Table]:
    summary = _kv(
        m,
        "summary",
        m("sheet.notice"),
        [
            (m("field.notice_number"), notice.number),
            (m("field.company"), notice.company),
            (m("field.dept"), _dept(m, notice.dept)),
            (m("field.issued_on"), Typed(notice.issued_on, Kind.DATE)),
            (m("field.deadline"), Typed(notice.deadline, Kind.DATE)),
            (m("field.issuing_body"), m.text(notice.signature.issuing_body)),
            (m("field.signer"), notice.signature.signer),
            (m("field.recipient"), notice.signature.recipient),
        ],
    )
    findings = Table(
        "findings",
        m("sheet.notice_findings"),
        [
            Column("no", m("col.no"), Kind.INT, width=0.35),
            Column("rule", m("col.rule"), width=0.8),
            Column("rule_title", m("col.rule_title"), width=1.5),
            Column("record", m("col.record"), width=1.1),
            Column("severity", m("col.severity"), width=0.6),
            Column("message", m("col.message"), width=2.6),
            Column("clauses", m("col.clause_text"), width=3.0),
            Column("responsible", m("col.responsible"), width=0.75),
        ],
        [
            (
                i,
                f.rule,
                m.text(f.rule_title),
                f"{f.record_type} {f.record_id}",
                m.known("severity", f.severity),
                m.text(f.message),
                "\n".join(
                    f"{c.id} {m.text(c.title)}" + (f": {m.text(c.text)}" if c.text is not None else "")
                    for c in f.clauses
                ),
                f.responsible,
            )
            for i, f in enumerate(notice.findings, start=1)
        ],
        empty=m("empty.findings"),
    )
    people = Table(
        "responsible",
        m("sheet.responsible"),
        [Column("name", m("col.person")), Column("role", m("col.role"))],
        [(p.name, m.text(p.role)) for p in notice.responsible],
        empty=m("empty.responsible"),
    )
    submit = Table(
        "to_submit",
        m("sheet.to_submit"),
        [Column("no", m("col.no"), Kind.INT, width=0.2), Column("item", m("col.item"), width=3.0)],
        [(i, m.text(s)) for i, s in enumerate(notice.to_submit, start=1)],
        empty=m("empty.to_submit"),
    )
    return [summary, findings, people, submit]


def digest_tables(digest: Digest, m: Messages) -> list[Table]:
    summary = _kv(
        m,
        "summary",
        m("sheet.summary"),
        [
            (m("field.company"), digest.company),
            (m("field.manager"), digest.manager),
            (m("field.scope"), ", ".join(_dept(m, d) for d in digest.scope) or m("scope.all")),
            (m("field.cadence"), m.known("cadence", digest.cadence)),
            (m("field.period"), digest.period.describe()),
            (m("field.generated_at"), Typed(digest.generated_at, Kind.DATETIME)),
            (m("field.new_notices"), Typed(len(digest.new_notices), Kind.INT)),
            (m("field.overdue_notices"), Typed(len(digest.overdue_notices), Kind.INT)),
            (m("field.penalties"), Typed(len(digest.penalties), Kind.INT)),
            (
                m("field.fines"),
                Typed(sum((p.amount or Decimal(0) for p in digest.penalties), Decimal(0)), Kind.AMOUNT),
            ),
        ],
    )
    scores = Table(
        "score_changes",
        m("sheet.score_changes"),
        [
            Column("dept", m("col.dept"), width=1.6),
            Column("previous", m("col.previous_score"), Kind.SCORE),
            Column("current", m("col.current_score"), Kind.SCORE),
            Column("delta", m("col.delta"), Kind.DELTA),
        ],
        [(_dept(m, s.dept), s.previous, s.current, s.delta) for s in digest.score_changes],
        empty=m("empty.scores"),
    )
    return [
        summary,
        scores,
        notices_table(m, "new_notices", m("sheet.new_notices"), digest.new_notices),
        notices_table(m, "overdue_notices", m("sheet.overdue_notices"), digest.overdue_notices),
        rules_table(m, "top_rules", m("sheet.top_rules"), digest.top_rules),
        penalties_table(m, "penalties", m("sheet.penalties"), digest.penalties),
    ]


PRIMARY = {
    ViolationReport: "findings",
    DepartmentScorecard: "findings_by_rule",
    RectificationNotice: "findings",
    Digest: "score_changes",
}


def tables_for(document: Document, lang: Lang) -> list[Table]:
    m = Messages(lang)
    if isinstance(document, ViolationReport):
        return violation_tables(document, m)
    if isinstance(document, DepartmentScorecard):
        return scorecard_tables(document, m)
    if isinstance(document, RectificationNotice):
        return notice_tables(document, m)
    return digest_tables(document, m)


def primary_table(document: Document) -> str:
    """The table CSV writes unless another is asked for."""
    return PRIMARY[type(document)]
