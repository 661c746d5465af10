"""Readers: every supported format reads the same records; broken files fail with exact problems."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from rules import readers
from rules.problems import InputError, Problems
from rules.readers import DataSet, read_data_dir, read_records, read_table, record_type_of
from rules.records import load_record_model
from rules.validate import to_payloads

MODEL = load_record_model(Path(__file__).parents[1] / "policies" / "record_types.yaml", Problems())
TZ = ZoneInfo("Asia/Shanghai")

HEADER = ["id", "dept", "applicant", "category", "amount", "invoice_no", "invoice_count", "submitted_at"]
ROWS = [
    ["EC1", "财务部", "张三", "travel", "1,234.50", "007", "2", "2026-10-01T09:00:00"],
    ["EC2", "行政部", "李四", "office", "0.10", "", "0", "2026-10-01T09:00:00Z"],
]


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8", header: list[str] = HEADER) -> Path:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, *rows])
    path.write_text(out.getvalue(), encoding=encoding)
    return path


def problems_of(err: pytest.ExceptionInfo[InputError]) -> list[tuple[int | None, int | None, str, str]]:
    return [(p.line, p.row, p.message_en, p.message_zh) for p in err.value.problems]


EXPECTED_PAYLOADS: list[dict[str, Any]] = [
    {
        "id": "EC1",
        "dept": "财务部",
        "applicant": "张三",
        "category": "travel",
        "amount": "1234.50",
        "invoice_no": "007",
        "invoice_count": 2,
        "submitted_at": "2026-10-01T09:00:00+08:00",
        "paid_at": None,
    },
    {
        "id": "EC2",
        "dept": "行政部",
        "applicant": "李四",
        "category": "office",
        "amount": "0.10",
        "invoice_no": None,
        "invoice_count": 0,
        "submitted_at": "2026-10-01T17:00:00+08:00",
        "paid_at": None,
    },
]


def payloads_of(path: Path) -> list[dict[str, Any]]:
    name, v = read_records(path, MODEL, TZ)
    assert name == "expense_claim"
    assert v.problems == []
    return to_payloads(MODEL[name], v.frame, TZ)


# --- CSV ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_csv_encodings_are_detected(tmp_path: Path, encoding: str) -> None:
    path = write_csv(tmp_path / "expense_claim.csv", ROWS, encoding)
    raw = read_table(path)
    assert list(raw.columns) == HEADER  # a BOM must not stick to "id"
    assert raw["dept"].tolist() == ["财务部", "行政部"]
    assert payloads_of(path) == EXPECTED_PAYLOADS


def test_gb18030_characters_outside_gbk(tmp_path: Path) -> None:
    path = tmp_path / "department.csv"
    path.write_text("id,name,head\nD1,𠮷野家事业部,王五\n", encoding="gb18030")
    assert read_table(path)["name"].tolist() == ["𠮷野家事业部"]


def test_csv_text_is_not_type_inferred(tmp_path: Path) -> None:
    path = tmp_path / "department.csv"
    path.write_text('id,name,head\n007,NA,null\n"1,000",=SUM(A1:A2),"line\nbreak"\n', encoding="utf-8")
    raw = read_table(path)
    assert raw.to_dict("records") == [
        {"id": "007", "name": "NA", "head": "null"},
        {"id": "1,000", "name": "=SUM(A1:A2)", "head": "line\nbreak"},
    ]


def test_csv_header_only_is_zero_records(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "expense_claim.csv", [])
    _, v = read_records(path, MODEL, TZ)
    assert v.total_rows == 0
    assert v.problems == []
    assert v.frame.empty


def test_csv_tab_separated_unicode_text_export(tmp_path: Path) -> None:
    path = tmp_path / "department.csv"
    path.write_text("id\tname\thead\r\nD1\t财务部\t王五\r\n", encoding="utf-16")
    assert read_table(path).to_dict("records") == [{"id": "D1", "name": "财务部", "head": "王五"}]


def test_csv_row_longer_than_header_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "department.csv"
    path.write_text("id,name,head\nD1,财务部,王五\n\nD2,行政部,赵六,extra\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_table(path)
    assert problems_of(err) == [
        (4, None, "line 4 has 4 fields but the header has 3", "第 4 行有 4 个字段，但表头只有 3 个")
    ]
    assert err.value.problems[0].file == str(path)


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", "\ufeff".encode()])
def test_empty_csv(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "department.csv"
    path.write_bytes(content)
    with pytest.raises(InputError) as err:
        read_table(path)
    assert problems_of(err) == [(None, None, "the file is empty", "文件为空")]


def test_csv_with_an_empty_header_row(tmp_path: Path) -> None:
    path = tmp_path / "department.csv"
    path.write_text(",,\nD1,财务部,王五\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_table(path)
    assert problems_of(err) == [(1, None, "the first row (the header) is empty", "第一行（表头）为空")]


def test_undecodable_csv(tmp_path: Path) -> None:
    path = tmp_path / "department.csv"
    path.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(InputError) as err:
        read_table(path)
    assert problems_of(err) == [
        (
            None,
            None,
            "cannot decode the file: it is not UTF-8 or GB18030 and its encoding cannot be detected; "
            "save it as CSV UTF-8",
            "无法解码文件：既不是 UTF-8 也不是 GB18030，且无法识别其编码；请另存为 CSV UTF-8",
        )
    ]


def test_csv_duplicate_header_names_are_kept_for_validation(tmp_path: Path) -> None:
    path = tmp_path / "department.csv"
    path.write_text("id,name,name,head\nD1,a,b,c\n", encoding="utf-8")
    assert list(read_table(path).columns) == ["id", "name", "name", "head"]
    _, v = read_records(path, MODEL, TZ)
    assert [p.message_en for p in v.problems] == ["column 'name' appears 2 times"]


# --- XLSX --------------------------------------------------------------------------------------


def write_xlsx(path: Path, rows: list[list[Any]]) -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    book.create_sheet("ignored").append(["not", "read"])
    book.save(path)
    return path


def test_xlsx_text_cells(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "expense_claim.xlsx", [HEADER, *ROWS])
    assert payloads_of(path) == EXPECTED_PAYLOADS


def test_xlsx_typed_cells_blank_rows_and_formulas(tmp_path: Path) -> None:
    rows: list[list[Any]] = [
        [*HEADER, "paid_at", None],
        ["EC1", "财务部", "=1+2", "travel", 1234.5, 7, 2, dt.datetime(2026, 10, 1, 9, 0), None, None],
        [None] * 10,
        [
            "EC2",
            "行政部",
            "李四",
            "office",
            0.1,
            None,
            0.0,
            dt.datetime(2026, 10, 1, 0, 0),
            "2026-10-02T10:00:00Z",
        ],
    ]
    path = write_xlsx(tmp_path / "expense_claim.xlsx", rows)
    raw = read_table(path)
    assert list(raw.columns) == [*HEADER, "paid_at"]  # the trailing unnamed, empty column is dropped
    assert len(raw) == 2
    payloads = payloads_of(path)
    assert payloads[0]["applicant"] == "=1+2"  # a formula is text, never evaluated
    assert payloads[0]["amount"] == "1234.50"
    assert payloads[0]["invoice_no"] == "7"
    assert payloads[1]["amount"] == "0.10"
    assert payloads[1]["invoice_count"] == 0
    assert payloads[1]["submitted_at"] == "2026-10-01T00:00:00+08:00"
    assert payloads[1]["paid_at"] == "2026-10-02T18:00:00+08:00"


def test_xlsx_without_header(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "expense_claim.xlsx", [[None, None], ["EC1", "x"]])
    with pytest.raises(InputError) as err:
        read_table(path)
    assert problems_of(err) == [(1, None, "row 1 (the header) is empty", "第 1 行（表头）为空")]


def test_not_an_xlsx(tmp_path: Path) -> None:
    path = tmp_path / "expense_claim.xlsx"
    path.write_text("id,dept\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_table(path)
    (problem,) = err.value.problems
    assert problem.message_en == "not a valid .xlsx workbook: File is not a zip file"
    assert problem.message_zh == "不是有效的 .xlsx 工作簿：File is not a zip file"


# --- JSON and JSON Lines -----------------------------------------------------------------------


def records() -> list[dict[str, Any]]:
    return [dict(zip(HEADER, row, strict=True)) for row in ROWS]


def test_json_list(tmp_path: Path) -> None:
    path = tmp_path / "expense_claim.json"
    path.write_text(json.dumps(records(), ensure_ascii=False), encoding="utf-8")
    assert payloads_of(path) == EXPECTED_PAYLOADS


def test_json_records_object_with_native_types(tmp_path: Path) -> None:
    items = records()
    items[0].update(amount=1234.5, invoice_count=2, invoice_no=None)
    items[1].update(amount=0.1, invoice_count=0)
    items[1].pop("invoice_no")
    path = tmp_path / "expense_claim.json"
    path.write_text(json.dumps({"records": items}, ensure_ascii=False), encoding="utf-8")
    payloads = payloads_of(path)
    assert [p["amount"] for p in payloads] == ["1234.50", "0.10"]
    assert [p["invoice_count"] for p in payloads] == [2, 0]
    assert [p["invoice_no"] for p in payloads] == [None, None]


def test_json_empty_list_is_zero_records(tmp_path: Path) -> None:
    path = tmp_path / "expense_claim.json"
    path.write_text("[]", encoding="utf-8")
    _, v = read_records(path, MODEL, TZ)
    assert v.total_rows == 0
    assert v.problems == []


def test_bad_json_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "expense_claim.json"
    path.write_text('[\n  {"id": "EC1"},\n  {"id": }\n]\n', encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_table(path)
    assert problems_of(err) == [
        (
            3,
            None,
            "invalid JSON at line 3, column 10: Expecting value",
            "JSON 格式错误：第 3 行第 10 列：Expecting value",
        )
    ]


@pytest.mark.parametrize("doc", ['{"rows": []}', '"text"', '{"records": {"id": 1}}'])
def test_json_that_is_not_a_list_of_objects(tmp_path: Path, doc: str) -> None:
    path = tmp_path / "expense_claim.json"
    path.write_text(doc, encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_table(path)
    assert problems_of(err) == [
        (
            None,
            None,
            'the top level must be a list of objects or {"records": [...]}',
            '顶层必须是对象列表或 {"records": [...]}',
        )
    ]


def test_json_items_that_are_not_objects(tmp_path: Path) -> None:
    path = tmp_path / "expense_claim.json"
    path.write_text('[{"id": "EC1"}, 3, ["a"]]', encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_table(path)
    assert problems_of(err) == [
        (None, 2, "record 2 is a JSON int, not an object", "第 2 条记录是 JSON int，不是对象"),
        (None, 3, "record 3 is a JSON list, not an object", "第 3 条记录是 JSON list，不是对象"),
    ]


def test_json_must_be_utf8(tmp_path: Path) -> None:
    path = tmp_path / "expense_claim.json"
    path.write_bytes('[{"id": "财务"}]'.encode("gbk"))
    with pytest.raises(InputError) as err:
        read_table(path)
    assert problems_of(err) == [
        (
            None,
            None,
            "not UTF-8 text (byte 9): JSON must be UTF-8",
            "不是 UTF-8 文本（第 9 字节）：JSON 必须为 UTF-8",
        )
    ]


def test_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "expense_claim.jsonl"
    path.write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in records()) + "\n\n", encoding="utf-8"
    )
    assert payloads_of(path) == EXPECTED_PAYLOADS


def test_jsonl_bad_lines_name_their_line_numbers(tmp_path: Path) -> None:
    lines = [json.dumps(records()[0], ensure_ascii=False), "", '{"id": "EC2",', "[1, 2]", '{"id": "EC3"}']
    path = tmp_path / "expense_claim.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_table(path)
    assert problems_of(err) == [
        (
            3,
            None,
            "line 3: invalid JSON at column 14: Expecting property name enclosed in double quotes",
            "第 3 行：JSON 格式错误（第 14 列）：Expecting property name enclosed in double quotes",
        ),
        (4, None, "line 4: a JSON list, not an object", "第 4 行：是 JSON list，不是对象"),
    ]


def test_empty_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "expense_claim.jsonl"
    path.write_text("\n \n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_table(path)
    assert problems_of(err) == [(None, None, "the file is empty", "文件为空")]


# --- parquet -----------------------------------------------------------------------------------


def test_parquet_with_native_types(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "id": ["EC1", "EC2"],
            "dept": ["财务部", "行政部"],
            "applicant": ["张三", "李四"],
            "category": ["travel", "office"],
            "amount": [1234.5, 0.1],
            "invoice_no": ["007", None],
            "invoice_count": [2, 0],
            "submitted_at": pd.to_datetime(["2026-10-01 09:00", "2026-10-01 17:00"]),
            "paid_at": pd.to_datetime(pd.Series([None, "2026-10-02T10:00:00Z"]), utc=True),
        }
    )
    path = tmp_path / "expense_claim.parquet"
    frame.to_parquet(path)
    assert payloads_of(path) == [
        {**EXPECTED_PAYLOADS[0]},
        {**EXPECTED_PAYLOADS[1], "paid_at": "2026-10-02T18:00:00+08:00"},
    ]


def test_parquet_dates_and_bools(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "id": ["S1", "S2"],
            "name": ["甲", "乙"],
            "qualified": [True, False],
            "qualified_from": [dt.date(2026, 1, 1), None],
        }
    )
    path = tmp_path / "supplier.parquet"
    frame.to_parquet(path)
    name, v = read_records(path, MODEL, TZ)
    assert v.problems == []
    payloads = to_payloads(MODEL[name], v.frame, TZ)
    assert [(p["qualified"], p["qualified_from"]) for p in payloads] == [(True, "2026-01-01"), (False, None)]


def test_not_a_parquet(tmp_path: Path) -> None:
    path = tmp_path / "expense_claim.parquet"
    path.write_text("id\nEC1\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_table(path)
    assert err.value.problems[0].message_en.startswith("not a valid parquet file: ")


# --- names and directories ---------------------------------------------------------------------


def test_record_type_of() -> None:
    assert record_type_of(Path("data/expense_claim.xlsx"), MODEL) == "expense_claim"
    with pytest.raises(InputError) as err:
        record_type_of(Path("data/claims.csv"), MODEL)
    known = ", ".join(MODEL.names)
    assert problems_of(err) == [
        (
            None,
            None,
            f"'claims.csv' does not name a record type; name the file after one of: {known}",
            f"文件名 'claims.csv' 不对应任何记录类型；请以下列类型之一命名：{known}",
        )
    ]


def test_unsupported_extension() -> None:
    with pytest.raises(InputError) as err:
        read_table(Path("expense_claim.xls"))
    assert err.value.problems[0].message_en == (
        "unsupported file type '.xls'; use one of .csv, .xlsx, .json, .jsonl, .parquet"
    )


def test_read_records_reports_value_problems_without_raising(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "expense_claim.csv", [ROWS[0], [*ROWS[1][:4], "12.345", *ROWS[1][5:]]])
    _, v = read_records(path, MODEL, TZ)
    assert [(p.file, p.row, p.key, p.message_en) for p in v.problems] == [
        (str(path), 2, "amount", "amount: '12.345' has more than 2 decimal places")
    ]
    assert v.rejected_rows == [2]


def good_dir(tmp_path: Path) -> Path:
    write_csv(tmp_path / "expense_claim.csv", ROWS)
    (tmp_path / "department.json").write_text(
        json.dumps([{"id": "D1", "name": "财务部", "head": "王五"}], ensure_ascii=False), encoding="utf-8"
    )
    (tmp_path / "README.md").write_text("# data\n", encoding="utf-8")
    (tmp_path / "ground_truth.csv").write_text("anything,at all\n", encoding="utf-8")
    (tmp_path / "manifest.json").write_text("{not json", encoding="utf-8")
    (tmp_path / ".DS_Store").write_bytes(b"\x00\x01")
    return tmp_path


def test_read_data_dir(tmp_path: Path) -> None:
    data = read_data_dir(good_dir(tmp_path), MODEL, TZ)
    assert isinstance(data, DataSet)
    assert sorted(data.frames) == ["department", "expense_claim"]
    assert data.problems == []
    assert data.files["department"] == tmp_path / "department.json"
    assert data.frames["expense_claim"]["amount"].tolist() == [123450, 10]
    assert data.results["department"].total_rows == 1


def test_read_data_dir_collects_every_problem_of_every_file(tmp_path: Path) -> None:
    good_dir(tmp_path)
    write_csv(tmp_path / "expense_claim.csv", [ROWS[0], [*ROWS[1][:3], "food", *ROWS[1][4:]], ROWS[0]])
    write_csv(tmp_path / "contract.csv", [], header=["id"])
    write_xlsx(tmp_path / "contract.xlsx", [["id"]])
    (tmp_path / "claims.csv").write_text("id\n", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
    (tmp_path / "budget.jsonl").write_text("{oops}\n", encoding="utf-8")
    (tmp_path / "old").mkdir()
    with pytest.raises(InputError) as err:
        read_data_dir(tmp_path, MODEL, TZ)
    got = [(Path(p.file).name, p.row, p.message_en) for p in err.value.problems]
    json_error = "line 1: invalid JSON at column 2: Expecting property name enclosed in double quotes"
    assert got == [
        ("claims.csv", None, f"'claims.csv' does not name a record type; name the file after one of: "
                             f"{', '.join(MODEL.names)}"),
        ("notes.txt", None, "unsupported file type '.txt'; use one of .csv, .xlsx, .json, .jsonl, .parquet"),
        ("old", None, "unexpected sub-directory"),
        ("budget.jsonl", None, json_error),
        (tmp_path.name, None, "contract has 2 files (contract.csv, contract.xlsx); keep exactly one"),
        ("expense_claim.csv", 2, "category: 'food' is not one of: travel, office, entertainment, training, "
                                 "transport, other"),
        ("expense_claim.csv", 3, "id: 'EC1' duplicates row 1"),
    ]  # fmt: skip
    lenient = read_data_dir(tmp_path, MODEL, TZ, strict=False)
    assert [(Path(p.file).name, p.row) for p in lenient.problems] == [(g[0], g[1]) for g in got]
    assert lenient.frames["expense_claim"]["id"].tolist() == ["EC1"]
    assert lenient.results["expense_claim"].rejected_rows == [2, 3]
    assert sorted(lenient.frames) == ["department", "expense_claim"]


def test_read_data_dir_ignore_is_explicit(tmp_path: Path) -> None:
    good_dir(tmp_path)
    (tmp_path / "old").mkdir()
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
    data = read_data_dir(
        tmp_path, MODEL, TZ, ignore={"old", "notes.txt", "README.md", "ground_truth.csv", "manifest.json"}
    )
    assert data.problems == []
    with pytest.raises(InputError) as err:
        read_data_dir(tmp_path, MODEL, TZ, ignore=set())
    names = sorted(Path(p.file).name for p in err.value.problems)
    assert names == ["README.md", "ground_truth.csv", "manifest.json", "notes.txt", "old"]


def test_read_data_dir_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        read_data_dir(tmp_path / "missing", MODEL, TZ)
    assert [p.message_en for p in err.value.problems] == ["not a directory"]


# --- CSV: pyarrow's reader and pandas' give the same text -------------------------------------
# Most files are read by pyarrow (no Python string per cell); a file it would read differently
# goes to pandas' parser. These tests keep the two from drifting apart.

_cell_text = st.text(
    alphabet=st.sampled_from([*'ab 1,."\n\r\t;', "财", "务", "𠮷", "\u3000", "'"]), max_size=6
)


def _both_parsers(data: bytes) -> tuple[pd.DataFrame | None, pd.DataFrame | Exception]:
    path = Path("generated.csv")
    source = readers._CsvBytes(data, ",", readers._first_line(data.decode("utf-8-sig")))
    try:
        by_pandas: pd.DataFrame | Exception = readers._text_table_by_pandas(path, source)
    except InputError as exc:
        by_pandas = exc
    return readers._text_table_by_arrow(source), by_pandas


@settings(max_examples=300, deadline=None)
@given(
    width=st.integers(1, 4),
    rows=st.lists(st.lists(_cell_text, min_size=1, max_size=5), min_size=1, max_size=6),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
    ending=st.sampled_from(["\n", "\r\n"]),
    bom=st.booleans(),
)
def test_csv_arrow_and_pandas_parsers_agree(
    width: int, rows: list[list[str]], quoting: int, ending: str, bom: bool
) -> None:
    header = [f"c{i}" for i in range(width)]
    out = io.StringIO()
    csv.writer(out, lineterminator=ending, quoting=quoting).writerows([header, *rows])
    data = ("\ufeff" if bom else "").encode() + out.getvalue().encode("utf-8")
    by_arrow, by_pandas = _both_parsers(data)
    if by_arrow is None:  # left to pandas (ragged rows, lines of blanks, a bare "\r" in a cell)
        return
    assert isinstance(by_pandas, pd.DataFrame)
    assert by_arrow.shape == by_pandas.shape
    by_arrow.columns = by_pandas.columns  # generated names: _read_csv replaces them by the header
    pd.testing.assert_frame_equal(by_arrow, by_pandas, check_exact=True)


@pytest.mark.parametrize(
    "text",
    [
        "id,name,head\nD1,财务部,王五\n   \nD2,行政部,赵六\n",  # a line of blanks: pandas skips it
        "id,name,head\nD1,财务部\n",  # a short row: pandas pads it
        "id,name,head\nD1,财务部,王五,extra\n",  # a long row: pandas names the line
        'id,name,head\n"D1,财务部,王五\n',  # an unterminated quote
    ],
)
def test_csv_files_pyarrow_reads_differently_go_to_pandas(text: str) -> None:
    data = text.encode("utf-8")
    source = readers._CsvBytes(data, ",", readers._first_line(text))
    assert readers._text_table_by_arrow(source) is None


def test_a_large_utf8_csv_is_read_by_pyarrow_as_text(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "expense_claim.csv", ROWS * 5000)
    source = readers._csv_bytes(path)
    table = readers._text_table_by_arrow(source)
    assert table is not None
    assert len(table) == 10_001
    assert read_table(path).iloc[-1].tolist() == ROWS[1]
