"""Derived values on the record scope: the as-of time, period bounds and aggregates.

Both engines call `derive_columns` (the streaming engine on a one-row frame), so a derived value
is computed by the same code whichever engine judges the record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from rules.engine.encode import PRESENT_SUFFIX
from rules.lang.ir import AS_OF, RECORD, Aggregate, Derivation, PeriodBound

ITEM = "item"  # the scope name of the records an aggregate sums


def period_bounds_ms(as_of_ms: int, period: str, tz: ZoneInfo) -> tuple[int, int]:
    """[start, end) of the last complete calendar period (month/quarter/year) before `as_of`."""
    local = datetime.fromtimestamp(as_of_ms / 1000, tz)
    if period == "month":
        end = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        start = (
            end.replace(year=end.year - 1, month=12) if end.month == 1 else end.replace(month=end.month - 1)
        )
    elif period == "quarter":
        q_month = 3 * ((local.month - 1) // 3) + 1
        end = local.replace(month=q_month, day=1, hour=0, minute=0, second=0, microsecond=0)
        start = (
            end.replace(year=end.year - 1, month=end.month + 9)
            if end.month <= 3
            else end.replace(month=end.month - 3)
        )
    elif period == "year":
        end = local.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
        start = end.replace(year=end.year - 1)
    else:  # the loader only admits the three periods above
        raise ValueError(f"unknown period {period!r}")
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def year_in_tz(ms: np.ndarray, tz: ZoneInfo) -> np.ndarray:
    """Calendar year, in the company's time zone, of epoch-millisecond timestamps."""
    return pd.to_datetime(ms, unit="ms", utc=True).tz_convert(tz).year.to_numpy()


def _set(frame: pd.DataFrame, name: str, values: np.ndarray | np.int64) -> None:
    frame[f"{RECORD}.{name}"] = values
    frame[f"{RECORD}.{name}{PRESENT_SUFFIX}"] = 1


def derive_columns(
    frame: pd.DataFrame,
    derivations: Sequence[Derivation],
    *,
    as_of_ms: int,
    tz: ZoneInfo,
    related: Mapping[str, pd.DataFrame],
) -> pd.DataFrame:
    """Add the as-of time and each derivation as `record.<name>` columns (always present)."""
    from rules.engine.batch import eval_node, prefixed  # the aggregate filter is a batch evaluation

    out = frame.copy(deep=False)  # copy-on-write (pandas 3): the new columns never reach `frame`
    _set(out, AS_OF, np.int64(as_of_ms))
    for d in derivations:
        if isinstance(d, PeriodBound):
            start, end = period_bounds_ms(as_of_ms, d.period, tz)
            _set(out, d.column, np.int64(start if d.which == "start" else end))
            continue
        assert isinstance(d, Aggregate)
        total = np.zeros(len(out), dtype=np.float64)
        for part in d.parts:
            source = related.get(part.type)
            if source is None or len(source) == 0 or len(out) == 0:
                continue
            items = prefixed(source, ITEM)
            items = items[eval_node(items, part.where, related)]
            for field, _ in part.keys:
                items = items[items[f"{ITEM}.{field}{PRESENT_SUFFIX}"].to_numpy() == 1]
            items = items[items[f"{ITEM}.{part.field}{PRESENT_SUFFIX}"].to_numpy() == 1]
            group_cols = [f"{ITEM}.{f}" for f, _ in part.keys]
            left_cols = [f"{RECORD}.{r}" for _, r in part.keys]
            if part.year_field is not None and part.year_of is not None:
                items = items[items[f"{ITEM}.{part.year_field}{PRESENT_SUFFIX}"].to_numpy() == 1]
                items = items.assign(
                    **{f"{ITEM}.__year": year_in_tz(items[f"{ITEM}.{part.year_field}"].to_numpy(), tz)}
                )
                group_cols.append(f"{ITEM}.__year")
                left_cols.append(f"{RECORD}.{part.year_of}")
            sums = (
                items.groupby(group_cols, sort=False)[f"{ITEM}.{part.field}"]
                .sum()
                .rename("__sum")
                .reset_index()
            )
            keyed = (
                out[left_cols]
                .reset_index(drop=True)
                .merge(sums, left_on=left_cols, right_on=group_cols, how="left")
            )
            total += keyed["__sum"].fillna(0).to_numpy(dtype=np.float64)
        _set(out, d.name, total)
    return out
