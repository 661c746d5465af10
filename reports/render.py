"""One entry point: `render(document, fmt, lang)` -> bytes."""

from __future__ import annotations

from typing import Literal

from reports.csvrender import render_csv
from reports.htmlrender import DEFAULT_MAX_ROWS, render_html
from reports.i18n import check_lang
from reports.models import Document
from reports.pdfrender import render_pdf
from reports.xlsxrender import render_xlsx

Format = Literal["html", "pdf", "xlsx", "csv"]
FORMATS: tuple[Format, ...] = ("html", "pdf", "xlsx", "csv")
MEDIA_TYPES: dict[Format, str] = {
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
}


def render(
    document: Document,
    fmt: Format,
    lang: str = "zh",
    *,
    max_rows: int | None = DEFAULT_MAX_ROWS,
    table: str | None = None,
) -> bytes:
    """Render a document.

    fmt: "html" (one self-contained page, UTF-8), "pdf", "xlsx" (one sheet per table) or "csv"
    (one table: the document's primary table, or `table`, a key from `reports.tables`).
    lang: "zh" or "en" (the rectification notice in "zh" is zh-CN first with en).
    max_rows: HTML and PDF list at most this many rows per table, with a note that XLSX/CSV hold
    all of them (None: no limit). XLSX and CSV always hold every row.
    """
    language = check_lang(lang)
    if fmt == "html":
        return render_html(document, language, max_rows=max_rows).encode("utf-8")
    if fmt == "pdf":
        return render_pdf(document, language, max_rows=max_rows)
    if fmt == "xlsx":
        return render_xlsx(document, language)
    if fmt == "csv":
        return render_csv(document, language, table=table)
    raise ValueError(f"fmt must be one of {', '.join(FORMATS)}, not {fmt!r}")
