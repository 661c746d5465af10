"""Read record files (.csv, .xlsx, .json, .jsonl, .parquet) into raw frames, then validate them.

Readers never infer types from text: CSV and XLSX text stays text, so "007" and "1,234.50" reach
validation as written. JSON and parquet keep their native types; validation handles both.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import numpy as np
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

_SCAN_CHUNK = 1 << 20  # UTF-8 is checked a chunk at a time: the file is never held as a str


@dataclass(frozen=True)
class _CsvBytes:
    """A CSV file as UTF-8 bytes (a BOM may lead), its separator and its first line."""

    data: bytes
    sep: str
    first_line: str


def _first_line(text: str) -> str:
    return text.lstrip("\r\n").split("\n", 1)[0]


def _scan_utf8(data: bytes) -> tuple[bool, bool, str] | None:
    """(has a NUL, has non-blank text, first line) of UTF-8 `data`; None when it is not UTF-8.

    Decodes a chunk at a time, so checking a large file costs a chunk of memory, not a copy of it.
    """
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    has_nul = has_text = False
    head = ""  # the text up to the end of the first line
    view = memoryview(data)
    try:
        for start in range(0, max(len(data), 1), _SCAN_CHUNK):
            text = decoder.decode(view[start : start + _SCAN_CHUNK], final=start + _SCAN_CHUNK >= len(data))
            has_nul = has_nul or "\x00" in text
            has_text = has_text or bool(text.strip())
            if "\n" not in head.lstrip("\r\n"):
                head += text
    except UnicodeDecodeError:
        return None
    return has_nul, has_text, _first_line(head)


def _decode_text(path: Path, data: bytes) -> tuple[str, str]:
    """(text, encoding) of a file that is not UTF-8: GB18030 (a superset of GBK), else a detected guess."""
    try:
        return data.decode("gb18030"), "gb18030"
    except UnicodeDecodeError:
        pass
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


def _csv_bytes(path: Path) -> _CsvBytes:
    """The file as UTF-8 bytes: a UTF-8 file as read (no decoded copy), any other decoded and re-encoded."""
    data = path.read_bytes()
    scanned = _scan_utf8(data)
    if scanned is not None:
        encoding = "utf-8-sig"
        has_nul, has_text, first_line = scanned
    else:
        text, encoding = _decode_text(path, data)
        has_nul, has_text, first_line = "\x00" in text, bool(text.strip()), _first_line(text)
        data = text.encode("utf-8")
        del text
    if has_nul:
        raise _fail(
            path,
            f"the file is binary, not CSV text (read as {encoding})",
            f"文件是二进制内容，不是 CSV 文本（按 {encoding} 读取）",
        )
    if not has_text:
        raise _fail(path, "the file is empty", "文件为空")
    # Excel's "Unicode text" export is tab-separated; anything else must be comma-separated.
    sep = "\t" if "," not in first_line and "\t" in first_line else ","
    return _CsvBytes(data, sep, first_line)


# A line of only spaces or tabs: pandas' parser skips it as blank, pyarrow's would read it as a row.
_WHITESPACE_LINE = re.compile(rb"(?:^|[\r\n])(?:\xef\xbb\xbf)?[ \t]+(?:[\r\n]|\Z)")


def _has_whitespace_line(data: bytes) -> bool:
    # A few memchr-speed scans rule it out for most files before the (slower) exact regex.
    starts_blank = data.removeprefix(codecs.BOM_UTF8)[:1] in (b" ", b"\t")
    if not starts_blank and not any(s in data for s in (b"\n ", b"\n\t", b"\r ", b"\r\t")):
        return False
    return _WHITESPACE_LINE.search(data) is not None


def _text_table_by_arrow(source: _CsvBytes) -> pd.DataFrame | None:
    """Every row as text, header row included, by pyarrow's CSV reader: no Python string per cell,
    so a fraction of the memory and time of pandas' parser. None for the files it would read
    differently (lines of blanks, rows of another length than the header's, broken quoting):
    pandas' parser reads those, and names the line at fault."""
    if _has_whitespace_line(source.data):
        return None
    import pyarrow as pa
    from pyarrow import csv as pa_csv

    # Names past the last column are ignored; a column beyond them would be type-inferred.
    width = source.first_line.count(source.sep) + 1
    try:
        table = pa_csv.read_csv(
            pa.py_buffer(source.data),
            # One thread: what it allocates is what release_unused() can hand back afterwards.
            read_options=pa_csv.ReadOptions(autogenerate_column_names=True, use_threads=False),
            parse_options=pa_csv.ParseOptions(delimiter=source.sep, newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(
                column_types={f"f{i}": pa.string() for i in range(width)},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid:
        return None
    if any(t != pa.string() for t in table.schema.types):
        return None
    text = pd.StringDtype(na_value=np.nan)  # what pandas' parser gives for dtype=str
    return cast(pd.DataFrame, table.to_pandas(types_mapper={pa.string(): text}.get))


def _text_table_by_pandas(path: Path, source: _CsvBytes) -> pd.DataFrame:
    try:
        # header=None keeps duplicate header names as written (pandas would rename them "x.1"),
        # and makes a row longer than the header an error instead of silently shifting columns.
        return pd.read_csv(
            io.BytesIO(source.data),
            encoding="utf-8-sig",
            sep=source.sep,
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


def _read_csv(path: Path) -> pd.DataFrame:
    source = _csv_bytes(path)
    table = _text_table_by_arrow(source)
    if table is None:
        table = _text_table_by_pandas(path, source)
    del source  # the bytes are no longer needed while the frame is cut
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


def _release_arrow_memory() -> None:
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def _use_system_allocator() -> None:
    """Arrow's bundled allocators (mimalloc/jemalloc) keep freed pages for reuse: reading 1M rows
    and then evaluating them peaked ~50 MB higher with them than with the C library's allocator.
    Arrow has one default pool per process, so this is set once, for the whole process."""
    import pyarrow as pa

    if pa.default_memory_pool().backend_name != "system":
        pa.set_memory_pool(pa.system_memory_pool())


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
    _use_system_allocator()
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
        # What a file's reading freed goes back to the system before the next one is read: Arrow's
        # allocator would otherwise keep it, and the peak would grow with every file.
        _release_arrow_memory()
        files[type_name] = path
        results[type_name] = result
        frames[type_name] = result.frame
        problems.extend(result.problems)
    if strict and problems:
        raise InputError(f"data directory {where}", problems)
    return DataSet(frames, results, problems, files)
