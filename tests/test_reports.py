"""Rendering of the reports: every document in zh and en in every format, from sample data with
Chinese names, long texts, formula-like and markup text, and empty lists.

PDFs are read back with pypdf: the Chinese text must come out as it went in (a glyph the font
lacks would be missing from the extracted text) and the embedded font must be the CJK font from
PyPI. XLSX cells are checked for their types, CSV for formula neutralisation, HTML for escaping,
charts for the font they were drawn with."""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import re
import zipfile
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader

from reports import (
    FORMATS,
    Department,
    Digest,
    Document,
    RectificationNotice,
    Text,
    render,
    render_charts,
    render_digest_email,
    samples,
)
from reports.csvrender import neutralise
from reports.fonts import CJK_FAMILY, REPLACEMENT, cjk_font_path, uncovered
from reports.htmlrender import safe_href
from reports.i18n import LANGS, Messages, catalog
from reports.models import ViolationReport
from reports.tables import primary_table, tables_for

REPORTS = Path(__file__).resolve().parents[1] / "reports"
DOCUMENTS: dict[str, Document] = {
    "violations": samples.violation_report(60),
    "scorecard": samples.scorecard(),
    "notice": samples.notice(),
    "digest": samples.digest(),
    "violations_empty": samples.empty_violation_report(),
    "scorecard_empty": samples.empty_scorecard(),
    "notice_empty": samples.empty_notice(),
    "digest_empty": samples.empty_digest(),
}


@cache
def rendered(name: str, fmt: str, lang: str) -> bytes:
    return render(DOCUMENTS[name], fmt, lang)  # type: ignore[arg-type]


def squash(text: str) -> str:
    """Text without whitespace: PDF extraction puts line breaks where the layout wrapped."""
    return re.sub(r"\s+", "", text)


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)


def pdf_fonts(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    fonts: dict[str, dict[str, Any]] = {}
    for page in PdfReader(io.BytesIO(data)).pages:
        resources: Any = page["/Resources"]
        for ref in resources.get("/Font", {}).values():
            font: Any = ref.get_object()
            descendant: Any = font["/DescendantFonts"][0].get_object() if "/DescendantFonts" in font else font
            descriptor: Any = descendant.get("/FontDescriptor")
            descriptor = descriptor.get_object() if descriptor is not None else {}
            fonts[str(font["/BaseFont"])] = {
                "subtype": str(font["/Subtype"]),
                "cid_subtype": str(descendant["/Subtype"]),
                "embedded": any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3")),
                "to_unicode": "/ToUnicode" in font,
            }
    return list(fonts.items())


def expected_strings(doc: Document, lang: str) -> list[str]:
    """Texts from the data that the document must show, in the language it is rendered in."""
    m = Messages("zh" if lang == "zh" else "en")
    out = [doc.company]
    if isinstance(doc, ViolationReport):
        out += [m("doc.violations")]
        out += [m.text(d.dept.name) for d in doc.by_department]
        out += [m.text(r.title) for r in doc.by_rule]
        out += [f.responsible or "" for f in doc.findings[:25]]
        out += [m.text(f.message) for f in doc.findings[:25]]
        out += [p.person for p in doc.penalties]
    elif isinstance(doc, RectificationNotice):
        out += [doc.number, doc.signature.signer, doc.signature.recipient]
        out += [p.name for p in doc.responsible]
        langs = ("zh", "en") if lang == "zh" else ("en",)
        for ln in langs:  # the notice in zh is bilingual: zh-CN first with en
            mm = Messages(ln)  # type: ignore[arg-type]
            out += [mm("doc.notice"), mm.text(doc.dept.name), mm.text(doc.signature.issuing_body)]
            out += [mm.text(f.message) for f in doc.findings]
            out += [mm.text(c.text) for f in doc.findings for c in f.clauses]
            out += [mm.text(s) for s in doc.to_submit]
    elif isinstance(doc, Digest):
        out += [doc.manager] + [m.text(d.name) for d in doc.scope]
        out += [m.text(r.title) for r in doc.top_rules] + [p.person for p in doc.penalties]
    else:
        out += [m("doc.scorecard"), m.text(doc.dept.name)]
        out += [m.text(r.title) for r in doc.findings_by_rule] + [p.person for p in doc.penalties]
    return [s for s in out if s]


# --- every document, every format, both languages ---


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", list(DOCUMENTS))
def test_every_document_renders_in_every_format(name: str, fmt: str, lang: str) -> None:
    data = rendered(name, fmt, lang)
    if fmt == "html":
        assert data.startswith(b"<!DOCTYPE html>")
        data.decode("utf-8")
    elif fmt == "pdf":
        assert data.startswith(b"%PDF-")
        assert len(PdfReader(io.BytesIO(data)).pages) >= 1
    elif fmt == "xlsx":
        assert "xl/workbook.xml" in zipfile.ZipFile(io.BytesIO(data)).namelist()
    else:
        assert data.startswith("\ufeff".encode())


def test_bad_arguments_are_refused() -> None:
    doc = DOCUMENTS["digest"]
    with pytest.raises(ValueError, match="lang"):
        render(doc, "html", "fr")
    with pytest.raises(ValueError, match="fmt"):
        render(doc, "docx", "zh")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no table"):
        render(doc, "csv", "zh", table="nope")


# --- PDF: Chinese text and the embedded CJK font ---


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", list(DOCUMENTS))
def test_pdf_text_comes_back_exactly_and_font_is_the_embedded_cjk_font(name: str, lang: str) -> None:
    data = rendered(name, "pdf", lang)
    text = squash(pdf_text(data))
    missing = [s for s in expected_strings(DOCUMENTS[name], lang) if squash(s) not in text]
    assert missing == []
    assert REPLACEMENT not in text
    fonts = pdf_fonts(data)
    cjk = [f for base, f in fonts if base.endswith("+" + CJK_FAMILY.replace(" ", ""))]
    assert len(cjk) == 1, fonts
    assert cjk[0] == {
        "subtype": "/Type0",
        "cid_subtype": "/CIDFontType2",
        "embedded": True,
        "to_unicode": True,
    }
    for base, font in fonts:  # every font is embedded as a subset (no font the reader must have)
        assert re.match(r"/?[A-Z]{6}\+", base), base
        assert font["embedded"], base


def test_sample_texts_are_all_covered_by_the_fonts() -> None:
    rare = "司马龑 上官喆 皇甫堃 诸葛燚 欧阳娜娜 “引号” ¥1,234.50 — …"
    assert uncovered(rare) == set()
    for name, doc in DOCUMENTS.items():
        for lang in LANGS:
            for table in tables_for(doc, lang):
                cells = " ".join(str(c) for row in table.rows for c in row)
                assert uncovered(cells + table.title) == set(), name


def test_pdf_never_holds_a_silent_notdef(caplog: pytest.LogCaptureFixture) -> None:
    """A character no font has (here CJK Extension B) is shown as U+FFFD, never as an invisible
    .notdef; and fpdf2 reports no missing glyph for any sample document."""
    base = samples.notice()
    odd = "𠀀"
    assert uncovered(odd) == {odd}
    doc = RectificationNotice(
        number=base.number,
        company=base.company,
        dept=Department("X", Text(f"采购{odd}部", f"Procurement {odd}")),
        issued_on=base.issued_on,
        deadline=base.deadline,
        findings=base.findings,
        responsible=base.responsible,
        to_submit=base.to_submit,
        signature=base.signature,
    )
    with caplog.at_level(logging.WARNING, logger="fpdf"):
        text = squash(pdf_text(render(doc, "pdf", "zh")))
        for name in DOCUMENTS:
            rendered(name, "pdf", "zh")
    assert f"采购{REPLACEMENT}部" in text
    assert odd not in text
    assert not [r for r in caplog.records if "missing" in r.getMessage()]


def test_pdf_font_is_the_one_from_pypi() -> None:
    path = cjk_font_path()
    assert "site-packages" in path.parts or "dist-packages" in path.parts
    assert path.parent.parent.name == "paperang_p2_fonts_cjk"


def test_large_report_caps_html_and_pdf_and_keeps_everything_in_xlsx_and_csv() -> None:
    doc = samples.violation_report(1_300)
    html = render(doc, "html", "zh", max_rows=1000).decode()
    assert "仅显示前 1,000 条，共 1,300 条" in html
    assert 1000 < html.count("<tr") < 1100  # the findings capped, the small tables whole
    pdf = render(doc, "pdf", "en", max_rows=200)
    assert "Showingthefirst200of1,300rows" in squash(pdf_text(pdf))
    wb = load_workbook(io.BytesIO(render(doc, "xlsx", "en")), read_only=True)
    assert sum(1 for _ in wb["Findings"].iter_rows(values_only=True)) == 1_300 + 1
    rows = list(csv.reader(io.StringIO(render(doc, "csv", "en").decode("utf-8-sig"))))
    assert len(rows) == 1_300 + 1


# --- XLSX: one sheet per table, typed cells, never a formula ---


@pytest.mark.parametrize("lang", LANGS)
def test_xlsx_has_one_sheet_per_table_with_typed_cells(lang: str) -> None:
    doc = DOCUMENTS["violations"]
    assert isinstance(doc, ViolationReport)
    data = rendered("violations", "xlsx", lang)
    wb = load_workbook(io.BytesIO(data))
    tables = tables_for(doc, lang)  # type: ignore[arg-type]
    assert wb.sheetnames == [t.title for t in tables]
    m = Messages(lang)  # type: ignore[arg-type]

    findings = list(wb[m("sheet.findings")].iter_rows())
    header = [c.value for c in findings[0]]
    assert header == [c.label for c in tables[-1].columns]
    assert len(findings) == len(doc.findings) + 1
    col = {key: i for i, key in enumerate(c.key for c in tables[-1].columns)}
    first, second = findings[1], findings[2]
    # formula-like text stays text: the raw XML below holds no <f> element at all
    assert first[col["record_id"]].value == doc.findings[0].record_id
    assert first[col["record_id"]].data_type == "s"
    assert first[col["responsible"]].value == "@欧阳娜娜"
    assert first[col["message"]].value.startswith("-")
    assert first[col["link"]].hyperlink is None  # javascript: is not a link
    assert second[col["link"]].hyperlink is None  # a relative path is text in Excel
    third = findings[3]
    assert third[col["link"]].hyperlink.target.startswith("https://")
    found = third[col["found_at"]]
    assert isinstance(found.value, datetime)
    assert found.value.tzinfo is None
    assert found.value == doc.findings[2].found_at.replace(tzinfo=None)  # type: ignore[union-attr]
    assert found.number_format == "yyyy-mm-dd hh:mm"

    by_dept = list(wb[m("sheet.by_department")].iter_rows(min_row=2))
    assert isinstance(by_dept[0][2].value, int)
    assert by_dept[0][2].number_format == "#,##0"
    assert isinstance(by_dept[0][7].value, float)
    assert by_dept[0][7].number_format == "0.0%"

    summary = {r[0].value: r[1] for r in wb[m("sheet.summary")].iter_rows(min_row=2)}
    fines = summary[m("field.fines")]
    assert isinstance(fines.value, int | float)
    assert Decimal(str(fines.value)) == doc.totals.fines
    assert fines.number_format == "#,##0.00"
    start = summary[m("field.period_start")]
    assert isinstance(start.value, datetime)
    assert start.value.date() == date(2026, 10, 1)
    assert start.number_format == "yyyy-mm-dd"

    penalties = list(wb[m("sheet.penalties")].iter_rows(min_row=2))
    amounts = [r[4] for r in penalties if r[4].value is not None]
    assert amounts
    assert all(isinstance(c.value, int | float) and c.number_format == "#,##0.00" for c in amounts)

    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for name in z.namelist():
            if name.startswith("xl/worksheets/sheet"):
                xml = z.read(name)
                assert b"<f>" not in xml, name
                assert b"<f " not in xml, name


def test_xlsx_of_every_document_holds_every_table_row() -> None:
    for name, doc in DOCUMENTS.items():
        wb = load_workbook(io.BytesIO(rendered(name, "xlsx", "zh")), read_only=True)
        for table in tables_for(doc, "zh"):
            rows = sum(1 for _ in wb[table.title].iter_rows(values_only=True))
            assert rows == len(table.rows) + 1, (name, table.key)


# --- CSV: UTF-8 with BOM, formula injection neutralised ---


def test_csv_neutralises_formulas_and_keeps_numbers() -> None:
    data = rendered("violations", "csv", "zh")
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    doc = DOCUMENTS["violations"]
    assert isinstance(doc, ViolationReport)
    assert len(rows) == len(doc.findings) + 1
    header = rows[0]
    first = dict(zip(header, rows[1], strict=True))
    m = Messages("zh")
    assert first[m("col.record_id")] == "'" + doc.findings[0].record_id
    assert first[m("col.responsible")] == "'@欧阳娜娜"
    assert first[m("col.message")].startswith("'-报销单备注")
    assert first[m("col.found_at")] == "2026-10-01 08:00:00"
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    assert "司马龑" in data.decode("utf-8-sig")


def test_csv_numbers_stay_numbers_and_other_tables_can_be_chosen() -> None:
    doc = DOCUMENTS["digest"]
    assert primary_table(doc) == "score_changes"
    rows = list(csv.reader(io.StringIO(render(doc, "csv", "en").decode("utf-8-sig"))))
    deltas = [r[3] for r in rows[1:] if r[3]]
    assert any(d.startswith("-") for d in deltas)  # a negative number is a number, not a formula
    assert all(Decimal(d) for d in deltas)
    penalties = list(csv.reader(io.StringIO(render(doc, "csv", "en", table="penalties").decode("utf-8-sig"))))
    assert penalties[0][0] == "Name"
    assert len(penalties) == len(doc.penalties) + 1  # type: ignore[union-attr]
    assert [neutralise(x) for x in ("=1+1", "+1", "-x", "@a", "\tx", "ok")] == [
        "'=1+1",
        "'+1",
        "'-x",
        "'@a",
        "'\tx",
        "ok",
    ]


# --- HTML: autoescaped, self-contained ---


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", list(DOCUMENTS))
def test_html_is_self_contained_and_escaped(name: str, lang: str) -> None:
    html = rendered(name, "html", lang).decode("utf-8")
    assert "<script" not in html.lower()
    assert "javascript:" not in html
    assert not re.search(
        r"""(src|href)=["']?(https?:)?//""", html.replace('href="https://zhidu.example.cn', "")
    )
    assert "<link" not in html
    assert "<style>" in html
    assert f'lang="{"zh-CN" if lang == "zh" else "en"}"' in html
    for s in expected_strings(DOCUMENTS[name], lang):
        if "<" not in s and "'" not in s and '"' not in s and "&" not in s:
            assert s in html, s
    charts = render_charts(DOCUMENTS[name], lang)  # type: ignore[arg-type]
    assert html.count('src="data:image/png;base64,') == len(charts)


def test_html_escapes_markup_in_data() -> None:
    html = rendered("violations", "html", "zh").decode("utf-8")
    assert "&lt;script&gt;alert(&#39;注入&#39;)&lt;/script&gt;" in html
    assert 'href="/records/purchase_order/PO-2026-000002"' in html


def test_notice_is_zh_first_with_en_or_en_only() -> None:
    zh = rendered("notice", "html", "zh").decode()
    en = rendered("notice", "html", "en").decode()
    assert zh.index("整改通知书") < zh.index("Rectification Notice")
    assert "整改通知书" not in en
    assert "Rectification Notice" in en
    zh_pdf = squash(pdf_text(rendered("notice", "pdf", "zh")))
    assert zh_pdf.index("整改通知书") < zh_pdf.index("RectificationNotice")
    assert "整改通知书" not in squash(pdf_text(rendered("notice", "pdf", "en")))


def test_safe_href() -> None:
    assert safe_href("https://a.example/x") == "https://a.example/x"
    assert safe_href("/records/1") == "/records/1"
    assert safe_href("javascript:alert(1)") is None
    assert safe_href(" JavaScript:alert(1)") is None
    assert safe_href("data:text/html,x") is None
    assert safe_href("//evil.example") is None
    assert safe_href(None) is None


# --- charts ---


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", list(DOCUMENTS))
def test_charts_are_drawn_in_the_cjk_font(name: str, lang: str) -> None:
    charts = render_charts(DOCUMENTS[name], lang)  # type: ignore[arg-type]
    if name.endswith("_empty") or name == "notice":
        assert charts == []
        return
    assert charts
    for chart in charts:
        assert chart.png.startswith(b"\x89PNG\r\n\x1a\n")
        assert chart.fonts == frozenset({cjk_font_path().name}), chart.key
        assert chart.width_px > 500
        assert chart.height_px > 300
    keys = {c.key for c in charts}
    if name == "violations":
        assert keys == {"trend", "by_department", "by_rule", "heatmap"}


# --- digest email ---


def test_digest_email_has_chinese_subject_cid_images_and_text() -> None:
    doc = DOCUMENTS["digest"]
    assert isinstance(doc, Digest)
    email = render_digest_email(doc, "zh")
    assert "合规摘要" in email.subject
    assert "\n" not in email.subject
    assert len(email.images) == 2
    for image in email.images:
        assert f'src="cid:{image.cid}"' in email.html
        assert image.png.startswith(b"\x89PNG")
    assert "data:image" not in email.html
    assert doc.manager in email.text
    assert "https://zhidu.example.cn/reports/violations?period=2026-W44" in email.text


# --- the message catalog ---


def test_catalog_has_every_key_used_in_both_languages() -> None:
    keys = catalog()
    used: set[str] = set()
    for path in [*REPORTS.glob("*.py"), *REPORTS.glob("templates/*.html")]:
        src = path.read_text(encoding="utf-8")
        used |= set(re.findall(r"""\b(?:m|t|bi|bil|both|mm|bi\.msg)\(\s*["']([a-z_]+\.[a-z_.]+)["']""", src))
    assert used, "no message keys found"
    assert sorted(used - set(keys)) == []
    for key, text in keys.items():
        assert text.zh, key
        assert text.en, key
    for prefix, values in (
        ("severity", ("critical", "major", "minor")),
        ("status", ("open", "overdue", "closed")),
    ):
        for v in values:
            assert f"{prefix}.{v}" in keys


def test_unknown_codes_render_as_they_are() -> None:
    doc = samples.violation_report(5)
    odd = dataclasses.replace(doc.findings[3], severity="catastrophic")
    doc = dataclasses.replace(doc, findings=[odd])
    assert "catastrophic" in render(doc, "html", "zh").decode()
    assert "catastrophic" in squash(pdf_text(render(doc, "pdf", "en")))
