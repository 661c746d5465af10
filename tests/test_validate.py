"""validate_frame: every bad cell is reported, with the exact message; valid rows come out typed."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from rules.problems import InputError, Problems
from rules.records import load_record_model
from rules.validate import (
    Validated,
    content_hash,
    empty_frame,
    from_payloads,
    to_payloads,
    validate_frame,
)

MODEL = load_record_model(Path(__file__).parents[1] / "policies" / "record_types.yaml", Problems())
TZ = ZoneInfo("Asia/Shanghai")
UTC = dt.UTC

CLAIM = {
    "id": "EC001",
    "dept": "fin",
    "applicant": "张三",
    "category": "travel",
    "amount": "1234.50",
    "invoice_no": "INV-1",
    "invoice_count": "2",
    "submitted_at": "2026-10-01T09:00:00",
    "paid_at": "",
}


def claim(**changes: Any) -> dict[str, Any]:
    return {**CLAIM, **changes}


def run(type_name: str, rows: list[dict[str, Any]], *, text: bool = True, **kwargs: Any) -> Validated:
    raw = pd.DataFrame(rows, dtype="str") if text else pd.DataFrame(rows)
    return validate_frame(MODEL[type_name], raw, source=f"{type_name}.csv", tz=TZ, **kwargs)


def found(v: Validated) -> list[tuple[int | None, str | None, str, str]]:
    return [(p.row, p.key, p.message_en, p.message_zh) for p in v.problems]


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text).tz_convert("UTC")


# --- the typed frame ---------------------------------------------------------------------------


def test_valid_rows_become_a_typed_frame_in_declared_order() -> None:
    v = run("expense_claim", [claim(), claim(id="EC002", amount="0.1", invoice_count="3.0")])
    assert v.problems == []
    assert v.rejected_rows == []
    assert v.total_rows == 2
    assert list(v.frame.columns) == list(MODEL["expense_claim"].fields)
    assert [str(t) for t in v.frame.dtypes] == [
        "str", "str", "str", "str", "Int64", "str", "Int64", "datetime64[ns, UTC]", "datetime64[ns, UTC]",
    ]  # fmt: skip
    assert v.frame["amount"].tolist() == [123450, 10]
    assert v.frame["invoice_count"].tolist() == [2, 3]
    assert v.frame["submitted_at"].iloc[0] == ts("2026-10-01T01:00:00Z")
    assert v.frame["paid_at"].isna().all()
    assert list(v.frame.index) == [0, 1]


def test_missing_optional_columns_are_added_as_all_na() -> None:
    row = {k: v for k, v in CLAIM.items() if k not in ("invoice_no", "paid_at")}
    v = run("expense_claim", [row])
    assert v.problems == []
    assert list(v.frame.columns) == list(MODEL["expense_claim"].fields)
    assert v.frame["invoice_no"].isna().all()
    assert str(v.frame["paid_at"].dtype) == "datetime64[ns, UTC]"


def test_invalid_rows_are_dropped_and_the_index_keeps_original_positions() -> None:
    v = run("expense_claim", [claim(id="A"), claim(id="B", amount="x"), claim(id="C")])
    assert v.rejected_rows == [2]
    assert list(v.frame.index) == [0, 2]
    assert v.frame["id"].tolist() == ["A", "C"]


def test_first_row_numbers_rows_of_a_chunk() -> None:
    v = run("expense_claim", [claim(id="A"), claim(id="B", amount="x")], first_row=101)
    assert v.rejected_rows == [102]
    assert [p.row for p in v.problems] == [102]
    assert list(v.frame.index) == [100]


def test_an_empty_record_list_has_no_problems() -> None:
    v = validate_frame(MODEL["expense_claim"], pd.DataFrame(), source="expense_claim.json", tz=TZ)
    assert v.problems == []
    assert v.total_rows == 0
    assert v.frame.equals(empty_frame(MODEL["expense_claim"]))


# --- column problems ---------------------------------------------------------------------------


def test_unknown_and_missing_required_columns_reject_the_whole_file() -> None:
    raw = pd.DataFrame({"id": ["A", "B"], "amount": ["1", "2"], "colour": ["x", "y"], "备注": ["", ""]})
    v = validate_frame(MODEL["expense_claim"], raw, source="expense_claim.csv", tz=TZ)
    columns = "id, dept, applicant, category, amount, invoice_no, invoice_count, submitted_at, paid_at"
    assert found(v) == [
        (
            None,
            "colour",
            f"unknown column 'colour'; expense_claim has columns: {columns}",
            f"未知列 'colour'；费用报销单的列为：{columns}",
        ),
        (
            None,
            "备注",
            f"unknown column '备注'; expense_claim has columns: {columns}",
            f"未知列 '备注'；费用报销单的列为：{columns}",
        ),
        (None, "dept", "missing required column 'dept' (Department)", "缺少必填列 'dept'（部门）"),
        (
            None,
            "applicant",
            "missing required column 'applicant' (Applicant)",
            "缺少必填列 'applicant'（申请人）",
        ),
        (
            None,
            "category",
            "missing required column 'category' (Category)",
            "缺少必填列 'category'（费用类别）",
        ),
        (
            None,
            "invoice_count",
            "missing required column 'invoice_count' (Number of invoices)",
            "缺少必填列 'invoice_count'（发票张数）",
        ),
        (
            None,
            "submitted_at",
            "missing required column 'submitted_at' (Submitted at)",
            "缺少必填列 'submitted_at'（提交时间）",
        ),
    ]
    assert v.rejected_rows == [1, 2]
    assert v.total_rows == 2
    assert v.frame.empty
    assert list(v.frame.columns) == list(MODEL["expense_claim"].fields)
    assert all(p.file == "expense_claim.csv" for p in v.problems)


def test_duplicate_columns_and_unnamed_columns_with_data() -> None:
    raw = pd.DataFrame(
        [["D1", "Finance", "x", "Wang", "", "v"]], columns=["id", "name", "name", "head", "", ""]
    )
    v = validate_frame(MODEL["department"], raw, source="department.csv", tz=TZ)
    assert [(p.key, p.message_en) for p in v.problems] == [
        (None, "column 6 has values but no name"),
        ("name", "column 'name' appears 2 times"),
    ]
    assert v.problems[1].message_zh == "列 'name' 出现了 2 次"
    assert v.rejected_rows == [1]


def test_header_names_are_stripped_and_blank_unnamed_columns_ignored() -> None:
    raw = pd.DataFrame([["D1", "财务部", "王五", ""]], columns=[" id", "name ", "head", ""])
    v = validate_frame(MODEL["department"], raw, source="department.csv", tz=TZ)
    assert v.problems == []
    assert v.frame["name"].tolist() == ["财务部"]


# --- value problems: every bad cell, one problem per (row, field) --------------------------------


def test_every_bad_cell_is_reported_not_just_the_first() -> None:
    rows = [
        claim(id="A", amount="12.345", invoice_count="two", category="food"),
        claim(id="B"),
        claim(id="C", submitted_at="yesterday", dept=""),
    ]
    v = run("expense_claim", rows)
    assert found(v) == [
        (
            1,
            "category",
            "category: 'food' is not one of: travel, office, entertainment, training, transport, other",
            "费用类别：'food' 不是允许的值之一：travel, office, entertainment, training, transport, other",
        ),
        (
            1,
            "amount",
            "amount: '12.345' has more than 2 decimal places",
            "金额(元)：'12.345' 的小数位超过 2 位",
        ),
        (1, "invoice_count", "invoice_count: 'two' is not an integer", "发票张数：'two' 不是整数"),
        (3, "dept", "dept: required value is empty", "部门：必填值为空"),
        (
            3,
            "submitted_at",
            "submitted_at: 'yesterday' is not an ISO 8601 date/time "
            "(e.g. 2026-10-01T09:00:00, 2026-10-01T09:00:00+08:00 or 2026-10-01)",
            "提交时间：'yesterday' 不是 ISO 8601 日期时间"
            "（例如 2026-10-01T09:00:00、2026-10-01T09:00:00+08:00 或 2026-10-01）",
        ),
    ]
    assert v.rejected_rows == [1, 3]
    assert v.frame["id"].tolist() == ["B"]


@pytest.mark.parametrize("blank", ["", "   ", "\u3000", None])
def test_required_value_empty(blank: str | None) -> None:
    v = run("expense_claim", [claim(applicant=blank)])
    assert found(v) == [(1, "applicant", "applicant: required value is empty", "申请人：必填值为空")]


def test_empty_optional_value_is_na() -> None:
    v = run("expense_claim", [claim(invoice_no="  ", paid_at=" ")])
    assert v.problems == []
    assert pd.isna(v.frame["invoice_no"].iloc[0])
    assert pd.isna(v.frame["paid_at"].iloc[0])


BAD_VALUES = [
    # (type, field, value, en, zh)
    (
        "expense_claim",
        "invoice_count",
        "3.5",
        "invoice_count: '3.5' is not an integer",
        "发票张数：'3.5' 不是整数",
    ),
    (
        "expense_claim",
        "invoice_count",
        "1e3",
        "invoice_count: '1e3' is not an integer",
        "发票张数：'1e3' 不是整数",
    ),
    (
        "expense_claim",
        "invoice_count",
        "１２",
        "invoice_count: '１２' is not an integer",
        "发票张数：'１２' 不是整数",
    ),
    (
        "expense_claim",
        "invoice_count",
        "12345678901234567890",
        "invoice_count: '12345678901234567890' is too large",
        "发票张数：'12345678901234567890' 数值过大",
    ),
    (
        "expense_claim",
        "invoice_count",
        "-1",
        "invoice_count: '-1' is below the minimum 0",
        "发票张数：'-1' 小于最小值 0",
    ),
    (
        "expense_claim",
        "amount",
        "abc",
        "amount: 'abc' is not a number (e.g. 1234.50, 1,234.50 or ¥1234.50)",
        "金额(元)：'abc' 不是有效数字（例如 1234.50、1,234.50 或 ¥1234.50）",
    ),
    (
        "expense_claim",
        "amount",
        "1,23",
        "amount: '1,23' is not a number (e.g. 1234.50, 1,234.50 or ¥1234.50)",
        "金额(元)：'1,23' 不是有效数字（例如 1234.50、1,234.50 或 ¥1234.50）",
    ),
    (
        "expense_claim",
        "amount",
        "1.2.3",
        "amount: '1.2.3' is not a number (e.g. 1234.50, 1,234.50 or ¥1234.50)",
        "金额(元)：'1.2.3' 不是有效数字（例如 1234.50、1,234.50 或 ¥1234.50）",
    ),
    (
        "expense_claim",
        "amount",
        "12.345",
        "amount: '12.345' has more than 2 decimal places",
        "金额(元)：'12.345' 的小数位超过 2 位",
    ),
    (
        "expense_claim",
        "amount",
        "0.001",
        "amount: '0.001' has more than 2 decimal places",
        "金额(元)：'0.001' 的小数位超过 2 位",
    ),
    (
        "expense_claim",
        "amount",
        "1234567890123456",
        "amount: '1234567890123456' is too large",
        "金额(元)：'1234567890123456' 数值过大",
    ),
    (
        "expense_claim",
        "amount",
        "-0.01",
        "amount: '-0.01' is below the minimum 0",
        "金额(元)：'-0.01' 小于最小值 0",
    ),
    (
        "expense_claim",
        "amount",
        "¥-5",
        "amount: '¥-5' is below the minimum 0",
        "金额(元)：'¥-5' 小于最小值 0",
    ),
    (
        "expense_claim",
        "category",
        "Travel",
        "category: 'Travel' is not one of: travel, office, entertainment, training, transport, other",
        "费用类别：'Travel' 不是允许的值之一：travel, office, entertainment, training, transport, other",
    ),
    (
        "expense_claim",
        "submitted_at",
        "2026/10/01 09:00",
        "submitted_at: '2026/10/01 09:00' is not an ISO 8601 date/time "
        "(e.g. 2026-10-01T09:00:00, 2026-10-01T09:00:00+08:00 or 2026-10-01)",
        "提交时间：'2026/10/01 09:00' 不是 ISO 8601 日期时间"
        "（例如 2026-10-01T09:00:00、2026-10-01T09:00:00+08:00 或 2026-10-01）",
    ),
    (
        "expense_claim",
        "submitted_at",
        "2026-02-30T09:00:00",
        "submitted_at: '2026-02-30T09:00:00' is not a valid calendar date/time",
        "提交时间：'2026-02-30T09:00:00' 不是有效的日期时间",
    ),
    (
        "expense_claim",
        "submitted_at",
        "2026-10-01T25:00:00+08:00",
        "submitted_at: '2026-10-01T25:00:00+08:00' is not a valid calendar date/time",
        "提交时间：'2026-10-01T25:00:00+08:00' 不是有效的日期时间",
    ),
    (
        "expense_claim",
        "submitted_at",
        "3000-01-01",
        "submitted_at: '3000-01-01' is outside the supported years 1678-2261",
        "提交时间：'3000-01-01' 超出支持的年份范围 1678-2261",
    ),
    (
        "supplier",
        "qualified",
        "maybe",
        "qualified: 'maybe' is not a yes/no value (true/false, yes/no, y/n, t/f, 1/0, 是/否)",
        "合格供应商：'maybe' 不是是/否值（true/false、yes/no、y/n、t/f、1/0、是/否）",
    ),
    (
        "supplier",
        "qualified",
        "2",
        "qualified: '2' is not a yes/no value (true/false, yes/no, y/n, t/f, 1/0, 是/否)",
        "合格供应商：'2' 不是是/否值（true/false、yes/no、y/n、t/f、1/0、是/否）",
    ),
    (
        "supplier",
        "qualified_from",
        "2026-10-01T09:30:00",
        "qualified_from: '2026-10-01T09:30:00' is not a date (YYYY-MM-DD)",
        "资格起始日：'2026-10-01T09:30:00' 不是日期（YYYY-MM-DD）",
    ),
    (
        "supplier",
        "qualified_from",
        "01/10/2026",
        "qualified_from: '01/10/2026' is not a date (YYYY-MM-DD)",
        "资格起始日：'01/10/2026' 不是日期（YYYY-MM-DD）",
    ),
    (
        "supplier",
        "qualified_until",
        "2026-13-01",
        "qualified_until: '2026-13-01' is not a valid calendar date/time",
        "资格截止日：'2026-13-01' 不是有效的日期时间",
    ),
    (
        "supplier",
        "qualified_until",
        "9999-12-31",
        "qualified_until: '9999-12-31' is outside the supported years 1678-2261",
        "资格截止日：'9999-12-31' 超出支持的年份范围 1678-2261",
    ),
    (
        "complaint",
        "satisfaction",
        "0",
        "satisfaction: '0' is below the minimum 1",
        "满意度(1-5)：'0' 小于最小值 1",
    ),
    (
        "complaint",
        "satisfaction",
        "6",
        "satisfaction: '6' is above the maximum 5",
        "满意度(1-5)：'6' 大于最大值 5",
    ),
    ("budget", "year", "1999", "year: '1999' is below the minimum 2000", "年度：'1999' 小于最小值 2000"),
    (
        "performance_review",
        "period",
        "2026Q1",
        r"period: '2026Q1' does not match the required format ^\d{4}-(Q[1-4]|H[12]|\d{2}|Y)$",
        r"考核期间：'2026Q1' 不符合要求的格式 ^\d{4}-(Q[1-4]|H[12]|\d{2}|Y)$",
    ),
    (
        "performance_review",
        "period",
        "2026-Q5",
        r"period: '2026-Q5' does not match the required format ^\d{4}-(Q[1-4]|H[12]|\d{2}|Y)$",
        r"考核期间：'2026-Q5' 不符合要求的格式 ^\d{4}-(Q[1-4]|H[12]|\d{2}|Y)$",
    ),
]

VALID_ROWS: dict[str, dict[str, Any]] = {
    "expense_claim": CLAIM,
    "supplier": {"id": "S1", "name": "供应商甲", "qualified": "是", "qualified_from": "2026-01-01"},
    "complaint": {
        "id": "C1",
        "dept": "cs",
        "customer": "客户甲",
        "channel": "phone",
        "received_at": "2026-10-01T09:00:00",
        "satisfaction": "4",
    },
    "budget": {"id": "B1", "dept": "fin", "year": "2026", "amount": "1000000"},
    "performance_review": {
        "id": "P1",
        "dept": "hr",
        "employee": "李四",
        "period": "2026-Q1",
        "grade": "good",
        "reviewed_at": "2026-04-01",
    },
}


@pytest.mark.parametrize("valid_type", sorted(VALID_ROWS))
def test_the_valid_rows_used_below_are_valid(valid_type: str) -> None:
    assert run(valid_type, [VALID_ROWS[valid_type]]).problems == []


@pytest.mark.parametrize(("type_name", "field", "value", "en", "zh"), BAD_VALUES)
def test_bad_value(type_name: str, field: str, value: str, en: str, zh: str) -> None:
    v = run(type_name, [VALID_ROWS[type_name], {**VALID_ROWS[type_name], "id": "X2", field: value}])
    assert found(v) == [(2, field, en, zh)]
    assert v.rejected_rows == [2]
    assert len(v.frame) == 1


def test_offending_values_are_quoted_truncated_to_40_characters() -> None:
    long = "x" * 50
    v = run("expense_claim", [claim(amount=long)])
    assert v.problems[0].message_en.startswith(f"amount: '{'x' * 40}…' is not a number")


def test_duplicate_ids_name_the_first_row() -> None:
    rows = [claim(id="A"), claim(id="B"), claim(id="A"), claim(id=" A "), claim(id="B")]
    v = run("expense_claim", rows)
    assert found(v) == [
        (3, "id", "id: 'A' duplicates row 1", "报销单号：'A' 与第 1 行重复"),
        (4, "id", "id: 'A' duplicates row 1", "报销单号：'A' 与第 1 行重复"),
        (5, "id", "id: 'B' duplicates row 2", "报销单号：'B' 与第 2 行重复"),
    ]
    assert v.frame["id"].tolist() == ["A", "B"]


def test_duplicate_ids_row_numbers_follow_first_row() -> None:
    v = run("expense_claim", [claim(id="A"), claim(id="A")], first_row=11)
    assert [(p.row, p.message_en) for p in v.problems] == [(12, "id: 'A' duplicates row 11")]


def test_empty_ids_are_not_duplicates_of_each_other() -> None:
    v = run("expense_claim", [claim(id=""), claim(id="")])
    assert [(p.row, p.message_en) for p in v.problems] == [
        (1, "id: required value is empty"),
        (2, "id: required value is empty"),
    ]


# --- decimals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "hundredths"),
    [
        ("0.1", 10),
        ("0.2", 20),
        ("0.30", 30),
        ("1,234.50", 123450),
        ("1,234,567.89", 123456789),
        ("¥1234.5", 123450),
        ("￥ 12", 1200),
        ("+7", 700),
        ("12.", 1200),
        (".5", 50),
        ("1.500", 150),
        ("007.07", 707),
        ("999999999999999.99", 99999999999999999),
    ],
)
def test_decimal_text_is_exact_hundredths(text: str, hundredths: int) -> None:
    v = run("expense_claim", [claim(amount=text)])
    assert v.problems == []
    assert v.frame["amount"].tolist() == [hundredths]


def test_negative_decimals_where_no_minimum() -> None:
    row = {
        "id": "IC1",
        "dept": "wh",
        "warehouse": "W1",
        "sku": "SKU1",
        "counted_at": "2026-10-01",
        "system_qty": "-¥0.05",
        "counted_qty": "0",
    }
    v = run("inventory_count", [row, {**row, "id": "IC2", "system_qty": "-1,000.10"}])
    assert v.problems == []
    assert v.frame["system_qty"].tolist() == [-5, -100010]
    payloads = to_payloads(MODEL["inventory_count"], v.frame, TZ)
    assert [p["system_qty"] for p in payloads] == ["-0.05", "-1000.10"]


def test_decimal_sums_are_exact() -> None:
    rows = [claim(id=f"E{i}", amount=a) for i, a in enumerate(["0.1", "0.2", "0.3"] * 1000)]
    v = run("expense_claim", rows)
    assert v.problems == []
    assert int(v.frame["amount"].sum()) == 60000  # 0.6 * 1000 in fen, no float drift


def test_typed_float_and_int_amounts() -> None:
    rows = [claim(id=f"E{i}") for i in range(5)]
    raw = pd.DataFrame(rows)
    raw["amount"] = [12.5, 0.1 + 0.2, 1234.56, 12.345, np.nan]
    raw["invoice_count"] = [3.0, 1.0, 2.0, 0.0, 2.5]
    v = validate_frame(MODEL["expense_claim"], raw, source="expense_claim.parquet", tz=TZ)
    assert found(v) == [
        (
            4,
            "amount",
            "amount: '12.345' has more than 2 decimal places",
            "金额(元)：'12.345' 的小数位超过 2 位",
        ),
        (5, "amount", "amount: required value is empty", "金额(元)：必填值为空"),
        (5, "invoice_count", "invoice_count: '2.5' is not an integer", "发票张数：'2.5' 不是整数"),
    ]
    assert v.frame["amount"].tolist() == [1250, 30, 123456]
    assert v.frame["invoice_count"].tolist() == [3, 1, 2]
    ints = pd.DataFrame([claim()]).assign(amount=[7], invoice_count=[np.int64(4)])
    w = validate_frame(MODEL["expense_claim"], ints, source="x", tz=TZ)
    assert w.frame["amount"].tolist() == [700]
    assert w.frame["invoice_count"].tolist() == [4]


# --- bools -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True), ("TRUE", True), ("True", True), ("t", True), ("yes", True), ("Y", True),
        ("1", True), ("是", True), ("false", False), ("F", False), ("no", False), ("n", False),
        ("0", False), ("否", False),
    ],
)  # fmt: skip
def test_bool_texts(text: str, value: bool) -> None:
    row = {**VALID_ROWS["supplier"], "qualified": text}
    v = run("supplier", [row])
    assert v.problems == []
    assert v.frame["qualified"].tolist() == [value]
    assert str(v.frame["qualified"].dtype) == "boolean"


def test_typed_bools_and_a_bool_where_an_int_is_expected() -> None:
    raw = pd.DataFrame([VALID_ROWS["supplier"], {**VALID_ROWS["supplier"], "id": "S2"}])
    raw["qualified"] = [True, False]
    v = validate_frame(MODEL["supplier"], raw, source="supplier.json", tz=TZ)
    assert v.problems == []
    assert v.frame["qualified"].tolist() == [True, False]
    obj = pd.DataFrame([claim()], dtype=object)
    obj.loc[0, "invoice_count"] = True
    w = validate_frame(MODEL["expense_claim"], obj, source="expense_claim.json", tz=TZ)
    assert [p.message_en for p in w.problems] == ["invoice_count: 'true' is not an integer"]


# --- time --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2026-10-01T09:00:00", "2026-10-01T01:00:00Z"),  # no offset: Asia/Shanghai wall time
        ("2026-10-01 09:00", "2026-10-01T01:00:00Z"),
        ("2026-10-01", "2026-09-30T16:00:00Z"),  # a date alone: midnight in the company's zone
        ("2026-10-01T09:00:00+08:00", "2026-10-01T01:00:00Z"),
        ("2026-10-01T09:00:00Z", "2026-10-01T09:00:00Z"),  # with an offset: absolute
        ("2026-10-01T09:00:00+00:00", "2026-10-01T09:00:00Z"),
        ("2026-10-01T09:00:00-05:00", "2026-10-01T14:00:00Z"),
        ("2026-10-01T09:00+0530", "2026-10-01T03:30:00Z"),
        ("2026-10-01T09:00:00.123456789", "2026-10-01T01:00:00.123456789Z"),
    ],
)
def test_timestamps_naive_are_in_the_zone_and_offsets_are_absolute(text: str, utc: str) -> None:
    v = run("expense_claim", [claim(submitted_at=text)])
    assert v.problems == []
    assert v.frame["submitted_at"].iloc[0] == ts(utc)
    assert str(v.frame["submitted_at"].dtype) == "datetime64[ns, UTC]"


def test_naive_and_offset_timestamps_mix_in_one_column() -> None:
    rows = [
        claim(id="A", submitted_at="2026-10-01T09:00:00"),
        claim(id="B", submitted_at="2026-10-01T09:00:00Z"),
    ]
    v = run("expense_claim", rows)
    assert v.frame["submitted_at"].tolist() == [ts("2026-10-01T01:00:00Z"), ts("2026-10-01T09:00:00Z")]


def test_a_wall_time_skipped_by_daylight_saving_needs_an_offset() -> None:
    ny = ZoneInfo("America/New_York")
    raw = pd.DataFrame(
        [
            claim(id="A", submitted_at="2026-03-08T02:30:00"),
            claim(id="B", submitted_at="2026-03-08T02:30:00-05:00"),
        ]
    )
    v = validate_frame(MODEL["expense_claim"], raw, source="expense_claim.csv", tz=ny)
    assert found(v) == [
        (
            1,
            "submitted_at",
            "submitted_at: '2026-03-08T02:30:00' does not exist or is ambiguous in America/New_York "
            "(daylight-saving change); give it an offset",
            "提交时间：'2026-03-08T02:30:00' 在时区 America/New_York 中不存在或有歧义"
            "（夏令时切换），请注明时差",
        )
    ]
    assert v.frame["submitted_at"].tolist() == [ts("2026-03-08T07:30:00Z")]


@pytest.mark.parametrize("text", ["2026-10-01", "2026-10-01 00:00:00", "2026-10-01T00:00"])
def test_dates_are_midnight_in_the_zone(text: str) -> None:
    v = run("supplier", [{**VALID_ROWS["supplier"], "qualified_from": text}])
    assert v.problems == []
    assert v.frame["qualified_from"].iloc[0] == ts("2026-09-30T16:00:00Z")


def test_typed_datetimes_naive_are_localised_and_aware_converted() -> None:
    raw = pd.DataFrame([claim(id="A"), claim(id="B")])
    raw["submitted_at"] = pd.to_datetime(["2026-10-01 09:00", "2026-10-02 09:00"])
    raw["paid_at"] = pd.to_datetime(pd.Series(["2026-10-01T09:00:00Z", None]), utc=True)
    v = validate_frame(MODEL["expense_claim"], raw, source="expense_claim.parquet", tz=TZ)
    assert v.problems == []
    assert v.frame["submitted_at"].tolist() == [ts("2026-10-01T01:00:00Z"), ts("2026-10-02T01:00:00Z")]
    assert v.frame["paid_at"].iloc[0] == ts("2026-10-01T09:00:00Z")
    assert pd.isna(v.frame["paid_at"].iloc[1])


def test_typed_datetime_objects_in_an_object_column() -> None:
    raw = pd.DataFrame([VALID_ROWS["supplier"], {**VALID_ROWS["supplier"], "id": "S2"}], dtype=object)
    raw["qualified_from"] = [dt.date(2026, 10, 1), dt.datetime(2026, 10, 1, 12, 0)]
    raw["last_evaluated_at"] = [dt.datetime(2026, 10, 1, 9, 0), dt.datetime(2026, 10, 1, 9, 0, tzinfo=UTC)]
    v = validate_frame(MODEL["supplier"], raw, source="supplier.xlsx", tz=TZ)
    assert [p.message_en for p in v.problems] == [
        "qualified_from: '2026-10-01T12:00:00' is not a date (YYYY-MM-DD)"
    ]
    assert v.frame["qualified_from"].tolist() == [ts("2026-09-30T16:00:00Z")]
    assert v.frame["last_evaluated_at"].tolist() == [ts("2026-10-01T01:00:00Z")]


# --- strings -----------------------------------------------------------------------------------


def test_strings_are_stripped_and_formula_text_stays_plain_text() -> None:
    formulas = ["=1+2", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A2)"]
    rows = [claim(id=f"E{i}", applicant=f, invoice_no=f"  {f}  ") for i, f in enumerate(formulas)]
    v = run("expense_claim", rows)
    assert v.problems == []
    assert v.frame["applicant"].tolist() == formulas
    assert v.frame["invoice_no"].tolist() == formulas


def test_a_list_or_object_cell_is_not_a_value() -> None:
    raw = pd.DataFrame([claim()], dtype=object)
    raw["dept"] = pd.Series([["fin", "hr"]], dtype=object)
    v = validate_frame(MODEL["expense_claim"], raw, source="expense_claim.json", tz=TZ)
    assert found(v) == [
        (
            1,
            "dept",
            """dept: '["fin", "hr"]' is a list or object, not a single value""",
            """部门：'["fin", "hr"]' 是列表或对象，不是单个值""",
        )
    ]


def test_numbers_in_a_string_column_keep_their_digits() -> None:
    raw = pd.DataFrame([claim(id="A"), claim(id="B")], dtype=object)
    raw["invoice_no"] = [12345678, 3.0]
    v = validate_frame(MODEL["expense_claim"], raw, source="expense_claim.xlsx", tz=TZ)
    assert v.frame["invoice_no"].tolist() == ["12345678", "3"]


# --- payloads ----------------------------------------------------------------------------------


def test_payloads_are_canonical_json_values() -> None:
    rows = [
        claim(id="A", amount="1,234.5", paid_at="2026-10-02T10:30:00Z"),
        claim(id="B", amount="0.07", invoice_no="", submitted_at="2026-10-01T09:00:00.25"),
    ]
    v = run("expense_claim", rows)
    payloads = to_payloads(MODEL["expense_claim"], v.frame, TZ)
    assert payloads == [
        {
            "id": "A",
            "dept": "fin",
            "applicant": "张三",
            "category": "travel",
            "amount": "1234.50",
            "invoice_no": "INV-1",
            "invoice_count": 2,
            "submitted_at": "2026-10-01T09:00:00+08:00",
            "paid_at": "2026-10-02T18:30:00+08:00",
        },
        {
            "id": "B",
            "dept": "fin",
            "applicant": "张三",
            "category": "travel",
            "amount": "0.07",
            "invoice_no": None,
            "invoice_count": 2,
            "submitted_at": "2026-10-01T09:00:00.25+08:00",
            "paid_at": None,
        },
    ]
    assert type(payloads[0]["invoice_count"]) is int
    json.dumps(payloads)  # JSON-ready as is


def test_payloads_of_bools_dates_and_other_zones() -> None:
    supplier = {**VALID_ROWS["supplier"], "qualified": "否", "last_evaluated_at": "2026-01-01T00:00:00Z"}
    v = run("supplier", [supplier])
    (payload,) = to_payloads(MODEL["supplier"], v.frame, TZ)
    assert payload["qualified"] is False
    assert payload["qualified_from"] == "2026-01-01"
    assert payload["qualified_until"] is None
    assert payload["last_evaluated_at"] == "2026-01-01T08:00:00+08:00"
    (in_ny,) = to_payloads(MODEL["supplier"], v.frame, ZoneInfo("America/New_York"))
    assert in_ny["last_evaluated_at"] == "2025-12-31T19:00:00-05:00"


@pytest.mark.parametrize("type_name", sorted(VALID_ROWS))
def test_payloads_round_trip_exactly(type_name: str) -> None:
    v = run(type_name, [VALID_ROWS[type_name], {**VALID_ROWS[type_name], "id": "second"}])
    rt = MODEL[type_name]
    payloads = to_payloads(rt, v.frame, TZ)
    back = from_payloads(rt, payloads, TZ)
    pd.testing.assert_frame_equal(back, v.frame.reset_index(drop=True))
    assert to_payloads(rt, back, TZ) == payloads


def test_round_trip_keeps_nanoseconds_and_awkward_decimals() -> None:
    rows = [
        claim(id="A", amount="0.1", submitted_at="2026-10-01T09:00:00.000000001+08:00"),
        claim(id="B", amount="0.30", submitted_at="1900-01-01T00:00:00"),
        claim(id="C", amount="999999999999999.99", paid_at="2261-12-31T23:59:59.999999999"),
    ]
    v = run("expense_claim", rows)
    assert v.problems == []
    payloads = to_payloads(MODEL["expense_claim"], v.frame, TZ)
    assert [p["amount"] for p in payloads] == ["0.10", "0.30", "999999999999999.99"]
    assert payloads[0]["submitted_at"] == "2026-10-01T09:00:00.000000001+08:00"
    assert (
        payloads[1]["submitted_at"] == "1900-01-01T00:00:00+08:05:43"
    )  # Shanghai's LMT offset, as tzdata says
    back = from_payloads(MODEL["expense_claim"], payloads, TZ)
    pd.testing.assert_frame_equal(back, v.frame.reset_index(drop=True))


def test_content_hash_is_stable_and_key_order_free() -> None:
    payload = {"id": "A", "amount": "1.00", "name": "张三", "n": None}
    expected = hashlib.sha256('{"amount":"1.00","id":"A","n":null,"name":"张三"}'.encode()).hexdigest()
    assert content_hash(payload) == expected
    assert content_hash(dict(reversed(payload.items()))) == expected
    assert content_hash({**payload, "amount": "1.0"}) != expected


def test_from_payloads_rejects_wrong_types_and_unknown_keys() -> None:
    good = to_payloads(MODEL["expense_claim"], run("expense_claim", [claim()]).frame, TZ)[0]
    with pytest.raises(InputError) as err:
        from_payloads(MODEL["expense_claim"], [good, {**good, "amount": "1.234", "colour": "red"}], TZ)
    assert [(p.row, p.key, p.message_en) for p in err.value.problems] == [
        (None, "colour", "unknown field 'colour'"),
        (2, "amount", "amount: '1.234' has more than 2 decimal places"),
    ]


def test_from_payloads_of_nothing_is_an_empty_typed_frame() -> None:
    assert from_payloads(MODEL["expense_claim"], [], TZ).equals(empty_frame(MODEL["expense_claim"]))


def test_a_bad_header_rejects_the_file_but_every_cell_problem_is_still_listed() -> None:
    v = run(
        "expense_claim",
        [claim(amount="12.345", colour="red"), claim(id="C2", submitted_at="2026-13-01", colour="blue")],
    )
    assert v.frame.empty
    assert v.rejected_rows == [1, 2]
    assert [(p.row, p.key) for p in v.problems] == [(None, "colour"), (1, "amount"), (2, "submitted_at")]
