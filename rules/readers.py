"""Read record files (.csv, .xlsx, .json, .jsonl, .parquet) into raw frames, then validate them.

Readers never infer types from text: CSV and XLSX text stays text, so "007" and "1,234.50" reach
validation as written. JSON and parquet keep their native types; validation handles both.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from rules.problems import InputError, Problem
from rules.records import RecordModel
from rules.validate import Validated, validate_frame
from rules.yamlsource import display_path

SUPPORTED = (".csv", ".xlsx", ".json", ".jsonl", ".parquet")
DEFAULT_IGNORE = frozenset({"ground_truth.csv", "manifest.json", "README.md"})


def _fail(path: Path, en: str, zh: str, *, line: int | None = None, row: int | None = None) -> InputError:
    name = display_path(path)
    return InputError(name, [Problem(name, en, zh, line=line, row=row)])


# ---------------------------------------------------------------------------------------------
# CSV


def _decode_text(path: Path, data: bytes) -> tuple[str, str]:
    """(text, encoding): UTF-8 (BOM or not), else GB18030 (a superset of GBK), else a detected guess."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None or best.encoding is None:
        raise _fail(
            path,
            "cannot decode the file: it is not UTF-8 or GB18030 and its encoding cannot be detected; "
            "save it as CSV UTF-8",
            "无法解码文件：既不是 UTF-8 也不是 GB18030，且无法识别其编码；请另存为 CSV UTF-8",
        )
    return str(best), str(best.encoding)


def _read_csv(path: Path) -> pd.DataFrame:
    data = path.read_bytes()
    text, encoding = _decode_text(path, data)
    if "\x00" in text:
        raise _fail(
            path,
            f"the file is binary, not CSV text (read as {encoding})",
            f"文件是二进制内容，不是 CSV 文本（按 {encoding} 读取）",
        )
    if not text.strip():
        raise _fail(path, "the file is empty", "文件为空")
    first_line = text.lstrip("\r\n").split("\n", 1)[0]
    # Excel's "Unicode text" export is tab-separated; anything else must be comma-separated.
    sep = "\t" if "," not in first_line and "\t" in first_line else ","
    try:
        # header=None keeps duplicate header names as written (pandas would rename them "x.1"),
        # and makes a row longer than the header an error instead of silently shifting columns.
        # Re-encoded as UTF-8 bytes: pandas' C parser reads bytes faster than a StringIO.
        table = pd.read_csv(
            io.BytesIO(text.encode("utf-8")),
            encoding="utf-8",
            sep=sep,
            header=None,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=True,
        )
    except pd.errors.EmptyDataError:
        raise _fail(path, "the file has no header row", "文件没有表头行") from None
    except (pd.errors.ParserError, csv.Error) as exc:
        found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if found:
            expected, line, saw = found.groups()
            raise _fail(
                path,
                f"line {line} has {saw} fields but the header has {expected}",
                f"第 {line} 行有 {saw} 个字段，但表头只有 {expected} 个",
                line=int(line),
            ) from None
        raise _fail(path, f"malformed CSV: {exc}", f"CSV 格式错误：{exc}") from None
    header = [str(h).strip() if isinstance(h, str) else "" for h in table.iloc[0]]
    if not any(header):
        raise _fail(path, "the first row (the header) is empty", "第一行（表头）为空", line=1)
    body = table.iloc[1:].reset_index(drop=True)
    body.columns = pd.Index(header)
    return body


# ---------------------------------------------------------------------------------------------
# XLSX


def _read_xlsx(path: Path) -> pd.DataFrame:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        # data_only=False: a formula cell arrives as its text ("=B2*2") and is never evaluated.
        book = load_workbook(path, read_only=True, data_only=False)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise _fail(path, f"not a valid .xlsx workbook: {exc}", f"不是有效的 .xlsx 工作簿：{exc}") from None
    try:
        if not book.worksheets:
            raise _fail(path, "the workbook has no worksheet", "工作簿中没有工作表")
        rows = [list(r) for r in book.worksheets[0].iter_rows(values_only=True)]
    finally:
        book.close()
    if not rows or all(v is None or str(v).strip() == "" for v in rows[0]):
        raise _fail(path, "row 1 (the header) is empty", "第 1 行（表头）为空", line=1)
    # Fully blank rows are skipped, as CSV readers skip blank lines; Excel leaves many behind.
    body = [r for r in rows[1:] if any(v is not None and str(v).strip() != "" for v in r)]
    width = max(len(r) for r in [rows[0], *body])
    # Columns past the last one holding anything are formatting residue, not data.
    while width > 0 and all(len(r) < width or r[width - 1] is None for r in [rows[0], *body]):
        width -= 1
    header = [("" if v is None else str(v)).strip() for v in (rows[0] + [None] * width)[:width]]
    data = [(r + [None] * width)[:width] for r in body]
    return pd.DataFrame(data, columns=pd.Index(header), dtype=object)


# ---------------------------------------------------------------------------------------------
# JSON, JSON Lines, parquet


def _utf8(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _fail(
            path,
            f"not UTF-8 text (byte {exc.start}): JSON must be UTF-8",
            f"不是 UTF-8 文本（第 {exc.start} 字节）：JSON 必须为 UTF-8",
        ) from None


def _records_frame(path: Path, items: list[Any], problems: list[Problem]) -> pd.DataFrame:
    """A frame of JSON objects; object values keep their JSON types (object dtype, no inference)."""
    if problems:
        raise InputError(display_path(path), problems)
    columns: dict[str, None] = {}
    for item in items:
        columns.update(dict.fromkeys(item))
    return pd.DataFrame(
        {name: pd.Series([item.get(name) for item in items], dtype=object) for name in columns},
        index=pd.RangeIndex(len(items)),
    )


def _read_json(path: Path) -> pd.DataFrame:
    text = _utf8(path)
    name = display_path(path)
    if not text.strip():
        raise _fail(path, "the file is empty", "文件为空")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(
            path,
            f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
            f"JSON 格式错误：第 {exc.lineno} 行第 {exc.colno} 列：{exc.msg}",
            line=exc.lineno,
        ) from None
    if isinstance(doc, dict) and "records" in doc:
        doc = doc["records"]
    if not isinstance(doc, list):
        raise _fail(
            path,
            'the top level must be a list of objects or {"records": [...]}',
            '顶层必须是对象列表或 {"records": [...]}',
        )
    problems = [
        Problem(
            name,
            f"record {i} is a JSON {type(item).__name__}, not an object",
            f"第 {i} 条记录是 JSON {type(item).__name__}，不是对象",
            row=i,
        )
        for i, item in enumerate(doc, start=1)
        if not isinstance(item, dict)
    ]
    return _records_frame(path, doc, problems)


def _read_jsonl(path: Path) -> pd.DataFrame:
    name = display_path(path)
    items: list[Any] = []
    problems: list[Problem] = []
    # split("\n"), not splitlines(): JSON strings may hold a raw U+2028, which splitlines() breaks on.
    for number, line in enumerate(_utf8(path).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(
                Problem(
                    name,
                    f"line {number}: invalid JSON at column {exc.colno}: {exc.msg}",
                    f"第 {number} 行：JSON 格式错误（第 {exc.colno} 列）：{exc.msg}",
                    line=number,
                )
            )
            continue
        if not isinstance(item, dict):
            problems.append(
                Problem(
                    name,
                    f"line {number}: a JSON {type(item).__name__}, not an object",
                    f"第 {number} 行：是 JSON {type(item).__name__}，不是对象",
                    line=number,
                )
            )
            continue
        items.append(item)
    if not items and not problems:
        raise _fail(path, "the file is empty", "文件为空")
    return _records_frame(path, items, problems)


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow as pa

    try:
        return pd.read_parquet(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise _fail(path, f"not a valid parquet file: {exc}", f"不是有效的 parquet 文件：{exc}") from None


_READERS = {
    ".csv": _read_csv,
    ".xlsx": _read_xlsx,
    ".json": _read_json,
    ".jsonl": _read_jsonl,
    ".parquet": _read_parquet,
}


def read_table(path: Path) -> pd.DataFrame:
    """Read one record file as a raw frame; CSV/XLSX cells are text, JSON/parquet keep their types.

    Raises InputError naming the file (and line where known) when it cannot be read as a table.
    """
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise _fail(
            path,
            f"unsupported file type '{path.suffix}'; use one of {', '.join(SUPPORTED)}",
            f"不支持的文件类型 '{path.suffix}'；请使用 {', '.join(SUPPORTED)} 之一",
        )
    try:
        return reader(path)
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        raise _fail(path, f"cannot read the file: {exc.strerror}", f"无法读取文件：{exc.strerror}") from None


# ---------------------------------------------------------------------------------------------
# Records


def record_type_of(path: Path, model: RecordModel) -> str:
    """The record type a file holds, from its name: `expense_claim.csv` -> expense_claim."""
    name = path.stem
    if name in model:
        return name
    known = ", ".join(model.names)
    raise _fail(
        path,
        f"'{path.name}' does not name a record type; name the file after one of: {known}",
        f"文件名 '{path.name}' 不对应任何记录类型；请以下列类型之一命名：{known}",
    )


def read_records(path: Path, model: RecordModel, tz: ZoneInfo) -> tuple[str, Validated]:
    """Read and validate one file; raises InputError only when the file cannot be read at all."""
    type_name = record_type_of(path, model)
    raw = read_table(path)
    return type_name, validate_frame(model[type_name], raw, source=display_path(path), tz=tz)


@dataclass(frozen=True)
class DataSet:
    """Every record file of a directory: typed valid rows per type, and every problem."""

    frames: dict[str, pd.DataFrame]
    results: dict[str, Validated]
    problems: list[Problem] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)


def read_data_dir(
    directory: Path,
    model: RecordModel,
    tz: ZoneInfo,
    *,
    ignore: Iterable[str] = DEFAULT_IGNORE,
    strict: bool = True,
) -> DataSet:
    """Read every record file in `directory` (one file per record type).

    Files and sub-directories named in `ignore` are skipped, as are hidden ones (".DS_Store");
    anything else that is not `<record_type>.<supported extension>` is a problem. With `strict`
    any problem raises InputError listing all of them; otherwise valid rows come back with them.
    """
    where = display_path(directory)
    if not directory.is_dir():
        raise InputError(where, [Problem(where, "not a directory", "不是目录")])
    skip = set(ignore)
    problems: list[Problem] = []
    by_type: dict[str, list[Path]] = {}
    for entry in sorted(directory.iterdir()):
        if entry.name in skip or entry.name.startswith("."):
            continue
        shown = display_path(entry)
        if entry.is_dir():
            problems.append(
                Problem(shown, "unexpected sub-directory", "意外的子目录（如需忽略请加入 ignore 列表）")
            )
            continue
        if entry.suffix.lower() not in SUPPORTED:
            problems.append(
                Problem(
                    shown,
                    f"unsupported file type '{entry.suffix}'; use one of {', '.join(SUPPORTED)}",
                    f"不支持的文件类型 '{entry.suffix}'；请使用 {', '.join(SUPPORTED)} 之一",
                )
            )
            continue
        try:
            by_type.setdefault(record_type_of(entry, model), []).append(entry)
        except InputError as exc:
            problems.extend(exc.problems)

    frames: dict[str, pd.DataFrame] = {}
    results: dict[str, Validated] = {}
    files: dict[str, Path] = {}
    for type_name, paths in by_type.items():
        if len(paths) > 1:
            names = ", ".join(p.name for p in paths)
            problems.append(
                Problem(
                    where,
                    f"{type_name} has {len(paths)} files ({names}); keep exactly one",
                    f"{model[type_name].label.zh}（{type_name}）有 {len(paths)} 个文件（{names}）；"
                    "只能保留一个",
                    key=type_name,
                )
            )
            continue
        path = paths[0]
        try:
            _, result = read_records(path, model, tz)
        except InputError as exc:
            problems.extend(exc.problems)
            continue
        files[type_name] = path
        results[type_name] = result
        frames[type_name] = result.frame
        problems.extend(result.problems)
    if strict and problems:
        raise InputError(f"data directory {where}", problems)
    return DataSet(frames, results, problems, files)
