"""Inspection periods: a month `2026-10` or a quarter `2026-Q3`, in the company's time zone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

PERIOD_PATTERN = r"^\d{4}-(0[1-9]|1[0-2]|Q[1-4])$"
_PATTERN = re.compile(PERIOD_PATTERN)
MIN_YEAR = 2000
MAX_YEAR = 2100


class PeriodError(ValueError):
    def __init__(self, text: str) -> None:
        super().__init__(
            f"{text!r} is not a period: a month YYYY-MM or a quarter YYYY-Qn, years {MIN_YEAR}-{MAX_YEAR}"
        )
        self.message_zh = f"{text!r} 不是有效期间：月份 YYYY-MM 或季度 YYYY-Qn，年份 {MIN_YEAR}-{MAX_YEAR}"


@dataclass(frozen=True, order=True)
class Period:
    """A calendar month (`months` 1) or quarter (`months` 3) starting at `first_month` of `year`."""

    year: int
    first_month: int
    months: int

    @classmethod
    def parse(cls, text: str) -> Period:
        value = text.strip()
        if not _PATTERN.fullmatch(value):
            raise PeriodError(text)
        year = int(value[:4])
        if not MIN_YEAR <= year <= MAX_YEAR:
            raise PeriodError(text)
        tail = value[5:]
        if tail.startswith("Q"):
            return cls(year, (int(tail[1]) - 1) * 3 + 1, 3)
        return cls(year, int(tail), 1)

    @classmethod
    def month_of(cls, moment: datetime, tz: ZoneInfo) -> Period:
        local = moment.astimezone(tz)
        return cls(local.year, local.month, 1)

    @classmethod
    def quarter_of(cls, moment: datetime, tz: ZoneInfo) -> Period:
        local = moment.astimezone(tz)
        return cls(local.year, (local.month - 1) // 3 * 3 + 1, 3)

    @property
    def is_quarter(self) -> bool:
        return self.months == 3

    @property
    def label(self) -> str:
        if self.is_quarter:
            return f"{self.year}-Q{(self.first_month - 1) // 3 + 1}"
        return f"{self.year}-{self.first_month:02d}"

    def __str__(self) -> str:
        return self.label

    def start(self, tz: ZoneInfo) -> datetime:
        """The first instant of the period (local midnight), in UTC."""
        return datetime(self.year, self.first_month, 1, tzinfo=tz).astimezone(UTC)

    def end(self, tz: ZoneInfo) -> datetime:
        """The first instant after the period (exclusive end), in UTC."""
        return self.next().start(tz)

    def next(self) -> Period:
        month = self.first_month + self.months
        year = self.year + (month - 1) // 12
        return Period(year, (month - 1) % 12 + 1, self.months)

    def previous(self) -> Period:
        month = self.first_month - self.months
        year = self.year + (month - 1) // 12
        return Period(year, (month - 1) % 12 + 1, self.months)

    def as_of(self, tz: ZoneInfo, *, grace_days: int, now: datetime) -> datetime:
        """When an inspection judges the period: its end plus the grace days, never after `now`."""
        return min(self.end(tz) + timedelta(days=grace_days), now.astimezone(UTC))
