"""The documents `make demo` writes after its inspection: the violation report of the inspected
month (every format), every department's scorecard and every notice the inspection issued (HTML
and PDF), and a monthly digest for a manager of the first three departments (HTML and PDF)."""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

import reports
from service.reports import service
from service.reports.periods import parse_period

DEMO_MANAGER = "王总 (demo manager)"


def _safe(text: str) -> str:
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "-" for c in text)


def _render_to(path: Path, document: reports.Document, fmt: reports.Format, lang: str) -> Path:
    path.write_bytes(reports.render(document, fmt, lang))
    return path


def write_demo_reports(
    session: Session,
    *,
    period: str,
    notice_numbers: Sequence[str],
    now: datetime,
    out_dir: Path,
    lang: str = "zh",
    progress: Callable[[Path], None] = lambda _path: None,
) -> tuple[list[Path], float]:
    """Write the demo's documents to `out_dir`; returns their paths and the seconds it took.
    Gathering reads the database here; rendering (charts, PDF: most of the time) runs in worker
    processes, one per CPU."""
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    src = service.sources(now=now)
    parsed = parse_period(period)
    jobs: list[tuple[Path, reports.Document, reports.Format]] = []

    def add(document: reports.Document, name: str, formats: Sequence[reports.Format]) -> None:
        jobs.extend((out_dir / f"{name}.{fmt}", document, fmt) for fmt in formats)

    label = _safe(parsed.describe())
    report = service.gather_violation_report(session=session, period=parsed, src=src)
    add(report, f"violation-report-{label}", ("html", "pdf", "xlsx", "csv"))
    scores = service.scores_for(session, src, [parsed])[parsed.label]
    for dept in sorted(scores):
        card = service.gather_scorecard(session=session, dept=dept, period=parsed, src=src)
        add(card, f"scorecard-{_safe(dept)}-{label}", ("html", "pdf"))
    for number in notice_numbers:
        notice = service.gather_notice(session=session, number=number, src=src)
        add(notice, f"rectification-notice-{_safe(number)}", ("html", "pdf"))
    scope = sorted(scores)[:3]
    if scope:
        digest = service.gather_digest(
            session=session, manager=DEMO_MANAGER, depts=scope, cadence="monthly", period=parsed, src=src
        )
        add(digest, f"digest-monthly-{label}", ("html", "pdf"))
    written: list[Path] = []
    workers = max(1, min(len(jobs), os.cpu_count() or 1))
    # spawn, not fork: a forked copy of a process holding database connections and threads is unsafe
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        for path in pool.map(_render_to, *zip(*[(p, d, f, lang) for p, d, f in jobs], strict=True)):
            written.append(path)
            progress(path)
    return written, time.perf_counter() - started


__all__ = ["write_demo_reports"]
