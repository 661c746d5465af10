"""CSV: one table of a document (its primary table unless another is asked for), UTF-8 with a
BOM so Excel reads Chinese correctly, safe against formula injection: a text cell starting with
= + - @ (or a tab or carriage return) is written with a leading apostrophe. Numbers are plain
(no thousands separators), amounts have two decimals, percentages are fractions (0.853), dates
are ISO dates and instants their wall-clock time in the company's zone (YYYY-MM-DD HH:MM:SS)."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from reports.i18n import Lang
from reports.models import Document
from reports.tables import Kind, Value, primary_table, tables_for, unwrap

BOM = "\ufeff"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """Text that a spreadsheet would take for a formula, made inert."""
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_value(value: Value, kind: Kind) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return neutralise(str(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        if kind == Kind.AMOUNT:
            return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
        if kind == Kind.PERCENT:
            return str(value.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))
        return str(value)
    return neutralise(value)


def render_csv(document: Document, lang: Lang, table: str | None = None) -> bytes:
    tables = {t.key: t for t in tables_for(document, lang)}
    key = table or primary_table(document)
    if key not in tables:
        raise ValueError(f"no table {key!r} in this document; it has: {', '.join(tables)}")
    chosen = tables[key]
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([neutralise(c.label) for c in chosen.columns])
    for row in chosen.rows:
        writer.writerow(
            [csv_value(*unwrap(cell, column)) for cell, column in zip(row, chosen.columns, strict=True)]
        )
    return out.getvalue().encode("utf-8")
