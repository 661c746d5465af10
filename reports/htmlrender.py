"""HTML documents from the Jinja2 templates under `templates/` (autoescaped): self-contained pages
with the stylesheet inline and the charts as inline PNG (data: URIs), and the digest as an email
(HTML with cid: images, plain text, subject)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

from reports.charts import Chart, render_charts
from reports.i18n import (
    CatalogError,
    Lang,
    Messages,
    fmt_date,
    fmt_datetime,
    fmt_delta,
    fmt_int,
    fmt_money,
    fmt_percent,
    fmt_score,
)
from reports.models import (
    SEVERITIES,
    DepartmentScorecard,
    Digest,
    Document,
    RectificationNotice,
    Text,
    ViolationReport,
)
from reports.tables import Column, Kind, Table, Value, display, tables_for, unwrap

TEMPLATES = Path(__file__).parent / "templates"
NUMERIC = {Kind.INT, Kind.AMOUNT, Kind.SCORE, Kind.DELTA, Kind.PERCENT}
DEFAULT_MAX_ROWS = 1000


@lru_cache(maxsize=1)
def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,  # every template, whatever its name: data never becomes markup
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def safe_href(link: str | None) -> str | None:
    """Only http(s) URLs and absolute paths become links (no javascript:, data:, ...)."""
    if not link:
        return None
    link = link.strip()
    if link.startswith("/") and not link.startswith("//"):
        return link
    try:
        scheme = urlsplit(link).scheme.lower()
    except ValueError:
        return None
    return link if scheme in ("http", "https") else None


def data_uri(chart: Chart) -> str:
    return "data:image/png;base64," + base64.b64encode(chart.png).decode("ascii")


def _cell_helpers(m: Messages) -> tuple[Callable[[Any, Column], Markup], Callable[[Column], Markup]]:
    severity_of = {m.known("severity", s): s for s in SEVERITIES}

    def td(cell: Any, column: Column) -> Markup:
        value: Value
        value, kind = unwrap(cell, column)
        if kind == Kind.LINK:
            href = safe_href(value if isinstance(value, str) else None)
            if href is None:
                return Markup("<td></td>")
            return Markup('<td><a href="{}">{}</a></td>').format(href, m("col.open"))
        text = display(value, kind, m.lang)
        classes = []
        if kind in NUMERIC:
            classes.append("num")
        if column.key == "severity" and text in severity_of:
            classes.append(f"sev-{severity_of[text]}")
        if "\n" in text:
            classes.append("pre")
        if classes:
            return Markup('<td class="{}">{}</td>').format(" ".join(classes), text)
        return Markup("<td>{}</td>").format(text)

    def th(column: Column) -> Markup:
        if column.kind in NUMERIC:
            return Markup('<th class="num">{}</th>').format(column.label)
        return Markup("<th>{}</th>").format(column.label)

    return td, th


def _bilingual(lang: Lang) -> dict[str, Any]:
    """Helpers of the notice: zh-CN first with en below for lang "zh", en only for "en"."""

    def pick(text: Text) -> Markup:
        if lang == "en":
            return escape(text.en)
        if text.zh == text.en:
            return escape(text.zh)
        return Markup('{}<span class="en">{}</span>').format(text.zh, text.en)

    def bi(key: str, **values: Any) -> Markup:
        return pick(both(key, **values))

    def bt(text: Text | None) -> Markup:
        return Markup("") if text is None else pick(text)

    def bd(day: date) -> Markup:
        return pick(Text(zh=fmt_date(day, "zh", long=True), en=fmt_date(day, "en", long=True)))

    def bsev(severity: str) -> Markup:
        return pick(
            Text(zh=Messages("zh").known("severity", severity), en=Messages("en").known("severity", severity))
        )

    def bil(key: str) -> str:
        text = both(key)
        return text.en if lang == "en" else f"{text.zh} {text.en}"

    return {"bi": bi, "bil": bil, "bt": bt, "bd": bd, "bsev": bsev}


def both(key: str, **values: Any) -> Text:
    """A catalog message in zh and en; Text values are put in per language."""
    zh = {k: (v.zh if isinstance(v, Text) else v) for k, v in values.items()}
    en = {k: (v.en if isinstance(v, Text) else v) for k, v in values.items()}
    return Text(zh=Messages("zh")(key, **zh), en=Messages("en")(key, **en))


def _context(document: Document, lang: Lang, charts: list[Chart], max_rows: int | None) -> dict[str, Any]:
    m = Messages(lang)
    td, th = _cell_helpers(m)
    tables: dict[str, Table] = {t.key: t for t in tables_for(document, lang)}
    ctx: dict[str, Any] = {
        "doc": document,
        "lang": lang,
        "t": m,
        "td": td,
        "th": th,
        "tables": tables,
        "charts": {c.key: c for c in charts},
        "img": data_uri,
        "limit": max_rows,
        "fmt_int": fmt_int,
        "fmt_money": lambda v: fmt_money(v, lang),
        "fmt_score": fmt_score,
        "fmt_percent": fmt_percent,
        "fmt_delta": fmt_delta,
        "fmt_datetime": fmt_datetime,
        "fmt_date": lambda d: fmt_date(d, lang),
        "generated_at": getattr(document, "generated_at", None),
    }
    if isinstance(document, DepartmentScorecard):
        ctx["open_notices"] = sum(1 for n in document.notices if n.status in ("open", "overdue"))
        ctx["overdue_notices"] = sum(1 for n in document.notices if n.status == "overdue")
    if isinstance(document, Digest):
        ctx.update(digest_context(document, m))
    if isinstance(document, RectificationNotice):
        ctx.update(_bilingual(lang))
        ctx["dept_names"] = document.dept.name
        ctx["deadline_texts"] = Text(
            zh=fmt_date(document.deadline, "zh", long=True), en=fmt_date(document.deadline, "en", long=True)
        )
    return ctx


def digest_context(digest: Digest, m: Messages) -> dict[str, Any]:
    fines = sum((p.amount or Decimal(0) for p in digest.penalties), Decimal(0))
    key = f"doc.digest_{digest.cadence}"
    try:
        heading = m(key)
    except CatalogError:  # a cadence without a heading of its own
        heading = m("doc.digest")
    return {
        "fines": fines,
        "heading": heading,
        "scope": ", ".join(m.text(d.name) for d in digest.scope) or m("scope.all"),
        "subject": digest_subject(digest, m.lang),
        "link": safe_href(digest.link),
    }


def digest_subject(digest: Digest, lang: Lang) -> str:
    m = Messages(lang)
    subject = m(
        "digest.subject",
        company=digest.company,
        period=digest.period.describe(),
        new=len(digest.new_notices),
        overdue=len(digest.overdue_notices),
    )
    return " ".join(subject.split())  # a header is one line whatever the data holds


TEMPLATE_OF: dict[type, str] = {
    ViolationReport: "violations.html",
    DepartmentScorecard: "scorecard.html",
    RectificationNotice: "notice.html",
    Digest: "digest.html",
}


def render_html(
    document: Document,
    lang: Lang,
    *,
    max_rows: int | None = DEFAULT_MAX_ROWS,
    charts: list[Chart] | None = None,
    image_src: Callable[[Chart], str] = data_uri,
) -> str:
    """The document as one HTML page. Tables longer than `max_rows` show their first rows and a
    note pointing to the XLSX/CSV exports (None: no limit)."""
    if charts is None:
        charts = render_charts(document, lang)
    ctx = _context(document, lang, charts, max_rows)
    ctx["img"] = image_src
    return environment().get_template(TEMPLATE_OF[type(document)]).render(ctx)


@dataclass(frozen=True, slots=True)
class InlineImage:
    cid: str  # Content-ID without angle brackets; the HTML refers to it as cid:<cid>
    filename: str
    png: bytes


@dataclass(frozen=True, slots=True)
class DigestEmail:
    """A digest ready for a multipart/related email: subject, HTML whose images are cid: links
    to `images`, and a plain-text alternative."""

    subject: str
    html: str
    text: str
    images: list[InlineImage]


def render_digest_email(
    digest: Digest, lang: Lang, *, max_rows: int | None = 50, cid_domain: str = "zhidu"
) -> DigestEmail:
    charts = render_charts(digest, lang)
    images = [InlineImage(f"{c.key}@{cid_domain}", f"{c.key}.png", c.png) for c in charts]
    cids = {c.key: i.cid for c, i in zip(charts, images, strict=True)}
    html = render_html(
        digest, lang, max_rows=max_rows, charts=charts, image_src=lambda c: f"cid:{cids[c.key]}"
    )
    return DigestEmail(digest_subject(digest, lang), html, digest_text(digest, lang), images)


def digest_text(digest: Digest, lang: Lang) -> str:
    """The digest as plain text (the email's text/plain part)."""
    m = Messages(lang)
    ctx = digest_context(digest, m)
    lines = [
        ctx["heading"] + f" · {digest.company} · {digest.period.describe()}",
        "",
        m("digest.greeting", manager=digest.manager),
        m(
            "digest.summary",
            new=fmt_int(len(digest.new_notices)),
            overdue=fmt_int(len(digest.overdue_notices)),
            penalties=fmt_int(len(digest.penalties)),
            fines=fmt_money(ctx["fines"], lang),
        ),
    ]
    for table in tables_for(digest, lang)[1:]:
        lines += ["", f"## {table.title}"]
        if not table.rows:
            lines.append(table.empty)
            continue
        lines.append(" | ".join(c.label for c in table.columns))
        for row in table.rows[:50]:
            lines.append(
                " | ".join(
                    display(*unwrap(cell, col), lang) for cell, col in zip(row, table.columns, strict=True)
                )
            )
        if len(table.rows) > 50:
            lines.append(m("note.capped", shown=fmt_int(50), total=fmt_int(len(table.rows))))
    if ctx["link"]:
        lines += ["", f"{m('digest.open_report')}: {ctx['link']}"]
    lines += ["", m("digest.footer")]
    return "\n".join(lines) + "\n"
