"""Charts (matplotlib, Agg, no pyplot state) rendered to PNG for HTML and PDF: trend lines, bars by
department and by rule, a department × rule heat map. Text is set in the CJK font from PyPI
(`reports.fonts`); a chart with no data is not drawn at all (the document says "no data")."""

from __future__ import annotations

import io
import textwrap
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before anything imports pyplot; reports never uses pyplot

from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text as MplText

from reports.fonts import CJK_FAMILY, FALLBACK_FAMILY, register_matplotlib_fonts
from reports.i18n import Lang, Messages
from reports.models import (
    DepartmentScorecard,
    Digest,
    Document,
    RuleCount,
    ViolationReport,
)

SEVERITY_COLORS = {"critical": "#c0392b", "major": "#e67e22", "minor": "#f4d03f"}
ACCENT = "#2e5c8a"
DPI = 150
MAX_BARS = 15
HEAT_RULES = 16
HEAT_DEPTS = 20

_lock = threading.Lock()  # rcParams are process-wide: one chart at a time


@dataclass(frozen=True, slots=True)
class Chart:
    key: str
    title: str
    png: bytes
    width_px: int
    height_px: int
    fonts: frozenset[str]  # font files the chart's texts were drawn with


@contextmanager
def _style() -> Iterator[None]:
    register_matplotlib_fonts()
    with (
        _lock,
        matplotlib.rc_context(
            {
                "font.family": [CJK_FAMILY, FALLBACK_FAMILY],
                "font.size": 9,
                "axes.unicode_minus": False,  # U+2212 is not in every font
                "axes.spines.top": False,
                "axes.spines.right": False,
                "axes.titlesize": 11,
                "svg.fonttype": "none",
            }
        ),
    ):
        yield


def _save(key: str, title: str, fig: Figure) -> Chart:
    FigureCanvasAgg(fig)  # attaches itself to the figure
    with warnings.catch_warnings():
        # a glyph missing from every font would only be a warning: make it an error
        warnings.filterwarnings("error", message="Glyph .* missing from font")
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    fonts = frozenset(
        Path(font_manager.findfont(t.get_fontproperties())).name
        for t in fig.findobj(MplText)
        if isinstance(t, MplText) and t.get_visible() and t.get_text()
    )
    width, height = (round(v * DPI) for v in fig.get_size_inches())
    return Chart(key, title, buf.getvalue(), width, height, fonts)


def _label_width(m: Messages) -> int:
    """Characters a department label may take: Chinese characters are twice as wide."""
    return 14 if m.lang == "zh" else 24


def _short(text: str, width: int = 22) -> str:
    return (
        textwrap.shorten(text, width=width, placeholder="…")
        if " " in text
        else (text if len(text) <= width else text[: width - 1] + "…")
    )


def _rule_label(rule: RuleCount, m: Messages) -> str:
    return f"{rule.rule} {_short(m.text(rule.title), 16 if m.lang == 'zh' else 34)}"


def _hbar(ax: Axes, labels: list[str], values: list[int], color: str) -> None:
    ys = list(range(len(labels)))
    ax.barh(ys, values, color=color)
    ax.set_yticks(ys, labels)
    ax.invert_yaxis()
    top = max(values) if values else 0
    for y, v in zip(ys, values, strict=True):
        ax.text(v + top * 0.01, y, f"{v:,}", va="center", fontsize=8)
    ax.set_xlim(0, top * 1.12 + 1)


def _fig(width: float, rows: int, per_row: float = 0.32, base: float = 1.2) -> Figure:
    return Figure(figsize=(width, max(2.4, base + per_row * rows)), layout="constrained")


def _rules_chart(key: str, title: str, rules: list[RuleCount], m: Messages) -> Chart | None:
    shown = [r for r in rules if r.findings > 0][:MAX_BARS]
    if not shown:
        return None
    fig = _fig(7.5, len(shown))
    ax = fig.add_subplot()
    colors = [SEVERITY_COLORS.get(r.severity, ACCENT) for r in shown]
    _hbar(ax, [_rule_label(r, m) for r in shown], [r.findings for r in shown], ACCENT)
    for patch, color in zip(ax.patches, colors, strict=True):
        patch.set_facecolor(color)
    ax.set_xlabel(m("col.findings"))
    ax.set_title(title)
    return _save(key, title, fig)


def violation_charts(report: ViolationReport, m: Messages) -> list[Chart]:
    charts: list[Chart] = []
    if len(report.trend) > 0 and any(p.findings for p in report.trend):
        fig = Figure(figsize=(7.5, 2.8), layout="constrained")
        ax = fig.add_subplot()
        xs = list(range(len(report.trend)))
        ax.plot(xs, [p.findings for p in report.trend], marker="o", color=ACCENT, linewidth=1.8)
        step = max(1, len(xs) // 12)
        ax.set_xticks(xs[::step], [p.label for p in report.trend][::step])
        ax.set_ylim(bottom=0)
        ax.set_ylabel(m("col.findings"))
        ax.grid(axis="y", alpha=0.3)
        title = m("chart.trend")
        ax.set_title(title)
        charts.append(_save("trend", title, fig))

    depts = [d for d in report.by_department if d.findings > 0][:HEAT_DEPTS]
    if depts:
        fig = _fig(7.5, len(depts))
        ax = fig.add_subplot()
        ys = list(range(len(depts)))
        left = [0] * len(depts)
        for sev in ("critical", "major", "minor"):
            vals = [getattr(d, sev) for d in depts]
            ax.barh(ys, vals, left=left, color=SEVERITY_COLORS[sev], label=m.known("severity", sev))
            left = [a + b for a, b in zip(left, vals, strict=True)]
        ax.set_yticks(ys, [_short(m.text(d.dept.name), _label_width(m)) for d in depts])
        ax.invert_yaxis()
        top = max(d.findings for d in depts)
        for y, d in zip(ys, depts, strict=True):
            ax.text(
                max(d.findings, sum((d.critical, d.major, d.minor))) + top * 0.01,
                y,
                f"{d.findings:,}",
                va="center",
                fontsize=8,
            )
        ax.set_xlim(0, top * 1.12 + 1)
        ax.legend(loc="lower right", fontsize=8, frameon=False)
        ax.set_xlabel(m("col.findings"))
        title = m("chart.by_department")
        ax.set_title(title)
        charts.append(_save("by_department", title, fig))

    chart = _rules_chart("by_rule", m("chart.by_rule"), report.by_rule, m)
    if chart is not None:
        charts.append(chart)

    heat = _heatmap(report, m)
    if heat is not None:
        charts.append(heat)
    return charts


def _heatmap(report: ViolationReport, m: Messages) -> Chart | None:
    cells = [c for c in report.by_department_rule if c.findings > 0]
    if not cells:
        return None
    rule_tot: dict[str, int] = {}
    dept_tot: dict[str, int] = {}
    names: dict[str, str] = {}
    for c in cells:
        rule_tot[c.rule] = rule_tot.get(c.rule, 0) + c.findings
        dept_tot[c.dept.code] = dept_tot.get(c.dept.code, 0) + c.findings
        names[c.dept.code] = m.text(c.dept.name)
    rules = sorted(rule_tot, key=lambda r: (-rule_tot[r], r))[:HEAT_RULES]
    depts = sorted(dept_tot, key=lambda d: (-dept_tot[d], d))[:HEAT_DEPTS]
    ri = {r: i for i, r in enumerate(rules)}
    di = {d: i for i, d in enumerate(depts)}
    grid = [[0] * len(rules) for _ in depts]
    for c in cells:
        if c.rule in ri and c.dept.code in di:
            grid[di[c.dept.code]][ri[c.rule]] += c.findings
    fig = Figure(figsize=(7.5, max(2.6, 1.5 + 0.3 * len(depts))), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(grid, cmap="Reds", aspect="auto")
    ax.set_xticks(range(len(rules)), rules, rotation=45, ha="right")
    ax.set_yticks(range(len(depts)), [_short(names[d], _label_width(m)) for d in depts])
    peak = max(max(row) for row in grid) or 1
    for y, row in enumerate(grid):
        for x, v in enumerate(row):
            if v:
                ax.text(
                    x,
                    y,
                    f"{v:,}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if v > peak * 0.55 else "#333333",
                )
    ax.spines[:].set_visible(False)
    fig.colorbar(image, ax=ax, shrink=0.8, label=m("col.findings"))
    title = m("chart.heatmap")
    if len(rule_tot) > len(rules) or len(dept_tot) > len(depts):
        title += " " + m("chart.heatmap_top", rules=len(rules), depts=len(depts))
    ax.set_title(title)
    return _save("heatmap", title, fig)


def scorecard_charts(card: DepartmentScorecard, m: Messages) -> list[Chart]:
    charts: list[Chart] = []
    if card.trend:
        fig = Figure(figsize=(7.5, 2.8), layout="constrained")
        ax = fig.add_subplot()
        xs = list(range(len(card.trend)))
        bars = ax.twinx()
        bars.bar(xs, [p.findings for p in card.trend], color="#d5dbe3", width=0.5, label=m("col.findings"))
        bars.set_ylabel(m("col.findings"))
        bars.spines["right"].set_visible(True)
        ax.set_zorder(bars.get_zorder() + 1)
        ax.patch.set_visible(False)
        scores = [float(p.score) for p in card.trend]
        ax.plot(xs, scores, marker="o", color=ACCENT, linewidth=2, label=m("col.score"))
        for x, s in zip(xs, card.trend, strict=True):
            ax.annotate(
                f"{s.score:.1f}",
                (x, float(s.score)),
                textcoords="offset points",
                xytext=(0, 6),
                ha="center",
                fontsize=8,
            )
        ax.set_xticks(xs, [p.label for p in card.trend])
        low = min(scores)
        ax.set_ylim(max(0.0, min(low - 10, 60.0)), 105)
        ax.set_ylabel(m("col.score"))
        title = m("chart.score_trend")
        ax.set_title(title)
        charts.append(_save("score_trend", title, fig))
    chart = _rules_chart("by_rule", m("chart.by_rule"), card.findings_by_rule, m)
    if chart is not None:
        charts.append(chart)
    return charts


def digest_charts(digest: Digest, m: Messages) -> list[Chart]:
    charts: list[Chart] = []
    changes = digest.score_changes[:HEAT_DEPTS]
    if changes:
        fig = _fig(7.0, len(changes), per_row=0.42)
        ax = fig.add_subplot()
        ys = list(range(len(changes)))
        prev = [float(c.previous) if c.previous is not None else 0.0 for c in changes]
        cur = [float(c.current) for c in changes]
        ax.barh([y + 0.2 for y in ys], prev, height=0.38, color="#b8c4d2", label=m("col.previous_score"))
        ax.barh([y - 0.2 for y in ys], cur, height=0.38, color=ACCENT, label=m("col.current_score"))
        for y, c in zip(ys, changes, strict=True):
            delta = c.delta
            mark = "" if delta is None else (f" (+{delta:.1f})" if delta > 0 else f" ({delta:.1f})")
            color = (
                "#1e8449"
                if delta is not None and delta > Decimal(0)
                else ("#c0392b" if delta is not None and delta < 0 else "#333333")
            )
            ax.text(
                float(c.current) + 1, y - 0.2, f"{c.current:.1f}{mark}", va="center", fontsize=8, color=color
            )
        ax.set_yticks(ys, [_short(m.text(c.dept.name), _label_width(m)) for c in changes])
        ax.invert_yaxis()
        ax.set_xlim(0, 125)
        ax.legend(loc="lower right", fontsize=8, frameon=False)
        title = m("chart.score_changes")
        ax.set_title(title)
        charts.append(_save("score_changes", title, fig))
    chart = _rules_chart("top_rules", m("chart.top_rules"), digest.top_rules, m)
    if chart is not None:
        charts.append(chart)
    return charts


def render_charts(document: Document, lang: Lang) -> list[Chart]:
    """The document's charts as PNG (none for the rectification notice, a formal letter)."""
    m = Messages(lang)
    with _style():
        if isinstance(document, ViolationReport):
            return violation_charts(document, m)
        if isinstance(document, DepartmentScorecard):
            return scorecard_charts(document, m)
        if isinstance(document, Digest):
            return digest_charts(document, m)
    return []
