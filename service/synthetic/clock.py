"""Time in the synthetic company.

Every instant is an int64 count of seconds since the Unix epoch; Asia/Shanghai is UTC+08:00 all year
(no daylight saving), so local calendar arithmetic is a fixed shift. `MISSING` marks an absent value.
All generated instants are whole minutes, which keeps formatting a table look-up.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import numpy.typing as npt

Arr = npt.NDArray[Any]

TZ_NAME = "Asia/Shanghai"
TZ = timezone(timedelta(hours=8))
OFFSET = 8 * 3600
MINUTE = 60
HOUR = 3600
DAY = 86400
MISSING = np.iinfo(np.int64).min


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    """Epoch seconds of a wall-clock time in Asia/Shanghai."""
    return int(datetime(year, month, day, hour, minute, tzinfo=TZ).timestamp())


def iso(t: int) -> str:
    """ISO 8601 with the +08:00 offset, e.g. 2026-03-04T09:15:00+08:00."""
    return datetime.fromtimestamp(t, TZ).isoformat()


def local_day(t: int) -> int:
    """Days since 1970-01-01 of the local calendar date of `t`."""
    return (t + OFFSET) // DAY


def midnight_of_day(day: Arr | int) -> Any:
    """Epoch seconds of local midnight of a local day number (scalar or array)."""
    return np.asarray(day, dtype=np.int64) * DAY - OFFSET


PERIOD_START = at(2025, 11, 1)
PERIOD_END = at(2026, 11, 1)  # exclusive
AS_OF = at(2026, 11, 10)


def workdays(start: int, end: int) -> Arr:
    """Local midnights (epoch seconds) of the Monday-to-Friday days in [start, end)."""
    days = np.arange(local_day(start), local_day(end - 1) + 1, dtype=np.int64)
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
    days = days[weekday < 5]
    out: Arr = midnight_of_day(days)
    return out[(out >= start - DAY) & (out < end)]


def work_times(
    rng: np.random.Generator,
    n: int,
    start: int = PERIOD_START,
    end: int = PERIOD_END,
    open_hour: float = 9.0,
    close_hour: float = 18.0,
) -> Arr:
    """`n` random instants on working days between the given local hours, whole minutes."""
    days = workdays(start, end)
    pick = days[rng.integers(0, len(days), size=n)]
    minute = rng.integers(int(open_hour * 60), int(close_hour * 60), size=n)
    out: Arr = pick + minute.astype(np.int64) * MINUTE
    return out


def delay(rng: np.random.Generator, n: int, lo_hours: float, hi_hours: float) -> Arr:
    """`n` random durations in whole minutes, uniform in [lo_hours, hi_hours] hours, as seconds."""
    lo = round(lo_hours * 60)
    hi = round(hi_hours * 60)
    out: Arr = rng.integers(lo, hi + 1, size=n).astype(np.int64) * MINUTE
    return out


def present(t: Arr) -> Arr:
    out: Arr = t != MISSING
    return out


def cut(t: Arr, limit: int = AS_OF) -> Arr:
    """Instants after `limit` have not happened yet: they become MISSING."""
    out: Arr = np.where(t > limit, MISSING, t)
    return out


def after(base: Arr, d: Arr) -> Arr:
    """base + d, MISSING where base is MISSING."""
    out: Arr = np.where(base == MISSING, MISSING, base + d)
    return out


def year_start(year: int) -> int:
    return at(year, 1, 1)
