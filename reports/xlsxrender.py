"""XLSX workbooks (openpyxl, write-only): one sheet per table, typed cells. Numbers are numbers,
dates are dates, amounts carry a number format; every text cell is written as a string, so no
formula is ever stored (a message starting with "=" stays text)."""

from __future__ import annotations

import io
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from reports.htmlrender import safe_href
from reports.i18n import Lang
from reports.models import Document
from reports.tables import Column, Kind, Table, tables_for, unwrap

EXCEL_MAX_ROWS = 1_048_576
EXCEL_MAX_TEXT = 32_767
EXCEL_MAX_LINKS = 65_000  # Excel keeps at most 65,530 hyperlinks per sheet
FORMATS = {
    Kind.INT: "#,##0",
    Kind.AMOUNT: "#,##0.00",
    Kind.SCORE: "0.0",
    Kind.DELTA: "+0.0;-0.0;0.0",
    Kind.PERCENT: "0.0%",
    Kind.DATE: "yyyy-mm-dd",
    Kind.DATETIME: "yyyy-mm-dd hh:mm",
}
WIDTHS = {
    Kind.INT: 11,
    Kind.AMOUNT: 14,
    Kind.SCORE: 9,
    Kind.DELTA: 9,
    Kind.PERCENT: 10,
    Kind.DATE: 12,
    Kind.DATETIME: 17,
    Kind.LINK: 40,
}
HEADER_FONT = Font(bold=True, color="FFFFFF")
HEADER_FILL = PatternFill("solid", fgColor="2E5C8A")
WRAP = Alignment(wrap_text=True, vertical="top")
_INVALID_SHEET_CHARS = str.maketrans(dict.fromkeys("[]:*?/\\", "_"))


def sheet_name(title: str, used: set[str]) -> str:
    """A valid, unique sheet name (≤ 31 characters, none of []:*?/\\)."""
    base = title.translate(_INVALID_SHEET_CHARS).strip("'")[:31] or "Sheet"
    name, n = base, 2
    while name.lower() in used:
        suffix = f" ({n})"
        name, n = base[: 31 - len(suffix)] + suffix, n + 1
    used.add(name.lower())
    return name


def excel_text(value: str) -> str:
    value = ILLEGAL_CHARACTERS_RE.sub("", value)
    return value if len(value) <= EXCEL_MAX_TEXT else value[: EXCEL_MAX_TEXT - 1] + "…"


def excel_value(value: Any, kind: Kind) -> Any:
    """The cell's value as Excel stores it: aware datetimes as their wall-clock time (Excel has
    no time zones), everything else as it is."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, str):
        return excel_text(value)
    return value


def _plain(value: str, kind: Kind) -> bool:
    """Values openpyxl writes correctly without a cell object of ours (faster): one-line text
    that cannot be taken for a formula (openpyxl makes any text starting with "=" one)."""
    return kind != Kind.LINK and not value.startswith("=") and "\n" not in value


def _cell(ws: Any, value: Any, kind: Kind, links_left: list[int]) -> Any:
    cell = WriteOnlyCell(ws, value=excel_value(value, kind))
    if isinstance(value, str):
        cell.data_type = "s"  # text, even when it starts with = + - @
        if kind == Kind.LINK:
            href = safe_href(value)
            if href is not None and href.startswith(("http://", "https://")) and links_left[0] > 0:
                cell.hyperlink = href
                links_left[0] -= 1
        elif "\n" in value:
            cell.alignment = WRAP
    elif isinstance(value, datetime):
        cell.number_format = FORMATS[Kind.DATETIME]
    elif isinstance(value, date):
        cell.number_format = FORMATS[Kind.DATE]
    elif isinstance(value, int | Decimal) and not isinstance(value, bool):
        cell.number_format = FORMATS.get(kind, FORMATS[Kind.INT] if isinstance(value, int) else "General")
    return cell


def _width(column: Column, lang: Lang) -> float:
    if column.kind in WIDTHS:
        return WIDTHS[column.kind]
    label = len(column.label) * (2 if lang == "zh" else 1)
    return max(10.0, min(60.0, column.width * 14, label + 4)) if column.key != "message" else 70.0


def _write_table(wb: Any, table: Table, lang: Lang, used: set[str]) -> None:
    per_sheet = EXCEL_MAX_ROWS - 1
    chunks = [table.rows[i : i + per_sheet] for i in range(0, len(table.rows), per_sheet)] or [table.rows]
    for chunk in chunks:
        ws = wb.create_sheet(sheet_name(table.title, used))
        for i, column in enumerate(table.columns, start=1):
            ws.column_dimensions[get_column_letter(i)].width = _width(column, lang)
        ws.freeze_panes = "A2"
        if chunk:
            ws.auto_filter.ref = f"A1:{get_column_letter(len(table.columns))}{len(chunk) + 1}"
        header = []
        for column in table.columns:
            cell = WriteOnlyCell(ws, value=excel_text(column.label))
            cell.data_type = "s"
            cell.font = HEADER_FONT
            cell.fill = HEADER_FILL
            header.append(cell)
        ws.append(header)
        links_left = [EXCEL_MAX_LINKS]
        for row in chunk:
            cells: list[Any] = []
            for raw, column in zip(row, table.columns, strict=True):
                value, kind = unwrap(raw, column)
                if value is None:
                    cells.append(None)
                elif isinstance(value, str) and _plain(value, kind):
                    cells.append(excel_text(value))
                else:
                    cells.append(_cell(ws, value, kind, links_left))
            ws.append(cells)


def render_xlsx(document: Document, lang: Lang) -> bytes:
    wb = Workbook(write_only=True)
    used: set[str] = set()
    for table in tables_for(document, lang):
        _write_table(wb, table, lang, used)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
