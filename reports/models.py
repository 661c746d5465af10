"""What each document shows, as plain typed data. `service/` fills these; `reports/` only renders them.

Conventions for every model below:

- Texts people read in both languages are `Text(zh=..., en=...)`; names of people, record ids,
  rule ids and notice numbers are plain `str` (they are not translated).
- Amounts are `Decimal` in CNY (yuan, two decimals); counts are `int`; scores are `Decimal` on 0–100;
  dates are `date`; instants are timezone-aware `datetime` in the company's zone (XLSX stores
  their wall-clock time, Excel has no time zones).
- A severity is one of `SEVERITIES`; a penalty kind is one of `PENALTY_KINDS`; a notice status is
  one of `NOTICE_STATUSES`. Unknown values are rendered as they are.
- Lists are shown in the order given: the service sorts them (e.g. findings by severity, then
  department). An empty list renders as "none" (无), never as an empty chart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

SEVERITIES = ("critical", "major", "minor")  # most severe first
PENALTY_KINDS = ("warning", "performance_points", "fine", "demotion")
NOTICE_STATUSES = ("open", "overdue", "closed")


@dataclass(frozen=True, slots=True)
class Text:
    """A user-facing text in zh-CN and en."""

    zh: str
    en: str

    def get(self, lang: str) -> str:
        return self.zh if lang.startswith("zh") else self.en


@dataclass(frozen=True, slots=True)
class Department:
    """A department: its code (e.g. "PUR") and its name."""

    code: str
    name: Text


@dataclass(frozen=True, slots=True)
class Clause:
    """A clause of a manual: id as numbered in the manual (e.g. "m001.7.2.3"), its title and,
    where a document quotes it (the rectification notice), its text."""

    id: str
    title: Text
    text: Text | None = None


@dataclass(frozen=True, slots=True)
class Period:
    """An inclusive date range; `label` names it for people (e.g. "2026-10", "2026-W41")."""

    start: date
    end: date
    label: str = ""

    def describe(self) -> str:
        if self.label:
            return self.label
        return f"{self.start.isoformat()} – {self.end.isoformat()}"


@dataclass(frozen=True, slots=True)
class ReportScope:
    """What a report covers; an empty list means "all"."""

    departments: list[Department] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)  # rule ids
    severities: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RuleCount:
    """Findings of one rule: the rule, its title, the clauses it enforces, its severity, how many."""

    rule: str
    title: Text
    severity: str
    clauses: list[Clause]
    findings: int


@dataclass(frozen=True, slots=True)
class DepartmentCount:
    """Findings of one department, in total and by severity; `records` is how many of its records
    were checked (None when not known)."""

    dept: Department
    findings: int
    critical: int = 0
    major: int = 0
    minor: int = 0
    records: int | None = None


@dataclass(frozen=True, slots=True)
class SeverityCount:
    severity: str
    findings: int


@dataclass(frozen=True, slots=True)
class DeptRuleCount:
    """One cell of the department × rule heat map."""

    dept: Department
    rule: str
    findings: int


@dataclass(frozen=True, slots=True)
class TrendPoint:
    """Findings in one sub-period (a day or week) of a report's period, for its trend line."""

    label: str
    findings: int


@dataclass(frozen=True, slots=True)
class NoticeSummary:
    """A rectification notice as listed in reports: number, department, dates, status, how many
    findings it covers; `closed_on` is when the department's rectification was accepted."""

    number: str
    dept: Department
    issued_on: date
    deadline: date
    status: str
    findings: int
    closed_on: date | None = None

    @property
    def days_to_close(self) -> int | None:
        """Days from issue to acceptance; None while not closed."""
        return None if self.closed_on is None else (self.closed_on - self.issued_on).days


@dataclass(frozen=True, slots=True)
class PenaltyItem:
    """A penalty decided by the ladder: who, which department and rule, kind, fine amount (kind
    "fine") or performance points (kind "performance_points"), the occurrence it punishes (the
    n-th of the same rule within the window), decision date and the notice it belongs to."""

    person: str
    dept: Department
    rule: str
    kind: str
    decided_on: date
    occurrence: int = 1
    amount: Decimal | None = None
    points: int | None = None
    notice: str | None = None


@dataclass(frozen=True, slots=True)
class FindingRow:
    """One finding: the rule and the record it failed on, department, severity, the clauses it
    cites (ids), who is responsible, the message (showing the failing values) and a link to the
    record in the application (http(s) or a path starting with "/"; other schemes are dropped)."""

    rule: str
    record_type: str
    record_id: str
    dept: Department | None
    severity: str
    clauses: list[str]
    responsible: str | None
    message: Text
    link: str | None = None
    found_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ViolationTotals:
    """Headline numbers of a violation report."""

    records_checked: int
    findings: int
    departments: int  # departments with at least one finding
    rules: int  # rules with at least one finding
    open_notices: int
    overdue_notices: int
    fines: Decimal  # sum of fines decided in the period
    performance_points: int  # sum of points deducted in the period


@dataclass(frozen=True, slots=True)
class ViolationReport:
    """Violation report for a period and scope, for the supervision group.

    `findings` is the full list; HTML and PDF show its first `max_detail_rows` rows (see
    `reports.render`) with a note, XLSX and CSV hold all of it."""

    company: str
    period: Period
    scope: ReportScope
    generated_at: datetime
    totals: ViolationTotals
    by_department: list[DepartmentCount]
    by_rule: list[RuleCount]
    by_severity: list[SeverityCount]
    by_department_rule: list[DeptRuleCount]  # heat map cells (zero cells may be left out)
    trend: list[TrendPoint]  # findings per day/week of the period, in time order
    notices: list[NoticeSummary]  # open and overdue notices (closed ones too if wanted)
    penalties: list[PenaltyItem]
    findings: list[FindingRow]


@dataclass(frozen=True, slots=True)
class ScorePoint:
    """A department's compliance score (0–100) and finding count in one past period."""

    label: str
    score: Decimal
    findings: int


@dataclass(frozen=True, slots=True)
class SelfCheckRow:
    """Self-check of one rule: problems the department declared in its own self-check, problems
    the inspection found, and found problems that had been declared."""

    rule: str
    title: Text
    declared: int
    found: int
    matched: int

    @property
    def accuracy(self) -> Decimal | None:
        """Share of found problems the department had declared itself (None when none found)."""
        return None if self.found == 0 else Decimal(self.matched) / Decimal(self.found)


@dataclass(frozen=True, slots=True)
class SelfCheck:
    """Self-check accuracy (manual 001 §四(二)3: monitoring results feed department evaluation)."""

    declared: int
    found: int
    matched: int
    by_rule: list[SelfCheckRow] = field(default_factory=list)

    @property
    def accuracy(self) -> Decimal | None:
        return None if self.found == 0 else Decimal(self.matched) / Decimal(self.found)


@dataclass(frozen=True, slots=True)
class DepartmentScorecard:
    """A department's scorecard for a period: score and rank among `ranked_of` departments, the
    trend over the last periods (oldest first, the current one last), findings by rule, notices
    and how fast they were closed, penalties, self-check accuracy."""

    company: str
    dept: Department
    period: Period
    generated_at: datetime
    score: Decimal
    rank: int
    ranked_of: int
    trend: list[ScorePoint]
    findings_by_rule: list[RuleCount]
    notices: list[NoticeSummary]
    penalties: list[PenaltyItem]
    self_check: SelfCheck


@dataclass(frozen=True, slots=True)
class NoticeFinding:
    """A finding as the notice lists it: rule, record, severity, the clauses with their text,
    the message and who is responsible."""

    rule: str
    rule_title: Text
    record_type: str
    record_id: str
    severity: str
    clauses: list[Clause]
    message: Text
    responsible: str | None


@dataclass(frozen=True, slots=True)
class ResponsiblePerson:
    """A person the notice holds responsible, with their role (e.g. 经办人 / handler)."""

    name: str
    role: Text


@dataclass(frozen=True, slots=True)
class SignatureBlock:
    """Who issues the notice (the body and the signer) and who receives it for the department."""

    issuing_body: Text  # e.g. 流程监督小组 / Process Supervision Group
    signer: str
    recipient: str  # the department head who signs for receipt


@dataclass(frozen=True, slots=True)
class RectificationNotice:
    """A rectification notice (整改通知书) as a formal document: number (e.g. ZG-2026-10-0007),
    department, issue date, deadline, findings with clause text, responsible persons, what the
    department must submit, signature block. Rendered zh-CN first with en (lang "zh") or en only."""

    number: str
    company: str
    dept: Department
    issued_on: date
    deadline: date
    findings: list[NoticeFinding]
    responsible: list[ResponsiblePerson]
    to_submit: list[Text]
    signature: SignatureBlock


@dataclass(frozen=True, slots=True)
class ScoreChange:
    """A department's score in the previous and the current period (previous None: first period)."""

    dept: Department
    previous: Decimal | None
    current: Decimal

    @property
    def delta(self) -> Decimal | None:
        return None if self.previous is None else self.current - self.previous


@dataclass(frozen=True, slots=True)
class Digest:
    """A manager's scheduled digest for their scope (departments) and cadence ("weekly" or
    "monthly"): score changes since last period, new and overdue notices, top violated rules,
    penalties issued; `link` points to the full report in the application."""

    company: str
    manager: str
    scope: list[Department]
    cadence: str
    period: Period
    generated_at: datetime
    score_changes: list[ScoreChange]
    new_notices: list[NoticeSummary]
    overdue_notices: list[NoticeSummary]
    top_rules: list[RuleCount]
    penalties: list[PenaltyItem]
    link: str | None = None


Document = ViolationReport | DepartmentScorecard | RectificationNotice | Digest
