"""The small-frame path of validate_frame (cell by cell, for API submits) gives exactly what the
vectorised path gives: the same typed frame, the same problems in the same order.

Hypothesis draws records of every record type whose cells mix valid values, near misses and
junk, as text (CSV, dtype str) and as JSON-like native values (object dtype), in a zone without
and a zone with daylight saving; each batch is validated by both paths and compared."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rules.validate as validate_module
from rules.problems import Problems
from rules.records import FieldSpec, FieldType, load_record_model
from rules.validate import SMALL_FRAME, Validated, validate_frame

MODEL = load_record_model(Path(__file__).parents[1] / "policies" / "record_types.yaml", Problems())
ZONES = [ZoneInfo("Asia/Shanghai"), ZoneInfo("America/New_York")]

_blank = st.sampled_from(["", " ", "\t", "\u3000", "\xa0"])
_junk = st.one_of(
    st.text(max_size=6),
    st.sampled_from(["abc", "NaN", "null", "-", ".", "1e3", "１２", "٣", "0x10", "\ud800x", "İ"]),
)


def _digits(min_size: int = 1, max_size: int = 4) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=min_size, max_size=max_size)


_int_text = st.one_of(
    st.integers(-(10**4), 10**4).map(str),
    st.builds(
        lambda s, d, z: f"{s}{d}{z}",
        st.sampled_from(["", "+", "-", " -"]),
        _digits(),
        st.sampled_from(["", ".", ".0", ".00", ".5"]),
    ),
    st.sampled_from(["9" * 18, "9" * 19, "-" + "9" * 19, "007", "+-1"]),
)
_decimal_text = st.one_of(
    st.builds(
        lambda sign, cur, whole, frac: f"{sign}{cur}{whole}{frac}",
        st.sampled_from(["", "-", "+", "- "]),
        st.sampled_from(["", "¥", "￥", "¥ "]),
        st.one_of(_digits(0, 5), st.sampled_from(["1,234", "12,34", "1,234,567", "0001"])),
        st.sampled_from(["", ".", ".5", ".50", ".500", ".505", ".1234", ".00000"]),
    ),
    st.sampled_from(["¥-12.50", "9" * 15 + ".99", "9" * 16, ".5", "1 234"]),
)
_bool_text = st.sampled_from(
    [
        "true",
        "True",
        "TRUE",
        "t",
        "yes",
        "Y",
        "1",
        "是",
        "false",
        "F",
        "no",
        "n",
        "0",
        "否",
        "2",
        "maybe",
        "İ",
        "ｙ",
    ]
)


def _two(lo: int, hi: int) -> st.SearchStrategy[str]:
    return st.integers(lo, hi).map(lambda v: f"{v:02d}")


_year = st.one_of(
    st.integers(2020, 2030), st.sampled_from([1500, 1677, 1678, 1899, 1900, 2037, 2038, 2261, 2262, 9999, 0])
)
_day_text = st.builds(lambda y, m, d: f"{y:04d}-{m}-{d}", _year, _two(0, 13), _two(0, 32))
_time_text = st.builds(
    lambda h, m, s, f: f"{h}:{m}{s}{f}",
    st.one_of(_two(0, 23), st.sampled_from(["24", "25"])),
    _two(0, 60),
    st.one_of(st.just(""), _two(0, 61).map(lambda v: ":" + v)),
    st.sampled_from(["", ".5", ".123456", ".1234567", ".123456789", ".1234567890"]),
)
_offset = st.sampled_from(
    [
        "",
        "",
        "Z",
        "+08:00",
        "-05:00",
        "+05:30",
        "-00:00",
        "+0800",
        "+08",
        "+08:05:43",
        "+15:00",
        "+08:60",
        "z",
    ]
)
_timestamp_text = st.one_of(
    st.builds(
        lambda d, sep, t, o: f"{d}{sep}{t}{o}",
        _day_text,
        st.sampled_from(["T", " ", "t", "_"]),
        _time_text,
        _offset,
    ),
    _day_text,
    # New York's daylight-saving changes: 02:30 on 2026-03-08 does not exist, 01:30 on 2026-11-01 twice.
    st.sampled_from(["2026-03-08T02:30:00", "2026-11-01T01:30:00", "2026-11-01 01:30", "2026-03-08"]),
)
_date_text = st.one_of(
    _day_text,
    st.builds(
        lambda d, t: f"{d}{t}",
        _day_text,
        st.sampled_from(["T00:00", " 00:00:00", " 00:00:00.000", "T00:00:01", "T09:00"]),
    ),
)
_TEXT = {
    FieldType.STRING: st.one_of(
        st.text(max_size=5), st.sampled_from(["travel", "office", "2026-Q1", "2026-13", "１２３４-Y"])
    ),
    FieldType.INT: _int_text,
    FieldType.DECIMAL: _decimal_text,
    FieldType.BOOL: _bool_text,
    FieldType.TIMESTAMP: _timestamp_text,
    FieldType.DATE: _date_text,
}
_native = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.1, 12.345, 1234.5, 2.0, -0.0]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
    st.datetimes(min_value=dt.datetime(1890, 1, 1), max_value=dt.datetime(2050, 1, 1)),
    st.dates(min_value=dt.date(1890, 1, 1), max_value=dt.date(2050, 1, 1)),
)


def _padded(text: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.builds(
        lambda a, t, b: a + t + b,
        st.sampled_from(["", "", " ", "\u3000"]),
        text,
        st.sampled_from(["", "", " ", "\n"]),
    )


def _cell(spec: FieldSpec, native: bool) -> st.SearchStrategy[Any]:
    text = _TEXT[spec.type]
    if spec.values:
        text = st.one_of(text, st.sampled_from(spec.values))
    options = [_padded(text), text, _blank, _junk, st.none()]
    if spec.name == "id":
        options.append(st.sampled_from(["A1", "A2", " A1 "]))  # duplicates
    if native:
        options.append(_native)
    return st.one_of(*options)


@st.composite
def batches(draw: st.DrawFn) -> tuple[str, list[dict[str, Any]], bool, ZoneInfo]:
    type_name = draw(st.sampled_from(MODEL.names))
    native = draw(st.booleans())
    fields = list(MODEL[type_name].fields.values())
    rows = draw(
        st.lists(st.fixed_dictionaries({f.name: _cell(f, native) for f in fields}), min_size=0, max_size=6)
    )
    return type_name, rows, native, draw(st.sampled_from(ZONES))


def _raw(rows: list[dict[str, Any]], native: bool, type_name: str) -> pd.DataFrame:
    names = list(MODEL[type_name].fields)
    if native:  # as the API builds it from JSON: object columns, values as sent
        return pd.DataFrame({n: pd.Series([r[n] for r in rows], dtype=object) for n in names})

    # as the CSV reader gives it: text columns; a lone surrogate cannot be in a decoded file
    def text(value: Any) -> str | None:
        return None if value is None else str(value).encode("utf-8", "replace").decode("utf-8")

    return pd.DataFrame({n: pd.Series([text(r[n]) for r in rows], dtype="str") for n in names})


def _both(
    type_name: str, raw: pd.DataFrame, tz: ZoneInfo
) -> tuple[Validated | Exception, Validated | Exception]:
    def run() -> Validated | Exception:
        try:
            return validate_frame(MODEL[type_name], raw, source="x.csv", tz=tz, first_row=3)
        except Exception as exc:  # a failure must be the same failure on both paths
            return exc

    small = run()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(validate_module, "SMALL_FRAME", -1)
        vectorised = run()
    return small, vectorised


def _assert_same(small: Validated | Exception, vectorised: Validated | Exception) -> None:
    if isinstance(vectorised, Exception) or isinstance(small, Exception):
        assert type(small) is type(vectorised)
        assert str(small) == str(vectorised)
        return
    pd.testing.assert_frame_equal(small.frame, vectorised.frame, check_exact=True)
    assert small.problems == vectorised.problems
    assert small.rejected_rows == vectorised.rejected_rows
    assert small.total_rows == vectorised.total_rows


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches())
def test_small_frames_validate_exactly_as_the_vectorised_path(
    batch: tuple[str, list[dict[str, Any]], bool, ZoneInfo],
) -> None:
    type_name, rows, native, tz = batch
    _assert_same(*_both(type_name, _raw(rows, native, type_name), tz))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("submitted_at", "2026-03-08T02:30:00"),  # skipped in New York
        ("submitted_at", "2026-11-01T01:30:00"),  # repeated in New York
        ("submitted_at", "2026-02-30T09:00:00"),
        ("submitted_at", "2026-10-01T09:00:00.123456789+05:30"),
        ("submitted_at", "2026-10-01T09:00:00+08:05:43"),  # not sure: goes the vectorised way
        ("submitted_at", "1500-10-01T09:00:00"),  # not sure: goes the vectorised way
        ("amount", "¥-1,234.5"),
        ("amount", "1.005"),
        ("invoice_count", "9" * 19),
        ("invoice_count", [1]),
        ("category", "  travel\u3000"),
    ],
)
def test_cases_the_small_path_must_get_right(field: str, value: Any) -> None:
    row: dict[str, Any] = {
        "id": "EC1",
        "dept": "FIN",
        "applicant": "张三",
        "category": "travel",
        "amount": "12.50",
        "invoice_no": None,
        "invoice_count": "1",
        "submitted_at": "2026-10-01T09:00:00",
        "paid_at": None,
    }
    row[field] = value
    for tz in ZONES:
        small, vectorised = _both(
            "expense_claim", _raw([row, {**row, "id": "EC2"}], True, "expense_claim"), tz
        )
        _assert_same(small, vectorised)


def test_the_small_path_is_the_one_taken_for_small_frames() -> None:
    spec = MODEL["expense_claim"].fields["amount"]
    raw = pd.Series(["1,234.50"] * SMALL_FRAME, dtype="str")
    parsed = validate_module._parse_small(spec, raw, ZONES[0])
    assert parsed is not None
    assert parsed.values.tolist() == [123450] * SMALL_FRAME
    # an offset with seconds is one it leaves to pandas
    assert (
        validate_module._parse_small(
            MODEL["expense_claim"].fields["submitted_at"],
            pd.Series(["2026-10-01T09:00:00+08:05:43"], dtype="str"),
            ZONES[0],
        )
        is None
    )
