"""Validate raw record frames into typed frames, reporting every bad cell in en and zh-CN.

The work is column-wise (pandas string ops, regex and `to_datetime` over whole columns); Python
loops run only over the cells that are wrong, to build their Problems. Typed frames follow the
conventions in `rules.records`: str, Int64, Int64 hundredths, boolean, datetime64[ns, UTC].
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pandas as pd
from pandas.api import types as ptypes
from pandas.api.extensions import ExtensionDtype

from rules.problems import InputError, Problem
from rules.records import DECIMAL_SCALE, FieldSpec, FieldType, RecordType

Mask = npt.NDArray[np.bool_]
Codes = npt.NDArray[np.int8]

QUOTE_MAX = 40  # offending values are quoted in messages up to this many characters
DECIMAL_MAX_DIGITS = 15  # integer digits of a decimal: hundredths must fit Int64 with room to sum
INT_MAX_DIGITS = 18

TRUE_TEXTS = ("true", "t", "yes", "y", "1", "是")
FALSE_TEXTS = ("false", "f", "no", "n", "0", "否")

# Patterns use [0-9] and literal spaces, not \d and \s: Python's are Unicode-wide ("１２" would pass
# and then fail to convert), and avoiding them keeps pandas on pyarrow's RE2 instead of per-cell `re`.
# A sign may sit before or after the currency sign: "-¥12.50", "¥-12.50"; "1,234.50" needs proper groups.
_DECIMAL_RE = r"(?:[+-]? *[¥￥]?|[¥￥] *[+-]) *(?:(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]*)?|\.[0-9]+)"
_INT_RE = r"[+-]?[0-9]+(?:\.0*)?"
_TIME = r"[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?"
_DAY = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_NAIVE_RE = rf"{_DAY}(?:{_TIME})?"
# Offsets with seconds ("+08:05:43", local mean time before 1901) are what tzdata and Python emit.
_AWARE_RE = rf"{_DAY}{_TIME}(?:Z|[+-][0-9]{{2}}(?::?[0-9]{{2}}(?::[0-9]{{2}})?)?)"
_SECONDS_OFFSET_RE = r".*[+-][0-9]{2}:[0-9]{2}:[0-9]{2}"
# A date may carry an explicit midnight, as spreadsheets export it: "2026-10-01 00:00:00".
_DATE_RE = rf"{_DAY}(?:[T ]00:00(?::00(?:\.0{{1,9}})?)?)?"

# datetime64[ns] spans 1677-09-21 .. 2262-04-11; whole years inside it are accepted.
_MIN_TS = pd.Timestamp("1678-01-01", tz="UTC")
_MAX_TS = pd.Timestamp("2261-12-31 23:59:59.999999999", tz="UTC")
TS_DTYPE = pd.DatetimeTZDtype(unit="ns", tz="UTC")


class Err(IntEnum):
    """Why a cell is bad; the first failing check of a cell wins, so each cell has one problem."""

    OK = 0
    MISSING = 1
    NESTED = 2
    NOT_INT = 3
    NOT_DECIMAL = 4
    DECIMALS = 5
    TOO_LARGE = 6
    NOT_BOOL = 7
    NOT_TIMESTAMP = 8
    NOT_DATE = 9
    BAD_CALENDAR = 10
    OUT_OF_RANGE = 11
    TZ_GAP = 12
    NOT_IN_VALUES = 13
    BELOW_MIN = 14
    ABOVE_MAX = 15
    PATTERN = 16
    DUPLICATE = 17


@dataclass(frozen=True)
class Validated:
    """The result of validating one file: its valid rows, typed, and every problem."""

    frame: pd.DataFrame
    problems: list[Problem]
    rejected_rows: list[int]
    total_rows: int

    @property
    def ok(self) -> bool:
        return not self.problems


# ---------------------------------------------------------------------------------------------
# Cells as text


def cell_text(value: Any) -> str | None:
    """The text a typed cell stands for (None when missing); typed inputs then share the text path."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        x = float(value)
        if math.isnan(x):
            return None
        if x.is_integer() and abs(x) < 1e16:
            return str(int(x))
        # 15 significant digits is what a float faithfully holds; it turns 0.1+0.2 back into 0.3.
        return format(x, ".15g")
    if isinstance(value, decimal.Decimal):
        return None if value.is_nan() else format(value, "f")
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, list | dict | tuple):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _quote(value: Any) -> str:
    text = cell_text(value)
    text = "" if text is None else text.strip()
    if len(text) > QUOTE_MAX:
        text = text[:QUOTE_MAX] + "…"
    return f"'{text}'"


def _as_text(raw: pd.Series[Any]) -> tuple[pd.Series[str], Mask]:
    """Stripped text of a column (NaN where missing or blank), and where cells hold a list/object."""
    nested = np.zeros(len(raw), dtype=np.bool_)
    # Object columns of only strings (JSON, payloads) convert in one vectorised step.
    if isinstance(raw.dtype, pd.StringDtype) or (
        raw.dtype == object and ptypes.infer_dtype(raw, skipna=True) in ("string", "empty")
    ):
        text = raw.astype("str")
    else:
        if raw.dtype == object:
            nested = raw.map(lambda v: isinstance(v, list | dict | tuple | set)).to_numpy(dtype=np.bool_)
        text = pd.Series(raw.map(cell_text), index=raw.index, dtype="str")
    text = text.str.strip()
    return text.mask(text == ""), nested


def _first_error(codes: Codes, mask: Mask | pd.Series[bool], err: Err) -> None:
    """Record `err` where `mask` holds and the cell has no earlier error."""
    m = np.asarray(mask, dtype=np.bool_)
    codes[m & (codes == Err.OK)] = err


def _fullmatch(text: pd.Series[str], pattern: str) -> Mask:
    return text.str.fullmatch(pattern).fillna(False).to_numpy(dtype=np.bool_)


# ---------------------------------------------------------------------------------------------
# Parsing one column to its type (no constraints yet)


@dataclass
class _Parsed:
    values: pd.Series[Any]
    codes: Codes  # Err per cell; OK for valid and for missing cells
    missing: Mask


def _parse_string(raw: pd.Series[Any]) -> _Parsed:
    text, nested = _as_text(raw)
    codes = np.zeros(len(raw), dtype=np.int8)
    _first_error(codes, nested, Err.NESTED)
    return _Parsed(text.mask(nested), codes, text.isna().to_numpy() & ~nested)


def _parse_int(raw: pd.Series[Any]) -> _Parsed:
    n = len(raw)
    codes = np.zeros(n, dtype=np.int8)
    if ptypes.is_integer_dtype(raw.dtype) and raw.dtype != np.uint64:
        values = raw.astype("Int64")
        return _Parsed(values, codes, values.isna().to_numpy())
    if ptypes.is_float_dtype(raw.dtype):
        x = raw.to_numpy(dtype=np.float64, na_value=np.nan)
        missing = np.isnan(x)
        with np.errstate(invalid="ignore"):
            finite = np.isfinite(x)
            integral = finite & (x == np.floor(np.where(finite, x, 0.0)))
            small = integral & (np.abs(np.where(finite, x, 0.0)) < 1e18)
        _first_error(codes, ~missing & ~integral, Err.NOT_INT)
        _first_error(codes, ~missing & integral & ~small, Err.TOO_LARGE)
        ints = np.where(small, x, 0.0).astype(np.int64)
        return _Parsed(pd.Series(pd.array(ints, dtype="Int64")).mask(~small), codes, missing)
    text, nested = _as_text(raw)
    missing = text.isna().to_numpy() & ~nested
    ok = _fullmatch(text, _INT_RE)
    digits = text.where(ok).str.replace(r"\.0*$", "", regex=True).str.lstrip("+")
    too_large = (digits.str.lstrip("-").str.len() > INT_MAX_DIGITS).fillna(False).to_numpy(dtype=np.bool_)
    _first_error(codes, nested, Err.NESTED)
    _first_error(codes, ~missing & ~ok, Err.NOT_INT)
    _first_error(codes, too_large, Err.TOO_LARGE)
    values = digits.mask(too_large).astype("Int64")
    return _Parsed(pd.Series(values.array), codes, missing)


def _parse_decimal(raw: pd.Series[Any]) -> _Parsed:
    """CNY amounts as Int64 hundredths, exact: text is split at the point, never parsed as float."""
    n = len(raw)
    codes = np.zeros(n, dtype=np.int8)
    limit = 10**DECIMAL_MAX_DIGITS
    if ptypes.is_integer_dtype(raw.dtype) and raw.dtype != np.uint64:
        ints = raw.astype("Int64")
        too_large = (ints.abs() >= limit).fillna(False).to_numpy(dtype=np.bool_)
        _first_error(codes, too_large, Err.TOO_LARGE)
        return _Parsed(pd.Series((ints * DECIMAL_SCALE).mask(too_large).array), codes, ints.isna().to_numpy())
    if ptypes.is_float_dtype(raw.dtype):
        x = raw.to_numpy(dtype=np.float64, na_value=np.nan)
        missing = np.isnan(x)
        with np.errstate(invalid="ignore"):
            finite = np.isfinite(x)
            safe = np.where(finite, x, 0.0)
            in_range = finite & (np.abs(safe) < limit)
            scaled = safe * DECIMAL_SCALE
            rounded = np.rint(scaled)
            # A float is a binary approximation of the decimal typed; 1e-14 relative (~45 ulps)
            # forgives that (0.1+0.2 -> 30) while 12.345 (half a fen off) is still caught.
            exact = np.abs(scaled - rounded) <= np.abs(scaled) * 1e-14 + 1e-9
        _first_error(codes, ~missing & ~finite, Err.NOT_DECIMAL)
        _first_error(codes, ~missing & ~in_range, Err.TOO_LARGE)
        _first_error(codes, ~missing & ~exact, Err.DECIMALS)
        good = codes == Err.OK
        hundredths = pd.Series(pd.array(np.where(good, rounded, 0.0).astype(np.int64), dtype="Int64"))
        return _Parsed(hundredths.mask(~good | missing), codes, missing)
    text, nested = _as_text(raw)
    missing = text.isna().to_numpy() & ~nested
    ok = _fullmatch(text, _DECIMAL_RE)
    clean = text.where(ok).str.replace(r"[ ,¥￥+]", "", regex=True)
    negative = clean.str.startswith("-").fillna(False).to_numpy(dtype=np.bool_)
    whole = clean.str.replace(r"^-?0*([0-9]*)(?:\.[0-9]*)?$", r"\1", regex=True)
    frac = clean.str.replace(r"^[^.]*\.?", "", regex=True)
    # Trailing zeros beyond the fen ("1.500") lose nothing; other extra digits would.
    too_precise = (frac.str.rstrip("0").str.len() > 2).fillna(False).to_numpy(dtype=np.bool_)
    too_large = (whole.str.len() > DECIMAL_MAX_DIGITS).fillna(False).to_numpy(dtype=np.bool_)
    _first_error(codes, nested, Err.NESTED)
    _first_error(codes, ~missing & ~ok, Err.NOT_DECIMAL)
    _first_error(codes, too_precise, Err.DECIMALS)
    _first_error(codes, too_large, Err.TOO_LARGE)
    bad = codes != Err.OK
    whole_v = whole.mask(bad).replace("", "0").astype("Int64")
    fen_v = (frac.mask(bad) + "00").str.slice(0, 2).astype("Int64")
    hundredths = whole_v * DECIMAL_SCALE + fen_v
    hundredths = hundredths.where(~negative, -hundredths)
    return _Parsed(pd.Series(hundredths.array), codes, missing)


def _parse_bool(raw: pd.Series[Any]) -> _Parsed:
    codes = np.zeros(len(raw), dtype=np.int8)
    if ptypes.is_bool_dtype(raw.dtype):
        values = raw.astype("boolean")
        return _Parsed(pd.Series(values.array), codes, values.isna().to_numpy())
    text, nested = _as_text(raw)
    missing = text.isna().to_numpy() & ~nested
    lower = text.str.lower()
    is_true = lower.isin(TRUE_TEXTS).to_numpy(dtype=np.bool_)
    is_false = lower.isin(FALSE_TEXTS).to_numpy(dtype=np.bool_)
    _first_error(codes, nested, Err.NESTED)
    _first_error(codes, ~missing & ~is_true & ~is_false, Err.NOT_BOOL)
    values = pd.Series(pd.array(is_true, dtype="boolean")).mask(~is_true & ~is_false)
    return _Parsed(values, codes, missing)


def _to_utc_ns(parsed: pd.Series[Any], codes: Codes, checked: Mask) -> pd.Series[Any]:
    """UTC nanoseconds; cells in `checked` that failed to parse or fall outside ns range get an Err."""
    parsed = pd.Series(parsed.array)
    if parsed.dt.tz is None:
        parsed = parsed.dt.tz_localize("UTC")
    parsed = parsed.dt.tz_convert("UTC")
    failed = parsed.isna().to_numpy()
    outside = ~failed & ((parsed < _MIN_TS) | (parsed > _MAX_TS)).to_numpy(dtype=np.bool_)
    _first_error(codes, checked & failed, Err.BAD_CALENDAR)
    _first_error(codes, checked & outside, Err.OUT_OF_RANGE)
    return parsed.mask(outside).astype(TS_DTYPE)


def _localize(naive: pd.Series[Any], tz: ZoneInfo, codes: Codes, checked: Mask) -> pd.Series[Any]:
    """Wall-clock times in `tz` -> aware; a time skipped or repeated by a DST change is an error."""
    parsed_ok = naive.notna().to_numpy()
    # Out-of-range wall times are dropped first: tz_localize must not overflow on them.
    outside = parsed_ok & (
        (naive < _MIN_TS.tz_localize(None)) | (naive > _MAX_TS.tz_localize(None))
    ).to_numpy(dtype=np.bool_)
    _first_error(codes, checked & outside, Err.OUT_OF_RANGE)
    local = naive.mask(outside).dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    _first_error(codes, checked & parsed_ok & ~outside & local.isna().to_numpy(), Err.TZ_GAP)
    return pd.Series(local.array)


def _parse_time(raw: pd.Series[Any], tz: ZoneInfo, *, date_only: bool) -> _Parsed:
    n = len(raw)
    codes = np.zeros(n, dtype=np.int8)
    if ptypes.is_datetime64_any_dtype(raw.dtype):
        values = pd.Series(raw.array)
        missing = values.isna().to_numpy()
        if date_only:
            wall = values.dt.tz_convert(tz).dt.tz_localize(None) if values.dt.tz is not None else values
            not_midnight = ~missing & (wall != wall.dt.normalize()).to_numpy(dtype=np.bool_)
            _first_error(codes, not_midnight, Err.NOT_DATE)
            values = wall.mask(not_midnight)
        if values.dt.tz is None:
            values = _localize(values, tz, codes, ~missing)
        return _Parsed(_to_utc_ns(values, codes, ~missing), codes, missing)
    text, nested = _as_text(raw)
    missing = text.isna().to_numpy() & ~nested
    _first_error(codes, nested, Err.NESTED)
    if date_only:
        is_date = _fullmatch(text, _DATE_RE)
        _first_error(codes, ~missing & ~is_date, Err.NOT_DATE)
        naive = pd.to_datetime(text.where(is_date).str.slice(0, 10), format="%Y-%m-%d", errors="coerce")
        _first_error(codes, is_date & naive.isna().to_numpy(), Err.BAD_CALENDAR)
        local = _localize(pd.Series(naive.array), tz, codes, is_date)
        return _Parsed(_to_utc_ns(local, codes, is_date), codes, missing)
    is_naive = _fullmatch(text, _NAIVE_RE)
    is_aware = _fullmatch(text, _AWARE_RE)
    _first_error(codes, ~missing & ~is_naive & ~is_aware, Err.NOT_TIMESTAMP)
    naive = pd.Series(pd.to_datetime(text.where(is_naive), format="ISO8601", errors="coerce").array)
    _first_error(codes, is_naive & naive.isna().to_numpy(), Err.BAD_CALENDAR)
    local = _to_utc_ns(_localize(naive, tz, codes, is_naive), codes, is_naive)
    absolute = _parse_absolute(text, is_aware, codes)
    return _Parsed(absolute.where(pd.Series(is_aware), local), codes, missing)


def _parse_absolute(text: pd.Series[str], is_aware: Mask, codes: Codes) -> pd.Series[Any]:
    """Texts with an offset -> UTC; pandas cannot parse offsets with seconds, so those are done apart."""
    seconds = is_aware & _fullmatch(text, _SECONDS_OFFSET_RE)
    plain = is_aware & ~seconds
    parsed = pd.to_datetime(text.where(plain), format="ISO8601", utc=True, errors="coerce")
    absolute = _to_utc_ns(pd.Series(parsed.array), codes, plain)
    if not seconds.any():
        return absolute
    odd = text.where(seconds)
    wall = pd.Series(pd.to_datetime(odd.str.slice(0, -9), format="ISO8601", errors="coerce").array)
    offset = odd.str.slice(-9)
    sign = np.where(offset.str.startswith("-").fillna(False).to_numpy(dtype=np.bool_), -1, 1)
    hms = [offset.str.slice(a, a + 2).astype("Int64").fillna(0).to_numpy(dtype=np.int64) for a in (1, 4, 7)]
    delta = pd.to_timedelta(sign * (hms[0] * 3600 + hms[1] * 60 + hms[2]), unit="s")
    shifted = _to_utc_ns(pd.Series((wall - delta).array), codes, seconds)
    return absolute.where(pd.Series(~seconds), shifted)


def _parse(spec: FieldSpec, raw: pd.Series[Any], tz: ZoneInfo) -> _Parsed:
    raw = raw.reset_index(drop=True)
    match spec.type:
        case FieldType.STRING:
            return _parse_string(raw)
        case FieldType.INT:
            return _parse_int(raw)
        case FieldType.DECIMAL:
            return _parse_decimal(raw)
        case FieldType.BOOL:
            return _parse_bool(raw)
        case FieldType.TIMESTAMP:
            return _parse_time(raw, tz, date_only=False)
        case FieldType.DATE:
            return _parse_time(raw, tz, date_only=True)


# ---------------------------------------------------------------------------------------------
# Small frames: the same parsing, one cell at a time
#
# pandas costs ~0.1 ms per column operation whatever the length, which is most of the cost of
# validating one record (an API submit). Up to SMALL_FRAME rows, text cells are parsed here in
# plain Python instead, with the same results (tests/test_validate_small.py compares both paths).
# Anything these functions are not sure to read exactly as pandas does (other column dtypes, years
# far from now, unusual offsets, non-ASCII digits) makes them return None, and the column goes the
# vectorised way.

SMALL_FRAME = 32
_FAST_YEARS = range(1900, 2038)  # within it, zoneinfo and pandas agree on every zone's rules
_EPOCH = dt.datetime(1970, 1, 1)
_INT_FULL = re.compile(_INT_RE)
_DECIMAL_FULL = re.compile(_DECIMAL_RE)
_DATE_FULL = re.compile(_DATE_RE)
_NAIVE_PARTS = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,9}))?)?)?"
)
_AWARE_PARTS = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,9}))?)?"
    r"(?:(Z)|([+-])([0-9]{2}):([0-9]{2}))"
)
_AWARE_FULL = re.compile(_AWARE_RE)


class _NotSureError(Exception):
    """A cell the small-frame path does not read with certainty: the column goes the vectorised way."""


def _small_texts(raw: pd.Series[Any]) -> tuple[list[str | None], list[bool]]:
    """Per cell, what `_as_text` gives: stripped text (None when missing or blank), and nested."""
    if not (isinstance(raw.dtype, pd.StringDtype) or raw.dtype == object):
        raise _NotSureError
    texts: list[str | None] = []
    nested: list[bool] = []
    for value in raw.tolist():
        text = cell_text(value)
        if text is not None:
            if not text.isascii():
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:  # a lone surrogate: pandas' text column refuses it
                    raise _NotSureError from None
            text = text.strip() or None
        texts.append(text)
        nested.append(isinstance(value, list | dict | tuple | set))
    return texts, nested


def _wall_ns(parts: tuple[str | None, ...]) -> tuple[dt.datetime, int] | None:
    """(wall-clock datetime to the second, nanoseconds) of regex groups; None: not a calendar date."""
    year, month, day, hour, minute, second, fraction = parts
    if int(year or 0) not in _FAST_YEARS:
        raise _NotSureError
    try:
        wall = dt.datetime(
            int(year or 0), int(month or 0), int(day or 0), int(hour or 0), int(minute or 0), int(second or 0)
        )
    except ValueError:
        return None
    return wall, int((fraction or "").ljust(9, "0"))


def _utc_ns(wall: dt.datetime, ns: int, tz: ZoneInfo | dt.timezone) -> int | None:
    """UTC epoch nanoseconds of a wall-clock time in `tz`; None when a DST change skips or repeats it."""
    first, second = wall.replace(tzinfo=tz), wall.replace(tzinfo=tz, fold=1)
    if first.utcoffset() != second.utcoffset():
        return None
    utc = first.astimezone(dt.UTC).replace(tzinfo=None)
    return (utc - _EPOCH) // dt.timedelta(seconds=1) * 10**9 + ns


def _small_time(text: str, tz: ZoneInfo, date_only: bool) -> tuple[int | None, Err]:
    if date_only:
        if not _DATE_FULL.fullmatch(text):
            return None, Err.NOT_DATE
        parsed = _wall_ns((text[0:4], text[5:7], text[8:10], None, None, None, None))
        if parsed is None:
            return None, Err.BAD_CALENDAR
        value = _utc_ns(parsed[0], 0, tz)
        return (None, Err.TZ_GAP) if value is None else (value, Err.OK)
    naive = _NAIVE_PARTS.fullmatch(text)
    if naive is not None:
        parsed = _wall_ns(naive.groups())
        if parsed is None:
            return None, Err.BAD_CALENDAR
        value = _utc_ns(*parsed, tz)
        return (None, Err.TZ_GAP) if value is None else (value, Err.OK)
    if not _AWARE_FULL.fullmatch(text):
        return None, Err.NOT_TIMESTAMP
    aware = _AWARE_PARTS.fullmatch(text)
    if aware is None:  # offsets such as +0800, +08 or +08:05:43
        raise _NotSureError
    *wall_parts, zulu, sign, hours, minutes = aware.groups()
    if zulu is None and (int(hours) > 14 or int(minutes) > 59):
        raise _NotSureError
    parsed = _wall_ns(tuple(wall_parts))
    if parsed is None:
        return None, Err.BAD_CALENDAR
    offset = dt.timedelta(hours=int(hours or 0), minutes=int(minutes or 0))
    offset = -offset if sign == "-" else offset  # zulu: sign, hours and minutes are None
    return _utc_ns(*parsed, dt.timezone(offset)), Err.OK


def _small_cell(spec: FieldSpec, text: str, tz: ZoneInfo) -> tuple[Any, Err]:
    """(typed value or None, error) of one present, not nested cell."""
    match spec.type:
        case FieldType.STRING:
            return text, Err.OK
        case FieldType.INT:
            if not _INT_FULL.fullmatch(text):
                return None, Err.NOT_INT
            digits = re.sub(r"\.0*$", "", text).lstrip("+")
            if len(digits.lstrip("-")) > INT_MAX_DIGITS:
                return None, Err.TOO_LARGE
            return int(digits), Err.OK
        case FieldType.DECIMAL:
            if not _DECIMAL_FULL.fullmatch(text):
                return None, Err.NOT_DECIMAL
            clean = re.sub(r"[ ,¥￥+]", "", text)
            whole = re.sub(r"^-?0*([0-9]*)(?:\.[0-9]*)?$", r"\1", clean)
            frac = re.sub(r"^[^.]*\.?", "", clean)
            if len(frac.rstrip("0")) > 2:
                return None, Err.DECIMALS
            if len(whole) > DECIMAL_MAX_DIGITS:
                return None, Err.TOO_LARGE
            hundredths = int(whole or "0") * DECIMAL_SCALE + int((frac + "00")[:2])
            return -hundredths if clean.startswith("-") else hundredths, Err.OK
        case FieldType.BOOL:
            if not text.isascii() and text not in ("是", "否"):
                raise _NotSureError  # pandas' lower-casing of non-ASCII letters is not Python's
            lower = text.lower()
            if lower in TRUE_TEXTS:
                return True, Err.OK
            if lower in FALSE_TEXTS:
                return False, Err.OK
            return None, Err.NOT_BOOL
        case FieldType.TIMESTAMP | FieldType.DATE:
            return _small_time(text, tz, spec.type is FieldType.DATE)


def _parse_small(spec: FieldSpec, raw: pd.Series[Any], tz: ZoneInfo) -> _Parsed | None:
    """What `_parse` gives for a short column of text or object cells, or None (see above)."""
    try:
        texts, nested = _small_texts(raw)
        values: list[Any] = []
        codes = np.zeros(len(texts), dtype=np.int8)
        for pos, (text, is_nested) in enumerate(zip(texts, nested, strict=True)):
            if is_nested:
                value, err = None, Err.NESTED
            elif text is None:
                value, err = None, Err.OK
            else:
                value, err = _small_cell(spec, text, tz)
            values.append(value)
            codes[pos] = err
    except _NotSureError:
        return None
    missing = np.array([t is None and not n for t, n in zip(texts, nested, strict=True)], dtype=np.bool_)
    if spec.type.is_time:
        stamps = np.array([np.iinfo(np.int64).min if v is None else v for v in values], dtype=np.int64)
        column = pd.Series(stamps.view("datetime64[ns]")).dt.tz_localize("UTC")
    else:
        column = pd.Series(values, dtype=dtype_of(spec) if spec.type is not FieldType.STRING else "str")
    return _Parsed(column, codes, missing)


# ---------------------------------------------------------------------------------------------
# Constraints


def _bound(spec: FieldSpec, limit: float) -> float:
    """A bound from the model in the column's stored unit (hundredths for decimals)."""
    if spec.type is FieldType.DECIMAL:
        return float(decimal.Decimal(str(limit)) * DECIMAL_SCALE)
    return float(limit)


def _check_constraints(spec: FieldSpec, parsed: _Parsed) -> None:
    codes, values = parsed.codes, parsed.values
    present = ~parsed.missing & (codes == Err.OK)
    if len(values) <= SMALL_FRAME and (spec.pattern is None or spec.type is not FieldType.STRING):
        _check_constraints_small(spec, values.tolist(), present, codes)
        return
    if spec.values is not None and spec.type is FieldType.STRING:
        _first_error(codes, present & ~values.isin(spec.values).to_numpy(dtype=np.bool_), Err.NOT_IN_VALUES)
    if spec.type.is_number:
        numbers = values.astype("Float64")
        if spec.min is not None:
            below = (numbers < _bound(spec, spec.min)).fillna(False).to_numpy(dtype=np.bool_)
            _first_error(codes, present & below, Err.BELOW_MIN)
        if spec.max is not None:
            above = (numbers > _bound(spec, spec.max)).fillna(False).to_numpy(dtype=np.bool_)
            _first_error(codes, present & above, Err.ABOVE_MAX)
    if spec.pattern is not None and spec.type is FieldType.STRING:
        _first_error(codes, present & ~_fullmatch(values, spec.pattern), Err.PATTERN)


def _check_constraints_small(spec: FieldSpec, values: list[Any], present: Mask, codes: Codes) -> None:
    """`_check_constraints` cell by cell (patterns excepted: pandas' regex engine is not `re`)."""
    low = None if spec.min is None or not spec.type.is_number else _bound(spec, spec.min)
    high = None if spec.max is None or not spec.type.is_number else _bound(spec, spec.max)
    allowed = spec.values if spec.type is FieldType.STRING else None
    for pos in np.flatnonzero(present):
        value = values[pos]
        if allowed is not None and value not in allowed:
            codes[pos] = Err.NOT_IN_VALUES
        elif low is not None and float(value) < low:
            codes[pos] = Err.BELOW_MIN
        elif high is not None and float(value) > high:
            codes[pos] = Err.ABOVE_MAX


def _duplicates(ids: pd.Series[Any], codes: Codes) -> dict[int, int]:
    """Position of every repeated id -> position of its first occurrence."""
    if len(ids) <= SMALL_FRAME:
        first_at: dict[Any, int] = {}
        repeats: dict[int, int] = {}
        for pos, value in enumerate(ids.tolist()):
            if pd.isna(value):
                continue
            if value in first_at:
                repeats[pos] = first_at[value]
                _first_error(codes, np.arange(len(codes)) == pos, Err.DUPLICATE)
            else:
                first_at[value] = pos
        return repeats
    present = ids.notna().to_numpy()
    dup = ids.duplicated(keep="first").to_numpy(dtype=np.bool_) & present
    if not dup.any():
        return {}
    positions = np.arange(len(ids))
    firsts = pd.Series(positions[present & ~dup], index=ids[present & ~dup].to_numpy())
    first_of = firsts.loc[ids[dup].to_numpy()].to_numpy()
    _first_error(codes, dup, Err.DUPLICATE)
    return {int(p): int(f) for p, f in zip(positions[dup], first_of, strict=True)}


# ---------------------------------------------------------------------------------------------
# Messages


def _limit_text(value: float) -> str:
    return format(decimal.Decimal(str(value)).normalize(), "f")


def _message(
    err: Err, spec: FieldSpec, raw_value: Any, tz: ZoneInfo, first_row: int | None
) -> tuple[str, str]:
    """(en, zh) for one bad cell; en names the field, zh uses its Chinese label."""
    f, z, q = spec.name, spec.label.zh, _quote(raw_value)
    match err:
        case Err.MISSING:
            return f"{f}: required value is empty", f"{z}：必填值为空"
        case Err.NESTED:
            return f"{f}: {q} is a list or object, not a single value", f"{z}：{q} 是列表或对象，不是单个值"
        case Err.NOT_INT:
            return f"{f}: {q} is not an integer", f"{z}：{q} 不是整数"
        case Err.NOT_DECIMAL:
            return (
                f"{f}: {q} is not a number (e.g. 1234.50, 1,234.50 or ¥1234.50)",
                f"{z}：{q} 不是有效数字（例如 1234.50、1,234.50 或 ¥1234.50）",
            )
        case Err.DECIMALS:
            return f"{f}: {q} has more than 2 decimal places", f"{z}：{q} 的小数位超过 2 位"
        case Err.TOO_LARGE:
            return f"{f}: {q} is too large", f"{z}：{q} 数值过大"
        case Err.NOT_BOOL:
            return (
                f"{f}: {q} is not a yes/no value (true/false, yes/no, y/n, t/f, 1/0, 是/否)",
                f"{z}：{q} 不是是/否值（true/false、yes/no、y/n、t/f、1/0、是/否）",
            )
        case Err.NOT_TIMESTAMP:
            return (
                f"{f}: {q} is not an ISO 8601 date/time (e.g. 2026-10-01T09:00:00, "
                f"2026-10-01T09:00:00+08:00 or 2026-10-01)",
                f"{z}：{q} 不是 ISO 8601 日期时间（例如 2026-10-01T09:00:00、"
                f"2026-10-01T09:00:00+08:00 或 2026-10-01）",
            )
        case Err.NOT_DATE:
            return f"{f}: {q} is not a date (YYYY-MM-DD)", f"{z}：{q} 不是日期（YYYY-MM-DD）"
        case Err.BAD_CALENDAR:
            return f"{f}: {q} is not a valid calendar date/time", f"{z}：{q} 不是有效的日期时间"
        case Err.OUT_OF_RANGE:
            return (
                f"{f}: {q} is outside the supported years 1678-2261",
                f"{z}：{q} 超出支持的年份范围 1678-2261",
            )
        case Err.TZ_GAP:
            return (
                f"{f}: {q} does not exist or is ambiguous in {tz} (daylight-saving change); "
                f"give it an offset",
                f"{z}：{q} 在时区 {tz} 中不存在或有歧义（夏令时切换），请注明时差",
            )
        case Err.NOT_IN_VALUES:
            allowed = ", ".join(spec.values or ())
            return f"{f}: {q} is not one of: {allowed}", f"{z}：{q} 不是允许的值之一：{allowed}"
        case Err.BELOW_MIN:
            m = _limit_text(spec.min or 0)
            return f"{f}: {q} is below the minimum {m}", f"{z}：{q} 小于最小值 {m}"
        case Err.ABOVE_MAX:
            m = _limit_text(spec.max or 0)
            return f"{f}: {q} is above the maximum {m}", f"{z}：{q} 大于最大值 {m}"
        case Err.PATTERN:
            return (
                f"{f}: {q} does not match the required format {spec.pattern}",
                f"{z}：{q} 不符合要求的格式 {spec.pattern}",
            )
        case Err.DUPLICATE:
            return f"{f}: {q} duplicates row {first_row}", f"{z}：{q} 与第 {first_row} 行重复"
        case Err.OK:
            raise ValueError("no message for a valid cell")


# ---------------------------------------------------------------------------------------------
# Frames


def empty_frame(rt: RecordType) -> pd.DataFrame:
    """A typed frame of the type with no rows."""
    return pd.DataFrame({name: pd.Series([], dtype=dtype_of(spec)) for name, spec in rt.fields.items()})


def dtype_of(spec: FieldSpec) -> ExtensionDtype:
    """The pandas dtype a field has in typed frames."""
    dtypes: dict[FieldType, ExtensionDtype] = {
        FieldType.STRING: pd.StringDtype(na_value=np.nan),  # pandas' default "str"
        FieldType.INT: pd.Int64Dtype(),
        FieldType.DECIMAL: pd.Int64Dtype(),
        FieldType.BOOL: pd.BooleanDtype(),
        FieldType.TIMESTAMP: TS_DTYPE,
        FieldType.DATE: TS_DTYPE,
    }
    return dtypes[spec.type]


def _column_problems(rt: RecordType, raw: pd.DataFrame, source: str) -> tuple[list[Problem], list[int]]:
    """Problems with the header, and the positions of columns to drop (blank ones without data)."""
    problems: list[Problem] = []
    drop: list[int] = []
    names = [("" if c is None else str(c)).strip() for c in raw.columns]
    fields = ", ".join(rt.fields)
    seen: dict[str, int] = {}
    for pos, name in enumerate(names):
        seen[name] = seen.get(name, 0) + 1
        if name == "":
            if _as_text(raw.iloc[:, pos])[0].notna().any():
                problems.append(
                    Problem(
                        source,
                        f"column {pos + 1} has values but no name",
                        f"第 {pos + 1} 列有数据但没有列名",
                    )
                )
            else:
                drop.append(pos)
        elif name not in rt.fields and seen[name] == 1:
            problems.append(
                Problem(
                    source,
                    f"unknown column '{name}'; {rt.name} has columns: {fields}",
                    f"未知列 '{name}'；{rt.label.zh}的列为：{fields}",
                    key=name,
                )
            )
    for name, count in seen.items():
        if name and count > 1:
            problems.append(
                Problem(
                    source,
                    f"column '{name}' appears {count} times",
                    f"列 '{name}' 出现了 {count} 次",
                    key=name,
                )
            )
    if len(raw.columns) == 0 and len(raw) == 0:
        return problems, drop  # an empty JSON list: no records, nothing to name
    present = set(names)
    for spec in rt.fields.values():
        if spec.required and spec.name not in present:
            problems.append(
                Problem(
                    source,
                    f"missing required column '{spec.name}' ({spec.label.en})",
                    f"缺少必填列 '{spec.name}'（{spec.label.zh}）",
                    key=spec.name,
                )
            )
    return problems, drop


def validate_frame(
    rt: RecordType, raw: pd.DataFrame, *, source: str, tz: ZoneInfo, first_row: int = 1
) -> Validated:
    """Validate `raw` (text or typed cells) as records of `rt`; see the module docstring.

    Rows are numbered from `first_row` (1-based, header excluded); the typed frame's index is the
    0-based row position, i.e. row number - 1, so chunks keep their place in the file.
    """
    total = len(raw)
    raw = raw.reset_index(drop=True)
    all_rows = list(range(first_row, first_row + total))
    col_problems, drop = _column_problems(rt, raw, source)
    # With a bad header the file is rejected whole, but the cells of the columns that are known
    # are still checked, so the user sees every problem of the file at once.
    names = [("" if c is None else str(c)).strip() for c in raw.columns]
    keep = [
        pos
        for pos, name in enumerate(names)
        if pos not in drop and (not col_problems or (name in rt.fields and names.count(name) == 1))
    ]
    if keep != list(range(len(names))) or list(raw.columns) != names:
        raw = raw.iloc[:, keep]
        raw.columns = pd.Index([names[pos] for pos in keep])

    columns: dict[str, pd.Series[Any]] = {}
    failures: list[tuple[FieldSpec, pd.Series[Any], _Parsed]] = []
    dup_first: dict[int, int] = {}
    bad_row = np.zeros(total, dtype=np.bool_)
    for name, spec in rt.fields.items():
        if name not in raw.columns:
            columns[name] = pd.Series([None] * total, dtype=dtype_of(spec))
            continue
        parsed = (_parse_small(spec, raw[name], tz) if total <= SMALL_FRAME else None) or _parse(
            spec, raw[name], tz
        )
        if spec.required:
            _first_error(parsed.codes, parsed.missing, Err.MISSING)
        _check_constraints(spec, parsed)
        if name == "id":
            dup_first = _duplicates(parsed.values.mask(parsed.codes != Err.OK), parsed.codes)
        columns[name] = parsed.values
        if parsed.codes.any():
            bad_row |= parsed.codes != Err.OK
            failures.append((spec, raw[name].reset_index(drop=True), parsed))

    problems: list[tuple[int, int, Problem]] = []
    order = {name: i for i, name in enumerate(rt.fields)}
    for spec, raw_col, parsed in failures:
        for pos in np.flatnonzero(parsed.codes):
            err = Err(int(parsed.codes[pos]))
            first = dup_first.get(int(pos))
            en, zh = _message(
                err, spec, raw_col.iat[int(pos)], tz, None if first is None else first + first_row
            )
            row = int(pos) + first_row
            problems.append((row, order[spec.name], Problem(source, en, zh, row=row, key=spec.name)))
    problems.sort(key=lambda t: (t[0], t[1]))

    valid = np.flatnonzero(~bad_row)
    # copy=False: the parsed columns are this frame's own; copying them would double the peak.
    # Arrays, not Series: every column is positional already, so there is no index to align.
    frame = pd.DataFrame({name: column.array for name, column in columns.items()}, copy=False)
    retype = {name: dtype_of(spec) for name, spec in rt.fields.items() if frame[name].dtype != dtype_of(spec)}
    frame = frame.astype(retype) if retype else frame
    if len(valid) < total:
        frame = frame.iloc[valid]
    frame.index = pd.Index(valid + (first_row - 1))
    if col_problems:
        return Validated(empty_frame(rt), col_problems + [p for _, _, p in problems], all_rows, total)
    rejected = (np.flatnonzero(bad_row) + first_row).tolist()
    return Validated(frame, [p for _, _, p in problems], rejected, total)


# ---------------------------------------------------------------------------------------------
# Canonical payloads


def _decimal_texts(values: pd.Series[Any]) -> pd.Series[Any]:
    cents = values.astype("Int64")
    magnitude = cents.abs()
    negative = (cents < 0).fillna(False).to_numpy(dtype=np.bool_)
    sign: pd.Series[str] = pd.Series(np.where(negative, "-", ""), index=values.index, dtype="str")
    whole = (magnitude // DECIMAL_SCALE).astype("str")
    fen = (magnitude % DECIMAL_SCALE).astype("str").str.pad(2, fillchar="0")
    texts: pd.Series[str] = sign + whole + "." + fen
    return texts.mask(cents.isna())


def _offset_text(seconds: int) -> str:
    sign, rest = ("-" if seconds < 0 else "+"), abs(seconds)
    text = f"{sign}{rest // 3600:02d}:{rest // 60 % 60:02d}"
    return f"{text}:{rest % 60:02d}" if rest % 60 else text  # LMT offsets before 1901 have seconds


def _wall_clock(
    values: pd.Series[Any], tz: ZoneInfo
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], Mask]:
    """Wall-clock nanoseconds in `tz`, the UTC offset in seconds, and where values are missing."""
    utc = pd.Series(values.array).astype(TS_DTYPE)
    missing = utc.isna().to_numpy()
    utc_ns = utc.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]").view(np.int64)
    wall_ns = utc.dt.tz_convert(tz).dt.tz_localize(None).to_numpy(dtype="datetime64[ns]").view(np.int64)
    wall_ns = np.where(missing, 0, wall_ns)
    offset_s = np.where(missing, 0, wall_ns - np.where(missing, 0, utc_ns)) // 10**9
    return wall_ns, offset_s, missing


def _timestamp_texts(values: pd.Series[Any], tz: ZoneInfo) -> pd.Series[Any]:
    # numpy's datetime_as_string and a per-offset lookup: strftime would be ten times slower.
    wall_ns, offset_s, missing = _wall_clock(values, tz)
    frac_ns = np.mod(wall_ns, 10**9)  # floor modulo: right for times before 1970 too
    seconds = (wall_ns - frac_ns).view("datetime64[ns]").astype("datetime64[s]")
    base = pd.Series(np.datetime_as_string(seconds, unit="s"), dtype="str")
    frac = pd.Series("", index=base.index, dtype="str")
    if (frac_ns > 0).any():
        digits = pd.Series(frac_ns, dtype="int64").astype("str").str.pad(9, fillchar="0")
        frac = ("." + digits.str.rstrip("0")).where(frac_ns > 0, "")
    offsets = {int(o): _offset_text(int(o)) for o in np.unique(offset_s)}
    offset = pd.Series(offset_s).map(offsets).astype("str")
    texts: pd.Series[str] = base + frac + offset
    return texts.mask(missing)


def _date_texts(values: pd.Series[Any], tz: ZoneInfo) -> pd.Series[Any]:
    wall_ns, _, missing = _wall_clock(values, tz)
    days = np.datetime_as_string(wall_ns.view("datetime64[ns]").astype("datetime64[D]"), unit="D")
    return pd.Series(days, dtype="str").mask(missing)


def _payload_column(spec: FieldSpec, values: pd.Series[Any], tz: ZoneInfo) -> list[Any]:
    match spec.type:
        case FieldType.STRING:
            column: pd.Series[Any] = values.astype("str")
        case FieldType.INT:
            column = values.astype("Int64")
        case FieldType.DECIMAL:
            column = _decimal_texts(values)
        case FieldType.BOOL:
            column = values.astype("boolean")
        case FieldType.TIMESTAMP:
            column = _timestamp_texts(values, tz)
        case FieldType.DATE:
            column = _date_texts(values, tz)
    missing = column.isna().to_numpy()
    items = column.tolist()
    return [None if m else v for v, m in zip(items, missing, strict=True)]


def to_payloads(rt: RecordType, frame: pd.DataFrame, tz: ZoneInfo) -> list[dict[str, Any]]:
    """Canonical JSON-ready dicts, one per row, with every field of the type (None when missing)."""
    names = list(rt.fields)
    columns = [
        _payload_column(spec, frame[name], tz) if name in frame.columns else [None] * len(frame)
        for name, spec in rt.fields.items()
    ]
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def content_hash(payload: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of a payload; stable across runs and key order."""
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def from_payloads(rt: RecordType, payloads: Iterable[dict[str, Any]], tz: ZoneInfo) -> pd.DataFrame:
    """Typed frame from payloads (inverse of `to_payloads`); types are checked, business constraints not.

    Raises InputError when a payload has an unknown key or a value of the wrong type.
    """
    rows = list(payloads)
    source = f"{rt.name} payloads"
    problems: list[Problem] = []
    unknown = sorted({k for p in rows for k in p} - set(rt.fields))
    problems.extend(Problem(source, f"unknown field '{k}'", f"未知字段 '{k}'", key=k) for k in unknown)
    columns: dict[str, pd.Series[Any]] = {}
    for name, spec in rt.fields.items():
        raw = pd.Series([p.get(name) for p in rows], dtype=object)
        parsed = _parse(spec, raw, tz)
        for pos in np.flatnonzero(parsed.codes):
            en, zh = _message(Err(int(parsed.codes[pos])), spec, raw.iat[int(pos)], tz, None)
            problems.append(Problem(source, en, zh, row=int(pos) + 1, key=name))
        columns[name] = parsed.values
    if problems:
        raise InputError(source, problems)
    if not rows:
        return empty_frame(rt)
    return pd.DataFrame(columns).astype({name: dtype_of(spec) for name, spec in rt.fields.items()})
