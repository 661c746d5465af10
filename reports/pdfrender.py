"""PDF documents with fpdf2 (pure Python). Text is set in the CJK font from PyPI, embedded as a
subset (`reports.fonts`); charts are the same PNGs as in HTML. Tables longer than `max_rows` show
their first rows and a note pointing to the XLSX/CSV exports."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from datetime import date
from typing import Any

from fpdf import FPDF, FontFace
from fpdf.enums import Align, TableBordersLayout, TableCellFillMode, WrapMode, XPos, YPos

from reports.charts import Chart, render_charts
from reports.fonts import cjk_font_path, drawable, fallback_font_path, needs_fallback
from reports.htmlrender import DEFAULT_MAX_ROWS, both, digest_context, safe_href
from reports.i18n import Lang, Messages, fmt_date, fmt_datetime, fmt_int, fmt_money, fmt_percent, fmt_score
from reports.models import (
    DepartmentScorecard,
    Digest,
    Document,
    RectificationNotice,
    Text,
    ViolationReport,
)
from reports.tables import Kind, Table, display, tables_for, unwrap

FONT = "cjk"
FALLBACK = "fallback"
INK = (31, 41, 51)
MUTED = (102, 120, 138)
ACCENT = (46, 92, 138)
BAND = (243, 246, 249)
LINE = (217, 224, 231)
CRITICAL = (192, 57, 43)
NUMERIC = {Kind.INT, Kind.AMOUNT, Kind.SCORE, Kind.DELTA, Kind.PERCENT}
PAD_X, PAD_Y = 1.4, 1.0  # table cell padding (mm)


_CJK = "\u2e80-\u9fff\u3000-\u303f\uff00-\uffef\uf900-\ufaff“”‘’"
_TOKENS = re.compile(rf"\n|[^\s{_CJK}]+[ \t]*|[{_CJK}][ \t]*|[ \t]+")
_NO_LINE_START = set("，。、；：？！）》」』】〕”’…%,.;:?!)]}")
_NO_LINE_END = set("（《「『【〔“‘([{")


def _tokens(text: str) -> list[str]:
    """Break opportunities: between CJK characters, after spaces, never inside a Latin word or
    an id; closing punctuation stays with what precedes it, opening with what follows."""
    out: list[str] = []
    glue_next = False
    for tok in _TOKENS.findall(text):
        if out and tok != "\n" and out[-1] != "\n" and (glue_next or tok[0] in _NO_LINE_START):
            out[-1] += tok
        else:
            out.append(tok)
        glue_next = tok != "\n" and tok.rstrip()[-1:] in _NO_LINE_END
    return out


class _Pdf(FPDF):
    """A page with a running header (company · document) and a footer (page x of n)."""

    def __init__(self, orientation: str, header_left: str, header_right: str, m: Messages) -> None:
        super().__init__(orientation=orientation, unit="mm", format="A4")
        self.header_left = header_left
        self.header_right = header_right
        self.m = m
        self.set_margins(14, 16, 14)
        self.set_auto_page_break(True, margin=16)
        self.add_font(FONT, "", str(cjk_font_path()))
        self.has_fallback = False  # the fallback font is added when a text first needs it
        self.widths: dict[tuple[float, str], float] = {}
        self.set_font(FONT, size=10)
        self.set_text_color(*INK)
        self.set_creator("zhidu")
        self.set_lang("zh-CN" if m.lang == "zh" else "en")

    def header(self) -> None:
        self.set_font(FONT, size=8)
        self.set_text_color(*MUTED)
        self.set_xy(self.l_margin, 7)
        half = self.epw / 2
        self.cell(half, 5, self.clip(self.header_left, half - 2))
        self.cell(half, 5, self.clip(self.header_right, half - 2), align=Align.R)
        self.set_draw_color(*LINE)
        self.line(self.l_margin, 12.5, self.w - self.r_margin, 12.5)
        self.set_xy(self.l_margin, self.t_margin)
        self.set_text_color(*INK)
        self.set_font(FONT, size=10)

    def footer(self) -> None:
        self.set_y(-11)
        self.set_font(FONT, size=8)
        self.set_text_color(*MUTED)
        self.cell(0, 5, self.m("footer.page", page=self.page_no(), pages="{nb}"), align=Align.C)
        self.set_text_color(*INK)

    # --- building blocks ---

    def drawable(self, text: str) -> str:
        """`text` as the fonts can draw it (see `reports.fonts.drawable`); adds the fallback font
        to the document the first time a text needs it."""
        text = drawable(text)
        if not self.has_fallback and needs_fallback(text):
            self.add_font(FALLBACK, "", str(fallback_font_path()))
            self.set_fallback_fonts([FALLBACK])
            self.has_fallback = True
        return text

    def width_of(self, text: str) -> float:
        """Width (mm) of one line of `text` at the current size; widths are cached per character
        (fpdf2 applies no kerning without text shaping, so the sum is exact)."""
        size = self.font_size_pt
        total = 0.0
        for ch in text:
            w = self.widths.get((size, ch))
            if w is None:
                w = self.widths[(size, ch)] = self.get_string_width(ch)
            total += w
        return total

    def room(self, width: float) -> float:
        """The text width inside a multi_cell of `width`: its inner margins and a hair less."""
        return width - 2 * self.c_margin - 0.3

    def clip(self, text: str, width: float) -> str:
        """`text` cut to one line of `width` (mm), ending in … when cut."""
        text = self.drawable(" ".join(text.split()))
        if self.width_of(text) <= width:
            return text
        while text and self.width_of(text + "…") > width:
            text = text[:-1]
        return text + "…"

    def fit(self, text: str, width: float) -> str:
        """`text` with line breaks where it must wrap within `width` (mm) at the current font
        size: Chinese breaks between characters, other text between words (a word longer than
        the line is split)."""
        text = self.drawable(text)
        if self.width_of(text.replace("\n", "")) <= width and "\n" not in text:
            return text
        lines: list[str] = []
        line, used = "", 0.0
        for token in _tokens(text):
            tok = token
            if tok == "\n":
                lines.append(line.rstrip())
                line, used = "", 0.0
                continue
            w = self.width_of(tok.rstrip())
            if line and used + w > width:
                lines.append(line.rstrip())
                line, used = "", 0.0
                tok = tok.lstrip()
                w = self.width_of(tok.rstrip())
            if w > width:  # a single word wider than the line: split it by characters
                for ch in tok:
                    cw = self.width_of(ch)
                    if line and used + cw > width and not ch.isspace():
                        lines.append(line.rstrip())
                        line, used = "", 0.0
                    line += ch
                    used += cw
                continue
            line += tok
            used += self.width_of(tok)
        lines.append(line.rstrip())
        return "\n".join(lines)

    def text_block(
        self,
        text: str,
        size: float = 10,
        color: tuple[int, int, int] = INK,
        indent: bool = False,
        h: float | None = None,
    ) -> None:
        self.set_font(FONT, size=size)
        self.set_text_color(*color)
        if indent and _has_cjk(text):
            text = "\u3000\u3000" + text
        width = self.w - self.r_margin - self.get_x()
        self.multi_cell(
            width,
            h or size * 0.5,
            self.fit(text, self.room(width)),
            wrapmode=WrapMode.CHAR,
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
        self.set_text_color(*INK)

    def doc_title(self, company: str, title: str, meta: str) -> None:
        self.set_font(FONT, size=9)
        self.set_text_color(*MUTED)
        self.cell(0, 5, self.clip(company, self.epw), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_text_color(*INK)
        self.bold_text(title, 18, 10)
        if meta:
            self.text_block(meta, 9, MUTED)
        self.set_draw_color(*ACCENT)
        self.set_line_width(0.8)
        y = self.get_y() + 1.5
        self.line(self.l_margin, y, self.w - self.r_margin, y)
        self.set_line_width(0.2)
        self.set_y(y + 4)

    def bold_text(self, text: str, size: float, h: float, align: Align = Align.L) -> None:
        """The CJK font has one weight: headings are drawn filled and stroked (a faux bold)."""
        self.set_font(FONT, size=size)
        width = self.w - self.r_margin - self.get_x()
        with self.local_context(text_mode="FILL_STROKE", line_width=size * 0.012, draw_color=self.text_color):
            self.multi_cell(
                width,
                h,
                self.fit(text, self.room(width)),
                align=align,
                wrapmode=WrapMode.CHAR,
                new_x=XPos.LMARGIN,
                new_y=YPos.NEXT,
            )

    def heading(self, text: str, min_space: float = 30) -> None:
        if self.get_y() + min_space > self.page_break_trigger:
            self.add_page()
        self.ln(3)
        y = self.get_y()
        self.set_fill_color(*ACCENT)
        self.rect(self.l_margin, y + 1, 1.2, 5.5, style="F")
        self.set_x(self.l_margin + 3)
        self.set_text_color(*INK)
        self.bold_text(text, 12, 7.5)
        self.ln(1)

    def kpis(self, items: Sequence[tuple[str, str, bool]]) -> None:
        if not items:
            return
        gap = 3.0
        width = (self.epw - gap * (len(items) - 1)) / len(items)
        y = self.get_y()
        for i, (value, label, alert) in enumerate(items):
            x = self.l_margin + i * (width + gap)
            self.set_fill_color(*BAND)
            self.rect(x, y, width, 16, style="F", round_corners=True, corner_radius=1.5)
            self.set_xy(x + 3, y + 1.5)
            self.set_text_color(*(CRITICAL if alert else INK))
            self.set_font(FONT, size=14)
            self.cell(width - 6, 8, self.clip(value, width - 6))
            self.set_xy(x + 3, y + 9.5)
            self.set_text_color(*MUTED)
            self.set_font(FONT, size=8)
            self.cell(width - 6, 5, self.clip(label, width - 6))
        self.set_text_color(*INK)
        self.set_xy(self.l_margin, y + 20)

    def charts_space(self, charts: Sequence[Chart], per_row: int) -> float:
        """Room a charts heading needs below it: the first row of charts (or the "no chart" line),
        so the heading is never left alone at the foot of a page."""
        if not charts:
            return 20
        width = (self.epw - 4.0 * (per_row - 1)) / per_row
        return 12 + max(width * c.height_px / c.width_px for c in charts[:per_row])

    def charts(self, charts: Sequence[Chart], per_row: int, empty: str) -> None:
        if not charts:
            self.text_block(empty, 9, MUTED)
            return
        gap = 4.0
        width = (self.epw - gap * (per_row - 1)) / per_row
        for start in range(0, len(charts), per_row):
            row = charts[start : start + per_row]
            height = max(width * c.height_px / c.width_px for c in row)
            if self.get_y() + height > self.page_break_trigger:
                self.add_page()
            y = self.get_y()
            for i, chart in enumerate(row):
                h = width * chart.height_px / chart.width_px
                self.image(
                    io.BytesIO(chart.png),
                    x=self.l_margin + i * (width + gap),
                    y=y,
                    w=width,
                    h=h,
                    alt_text=chart.title,
                )
            self.set_y(y + height + gap)

    def data_table(
        self, table: Table, max_rows: int | None, width: float | None = None, size: float = 8
    ) -> None:
        columns = [c for c in table.columns if c.in_pdf]
        if not table.rows:
            self.text_block(table.empty or self.m("empty.none"), 9, MUTED)
            return
        idx = [table.columns.index(c) for c in columns]
        rows = table.rows if max_rows is None else table.rows[:max_rows]
        self.set_font(FONT, size=size)
        self.set_draw_color(*LINE)
        lang = self.m.lang
        heading_style = FontFace(
            family=FONT, emphasis="", size_pt=size, color=(255, 255, 255), fill_color=ACCENT
        )
        total = width or self.epw
        weight = sum(c.width for c in columns)
        room = [total * c.width / weight - 2 * PAD_X - 0.4 for c in columns]
        self.set_fill_color(255)  # rows the table does not fill take the current fill colour
        with self.table(
            width=total,
            align=Align.L,
            col_widths=tuple(c.width for c in columns),
            headings_style=heading_style,
            line_height=size * 0.5,
            borders_layout=TableBordersLayout.HORIZONTAL_LINES,
            cell_fill_mode=TableCellFillMode.ROWS,
            cell_fill_color=BAND,
            padding=(PAD_Y, PAD_X),
            wrapmode=WrapMode.CHAR,
            v_align="TOP",
            repeat_headings=1,
        ) as pdf_table:
            head = pdf_table.row()
            for c, r in zip(columns, room, strict=True):
                head.cell(self.fit(c.label, r), align=Align.R if c.kind in NUMERIC else Align.L)
            for raw in rows:
                row = pdf_table.row()
                for c, i, r in zip(columns, idx, room, strict=True):
                    value, kind = unwrap(raw[i], c)
                    text = display(value, kind, lang)
                    row.cell(self.fit(text, r), align=Align.R if kind in NUMERIC else Align.L)
        if len(rows) < len(table.rows):
            self.text_block(
                self.m("note.capped", shown=fmt_int(len(rows)), total=fmt_int(len(table.rows))), 8, MUTED
            )
        for note in table.notes:
            self.text_block(note, 8, MUTED)
        self.ln(2)

    def kv_table(self, table: Table, columns: int = 1, size: float = 9) -> None:
        """Label/value pairs in `columns` side-by-side columns, filled top to bottom."""
        self.set_font(FONT, size=size)
        gap = 6.0
        width = (self.epw - gap * (columns - 1)) / columns
        label_w = width * 0.36
        per_col = -(-len(table.rows) // columns)
        top = self.get_y()
        bottom = top
        for c in range(columns):
            self.set_y(top)
            x = self.l_margin + c * (width + gap)
            for label, cell in table.rows[c * per_col : (c + 1) * per_col]:
                value, kind = unwrap(cell, table.columns[1])
                text = display(value, kind, self.m.lang)
                y = self.get_y()
                self.set_x(x)
                self.set_text_color(*MUTED)
                self.multi_cell(
                    label_w,
                    size * 0.55,
                    self.fit(str(label), self.room(label_w)),
                    wrapmode=WrapMode.CHAR,
                    new_x=XPos.RIGHT,
                    new_y=YPos.TOP,
                )
                self.set_text_color(*INK)
                self.multi_cell(
                    width - label_w,
                    size * 0.55,
                    self.fit(text, self.room(width - label_w)),
                    wrapmode=WrapMode.CHAR,
                    new_x=XPos.LEFT,
                    new_y=YPos.NEXT,
                )
                self.set_y(max(self.get_y(), y + size * 0.55))
            bottom = max(bottom, self.get_y())
        self.set_xy(self.l_margin, bottom + 2)


def _has_cjk(text: str) -> bool:
    return any("\u3000" <= ch <= "\u9fff" or "\uff00" <= ch <= "\uffef" for ch in text)


def _finish(pdf: _Pdf, title: str, author: str) -> bytes:
    pdf.set_title(title)
    pdf.set_author(author)
    return bytes(pdf.output())


def _tables(document: Document, lang: Lang) -> dict[str, Table]:
    return {t.key: t for t in tables_for(document, lang)}


def violation_pdf(report: ViolationReport, lang: Lang, charts: list[Chart], max_rows: int | None) -> bytes:
    m = Messages(lang)
    title = m("doc.violations")
    pdf = _Pdf("L", report.company, f"{title} · {report.period.describe()}", m)
    pdf.add_page()
    tb = _tables(report, lang)
    pdf.doc_title(
        report.company,
        title,
        f"{m('field.period')}: {report.period.describe()}    {m('field.generated_at')}: {fmt_datetime(report.generated_at)}",
    )
    t = report.totals
    pdf.kpis(
        [
            (fmt_int(t.findings), m("field.findings"), False),
            (fmt_int(t.records_checked), m("field.records_checked"), False),
            (fmt_int(t.open_notices), m("field.open_notices"), False),
            (fmt_int(t.overdue_notices), m("field.overdue_notices"), t.overdue_notices > 0),
            (fmt_money(t.fines, lang), m("field.fines"), False),
            (fmt_int(t.performance_points), m("field.performance_points"), False),
        ]
    )
    pdf.kv_table(tb["summary"], columns=2)
    pdf.heading(m("section.charts"), min_space=pdf.charts_space(charts, 2))
    pdf.charts(charts, 2, m("empty.chart"))
    for key in ("by_department", "by_rule", "by_severity", "notices", "penalties", "findings"):
        pdf.heading(tb[key].title, min_space=30 if tb[key].rows else 14)
        narrow = key == "by_severity"
        pdf.data_table(tb[key], max_rows, width=pdf.epw * 0.5 if narrow else None)
    return _finish(pdf, f"{title} {report.period.describe()}", report.company)


def scorecard_pdf(card: DepartmentScorecard, lang: Lang, charts: list[Chart], max_rows: int | None) -> bytes:
    m = Messages(lang)
    title = f"{m('doc.scorecard')} · {m.text(card.dept.name)}"
    pdf = _Pdf("P", card.company, f"{title} · {card.period.describe()}", m)
    pdf.add_page()
    tb = _tables(card, lang)
    pdf.doc_title(
        card.company,
        title,
        f"{m('field.period')}: {card.period.describe()}    {m('field.generated_at')}: {fmt_datetime(card.generated_at)}",
    )
    open_n = sum(1 for n in card.notices if n.status in ("open", "overdue"))
    overdue = sum(1 for n in card.notices if n.status == "overdue")
    pdf.kpis(
        [
            (fmt_score(card.score), m("field.score"), False),
            (m("rank.of", rank=card.rank, of=card.ranked_of), m("field.rank"), False),
            (fmt_percent(card.self_check.accuracy), m("field.self_accuracy"), False),
            (fmt_int(open_n), m("field.open_notices"), overdue > 0),
        ]
    )
    sc = card.self_check
    pdf.text_block(
        m(
            "note.self_check",
            declared=fmt_int(sc.declared),
            found=fmt_int(sc.found),
            matched=fmt_int(sc.matched),
        ),
        9,
        MUTED,
    )
    pdf.heading(m("section.charts"), min_space=pdf.charts_space(charts, 1))
    pdf.charts(charts, 1, m("empty.chart"))
    for key in ("findings_by_rule", "notices", "penalties", "self_check"):
        pdf.heading(tb[key].title, min_space=30 if tb[key].rows else 14)
        pdf.data_table(tb[key], max_rows)
    return _finish(pdf, f"{title} {card.period.describe()}", card.company)


def digest_pdf(digest: Digest, lang: Lang, charts: list[Chart], max_rows: int | None) -> bytes:
    m = Messages(lang)
    ctx = digest_context(digest, m)
    pdf = _Pdf("P", digest.company, f"{ctx['heading']} · {digest.period.describe()}", m)
    pdf.add_page()
    tb = _tables(digest, lang)
    pdf.doc_title(
        digest.company,
        ctx["heading"],
        f"{m('field.period')}: {digest.period.describe()}    {m('field.scope')}: {ctx['scope']}",
    )
    pdf.text_block(m("digest.greeting", manager=digest.manager), 10)
    pdf.ln(1)
    pdf.text_block(
        m(
            "digest.summary",
            new=fmt_int(len(digest.new_notices)),
            overdue=fmt_int(len(digest.overdue_notices)),
            penalties=fmt_int(len(digest.penalties)),
            fines=fmt_money(ctx["fines"], lang),
        ),
        10,
        indent=True,
    )
    pdf.heading(m("section.charts"), min_space=pdf.charts_space(charts, 1))
    pdf.charts(charts, 1, m("empty.chart"))
    for key in ("score_changes", "new_notices", "overdue_notices", "top_rules", "penalties"):
        pdf.heading(tb[key].title, min_space=30 if tb[key].rows else 14)
        pdf.data_table(tb[key], max_rows)
    link = safe_href(digest.link)
    if link:
        pdf.set_text_color(*ACCENT)
        pdf.set_font(FONT, size=9)
        pdf.cell(
            0, 6, pdf.clip(m("digest.open_report"), pdf.epw), link=link, new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )
        pdf.set_text_color(*INK)
    pdf.ln(3)
    pdf.text_block(m("digest.footer"), 8, MUTED)
    return _finish(pdf, f"{ctx['heading']} {digest.period.describe()}", digest.company)


# --- the rectification notice: a formal letter, zh-CN first with en (lang "zh") or en only ---


class _Bi:
    def __init__(self, lang: Lang) -> None:
        self.lang = lang

    def text(self, value: Text | None, sep: str = "\n") -> str:
        if value is None:
            return ""
        if self.lang == "en":
            return value.en
        return value.zh if value.zh == value.en else f"{value.zh}{sep}{value.en}"

    def msg(self, key: str, sep: str = "\n", **values: Any) -> str:
        return self.text(both(key, **values), sep)

    def day(self, value: date, sep: str = " / ") -> str:
        return self.text(Text(zh=fmt_date(value, "zh", long=True), en=fmt_date(value, "en", long=True)), sep)

    def severity(self, severity: str) -> str:
        return self.text(
            Text(
                zh=Messages("zh").known("severity", severity), en=Messages("en").known("severity", severity)
            ),
            " ",
        )


def notice_pdf(notice: RectificationNotice, lang: Lang, max_rows: int | None) -> bytes:
    m = Messages(lang)
    bi = _Bi(lang)
    heading = bi.msg("doc.notice", sep=" ")
    pdf = _Pdf("P", notice.company, f"{heading} {notice.number}", m)
    pdf.add_page()
    pdf.set_font(FONT, size=10)
    pdf.set_text_color(*MUTED)
    pdf.cell(0, 6, pdf.clip(notice.company, pdf.epw), align=Align.C, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(*INK)
    pdf.bold_text(bi.text(both("doc.notice"), " "), 20, 11, align=Align.C)
    pdf.set_font(FONT, size=10)
    pdf.cell(
        0,
        6,
        pdf.clip(f"{bi.msg('notice.number_label', sep=' ')}: {notice.number}", pdf.epw),
        align=Align.R,
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.set_draw_color(*ACCENT)
    pdf.set_line_width(0.8)
    pdf.line(pdf.l_margin, pdf.get_y() + 1, pdf.w - pdf.r_margin, pdf.get_y() + 1)
    pdf.set_line_width(0.2)
    pdf.ln(4)

    rows = [
        (bi.msg("field.dept", sep=" "), bi.text(notice.dept.name, " / ")),
        (bi.msg("field.issued_on", sep=" "), bi.day(notice.issued_on)),
        (bi.msg("field.deadline", sep=" "), bi.day(notice.deadline)),
    ]
    for label, value in rows:
        pdf.set_font(FONT, size=10)
        pdf.set_text_color(*MUTED)
        pdf.cell(48, 6.5, pdf.clip(label, 47))
        pdf.set_text_color(*INK)
        pdf.multi_cell(
            pdf.epw - 48,
            6.5,
            pdf.fit(value, pdf.room(pdf.epw - 48)),
            wrapmode=WrapMode.CHAR,
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
    pdf.ln(3)
    deadline = Text(
        zh=fmt_date(notice.deadline, "zh", long=True), en=fmt_date(notice.deadline, "en", long=True)
    )
    for key, values in (
        ("notice.addressee", {"dept": notice.dept.name}),
        ("notice.intro", {"deadline": deadline, "count": len(notice.findings)}),
    ):
        para = both(key, **values)
        if lang == "zh":
            pdf.text_block(para.zh, 10.5, indent=key == "notice.intro", h=6)
            pdf.text_block(para.en, 9, MUTED, h=4.8)
        else:
            pdf.text_block(para.en, 10.5, h=6)
        pdf.ln(1.5)

    pdf.heading(bi.msg("section.notice_findings", sep=" / "))
    if notice.findings:
        findings = notice.findings if max_rows is None else notice.findings[:max_rows]
        cols = [
            (bi.msg("col.no", sep="\n"), 0.55, True),
            (bi.msg("col.rule_record", sep="\n"), 2.1, False),
            (bi.msg("col.message", sep="\n"), 3.0, False),
            (bi.msg("col.clause_text", sep="\n"), 3.2, False),
            (bi.msg("col.responsible", sep="\n"), 1.05, False),
        ]
        size = 7.5
        pdf.set_draw_color(*LINE)
        pdf.set_fill_color(255)
        pdf.set_font(FONT, size=size)
        weight = sum(w for _, w, _ in cols)
        room = [pdf.epw * w / weight - 2 * PAD_X - 0.4 for _, w, _ in cols]
        with pdf.table(
            col_widths=tuple(w for _, w, _ in cols),
            headings_style=FontFace(
                family=FONT, emphasis="", size_pt=size, color=(255, 255, 255), fill_color=ACCENT
            ),
            line_height=size * 0.5,
            borders_layout=TableBordersLayout.HORIZONTAL_LINES,
            cell_fill_mode=TableCellFillMode.ROWS,
            cell_fill_color=BAND,
            padding=(PAD_Y + 0.2, PAD_X),
            wrapmode=WrapMode.CHAR,
            v_align="TOP",
        ) as table:
            head = table.row()
            for (label, _, right), r in zip(cols, room, strict=True):
                head.cell(pdf.fit(label, r), align=Align.R if right else Align.L)
            for i, f in enumerate(findings, start=1):
                row = table.row()
                clauses = "\n".join(
                    f"{c.id} {bi.text(c.title, ' / ')}"
                    + (f"\n{bi.text(c.text)}" if c.text is not None else "")
                    for c in f.clauses
                )
                for (text, right), r in zip(
                    (
                        (str(i), True),
                        (
                            f"{f.rule} [{bi.severity(f.severity)}]\n{bi.text(f.rule_title)}\n{f.record_type} {f.record_id}",
                            False,
                        ),
                        (bi.text(f.message), False),
                        (clauses, False),
                        (f.responsible or "", False),
                    ),
                    room,
                    strict=True,
                ):
                    row.cell(pdf.fit(text, r), align=Align.R if right else Align.L)
        if len(findings) < len(notice.findings):
            pdf.text_block(
                m("note.capped", shown=fmt_int(len(findings)), total=fmt_int(len(notice.findings))), 8, MUTED
            )
    else:
        pdf.text_block(bi.msg("empty.findings", sep=" "), 9, MUTED)

    pdf.heading(bi.msg("section.responsible", sep=" / "))
    if notice.responsible:
        for p in notice.responsible:
            pdf.set_font(FONT, size=10)
            pdf.cell(40, 6, pdf.clip(p.name, 39))
            pdf.text_block(bi.text(p.role, " / "), 10, h=6)
    else:
        pdf.text_block(bi.msg("empty.responsible", sep=" "), 9, MUTED)

    pdf.heading(bi.msg("section.to_submit", sep=" / "))
    if notice.to_submit:
        for i, item in enumerate(notice.to_submit, start=1):
            pdf.set_font(FONT, size=10)
            pdf.cell(7, 6, f"{i}.")
            pdf.text_block(bi.text(item, "\n"), 10, h=6)
    else:
        pdf.text_block(bi.msg("empty.to_submit", sep=" "), 9, MUTED)
    pdf.ln(3)
    closing = both("notice.closing")
    if lang == "zh":
        pdf.text_block(closing.zh, 10.5, indent=True, h=6)
        pdf.text_block(closing.en, 9, MUTED, h=4.8)
    else:
        pdf.text_block(closing.en, 10.5, h=6)
    _signature(pdf, notice, bi)
    return _finish(pdf, f"{m('doc.notice')} {notice.number}", notice.company)


def _signature(pdf: _Pdf, notice: RectificationNotice, bi: _Bi) -> None:
    block = 56.0
    if pdf.get_y() + block + 8 > pdf.page_break_trigger:
        pdf.add_page()
    pdf.ln(8)
    top = pdf.get_y()
    gap = 10.0
    width = (pdf.epw - gap) / 2
    s = notice.signature
    columns = [
        [
            (bi.msg("sign.issuing_body", sep=" / "), bi.text(s.issuing_body, " / ")),
            (bi.msg("sign.signer", sep=" / "), s.signer),
            (bi.msg("sign.date", sep=" / "), bi.day(notice.issued_on)),
        ],
        [
            (bi.msg("sign.received", sep=" / "), bi.text(notice.dept.name, " / ")),
            (bi.msg("sign.recipient", sep=" / "), s.recipient),
            (bi.msg("sign.date", sep=" / "), ""),
        ],
    ]
    pdf.set_draw_color(*INK)
    bottom = top
    for i, lines in enumerate(columns):
        x = pdf.l_margin + i * (width + gap)
        pdf.line(x, top, x + width, top)
        pdf.set_xy(x, top + 2)
        for row, (label, value) in enumerate(lines):
            pdf.set_x(x)
            pdf.set_font(FONT, size=8)
            pdf.set_text_color(*MUTED)
            pdf.multi_cell(
                width,
                4.2,
                pdf.fit(label, pdf.room(width)),
                wrapmode=WrapMode.CHAR,
                new_x=XPos.LEFT,
                new_y=YPos.NEXT,
            )
            pdf.set_x(x)
            pdf.set_font(FONT, size=10.5)
            pdf.set_text_color(*INK)
            y = pdf.get_y()
            pdf.multi_cell(
                width,
                6,
                pdf.fit(value, pdf.room(width)),
                wrapmode=WrapMode.CHAR,
                new_x=XPos.LEFT,
                new_y=YPos.NEXT,
            )
            line_y = max(pdf.get_y(), y + 6) + (7.0 if row == 1 else 0.5)  # room to sign
            pdf.set_draw_color(*LINE)
            pdf.line(x, line_y, x + width, line_y)
            pdf.set_y(line_y + 2)
        bottom = max(bottom, pdf.get_y())
    pdf.set_text_color(*INK)
    pdf.set_xy(pdf.l_margin, bottom)


def render_pdf(
    document: Document,
    lang: Lang,
    *,
    max_rows: int | None = DEFAULT_MAX_ROWS,
    charts: list[Chart] | None = None,
) -> bytes:
    if isinstance(document, RectificationNotice):
        return notice_pdf(document, lang, max_rows)
    if charts is None:
        charts = render_charts(document, lang)
    if isinstance(document, ViolationReport):
        return violation_pdf(document, lang, charts, max_rows)
    if isinstance(document, DepartmentScorecard):
        return scorecard_pdf(document, lang, charts, max_rows)
    return digest_pdf(document, lang, charts, max_rows)
