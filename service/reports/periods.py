"""Report periods, shared by the API and the CLI: a month `2026-10`, a quarter `2026-Q4`, an ISO
week `2026-W43` or an inclusive date range `2026-10-01..2026-10-31`, as a `reports.Period`
(inclusive dates in the company's time zone, labelled as written)."""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta
from typing import Literal

from reports import Period

MIN_YEAR = 2000
MAX_YEAR = 2100
MAX_RANGE_DAYS = 731  # two years: longer ranges are not a report anyone reads

Cadence = Literal["weekly", "monthly"]
CADENCES: tuple[str, ...] = ("weekly", "monthly")

_MONTH = re.compile(r"(\d{4})-(\d{2})")
_QUARTER = re.compile(r"(\d{4})-Q(\d)")
_WEEK = re.compile(r"(\d{4})-W(\d{2})")
_RANGE = re.compile(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})")

FORMS_EN = "a month 2026-10, a quarter 2026-Q4, an ISO week 2026-W43 or a range 2026-10-01..2026-10-31"
FORMS_ZH = "月份 2026-10、季度 2026-Q4、ISO 周 2026-W43 或日期范围 2026-10-01..2026-10-31"


class ReportPeriodError(ValueError):
    """A period that cannot be read, with the reason in en and zh."""

    def __init__(self, text: str, why_en: str = "", why_zh: str = "") -> None:
        self.message = f"{text!r} is not a report period ({FORMS_EN})" + (f": {why_en}" if why_en else "")
        self.message_zh = f"{text!r} 不是有效的报告期间（{FORMS_ZH}）" + (f"：{why_zh}" if why_zh else "")
        super().__init__(self.message)


def _year(text: str, value: str) -> int:
    year = int(value)
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ReportPeriodError(
            text, f"years {MIN_YEAR}-{MAX_YEAR} only", f"年份须在 {MIN_YEAR}-{MAX_YEAR} 之间"
        )
    return year


def month_period(year: int, month: int) -> Period:
    last = calendar.monthrange(year, month)[1]
    return Period(date(year, month, 1), date(year, month, last), f"{year}-{month:02d}")


def quarter_period(year: int, quarter: int) -> Period:
    first = (quarter - 1) * 3 + 1
    last = calendar.monthrange(year, first + 2)[1]
    return Period(date(year, first, 1), date(year, first + 2, last), f"{year}-Q{quarter}")


def week_period(year: int, week: int) -> Period:
    start = date.fromisocalendar(year, week, 1)
    return Period(start, start + timedelta(days=6), f"{year}-W{week:02d}")


def range_period(start: date, end: date) -> Period:
    return Period(start, end, f"{start.isoformat()}..{end.isoformat()}")


def parse_period(text: str) -> Period:
    """The period `text` names; ReportPeriodError (en and zh) when it names none."""
    value = text.strip()
    if m := _MONTH.fullmatch(value):
        year, month = _year(text, m[1]), int(m[2])
        if not 1 <= month <= 12:
            raise ReportPeriodError(text, "the month must be 01-12", "月份须为 01-12")
        return month_period(year, month)
    if m := _QUARTER.fullmatch(value):
        year, quarter = _year(text, m[1]), int(m[2])
        if not 1 <= quarter <= 4:
            raise ReportPeriodError(text, "the quarter must be Q1-Q4", "季度须为 Q1-Q4")
        return quarter_period(year, quarter)
    if m := _WEEK.fullmatch(value):
        year, week = _year(text, m[1]), int(m[2])
        try:
            return week_period(year, week)
        except ValueError:
            weeks = date(year, 12, 28).isocalendar().week
            raise ReportPeriodError(
                text, f"{year} has ISO weeks W01-W{weeks:02d}", f"{year} 年的 ISO 周为 W01-W{weeks:02d}"
            ) from None
    if m := _RANGE.fullmatch(value):
        try:
            start, end = date.fromisoformat(m[1]), date.fromisoformat(m[2])
        except ValueError:
            raise ReportPeriodError(text, "not a calendar date", "日期不存在") from None
        _year(text, str(start.year))
        _year(text, str(end.year))
        if end < start:
            raise ReportPeriodError(text, "the range ends before it starts", "结束日期早于开始日期")
        if (end - start).days + 1 > MAX_RANGE_DAYS:
            raise ReportPeriodError(
                text, f"a range spans at most {MAX_RANGE_DAYS} days", f"日期范围最多 {MAX_RANGE_DAYS} 天"
            )
        return range_period(start, end)
    raise ReportPeriodError(text)


def period_kind(period: Period) -> str:
    """month, quarter, week or range: what `period`'s label names."""
    label = period.label
    if _MONTH.fullmatch(label):
        return "month"
    if _QUARTER.fullmatch(label):
        return "quarter"
    if _WEEK.fullmatch(label):
        return "week"
    return "range"


def previous_period(period: Period) -> Period:
    """The period of the same kind just before `period` (a range: as many days, ending the day before)."""
    kind = period_kind(period)
    if kind == "month":
        before = period.start - timedelta(days=1)
        return month_period(before.year, before.month)
    if kind == "quarter":
        before = period.start - timedelta(days=1)
        return quarter_period(before.year, (before.month - 1) // 3 + 1)
    if kind == "week":
        before = period.start - timedelta(days=7)
        iso = before.isocalendar()
        return week_period(iso.year, iso.week)
    days = (period.end - period.start).days + 1
    return range_period(period.start - timedelta(days=days), period.start - timedelta(days=1))


def last_periods(period: Period, count: int) -> list[Period]:
    """`count` periods of `period`'s kind ending with `period`, oldest first."""
    out = [period]
    while len(out) < count:
        out.append(previous_period(out[-1]))
    return out[::-1]


def digest_period(cadence: str, today: date) -> Period:
    """The last complete ISO week (Monday-Sunday, "weekly") or calendar month ("monthly") before
    `today`."""
    if cadence == "weekly":
        this_monday = today - timedelta(days=today.weekday())
        iso = (this_monday - timedelta(days=7)).isocalendar()
        return week_period(iso.year, iso.week)
    if cadence == "monthly":
        before = today.replace(day=1) - timedelta(days=1)
        return month_period(before.year, before.month)
    raise ValueError(f"cadence must be weekly or monthly, not {cadence!r}")


__all__ = [
    "CADENCES",
    "Cadence",
    "ReportPeriodError",
    "digest_period",
    "last_periods",
    "parse_period",
    "period_kind",
    "previous_period",
]
