"""Rendering benchmark: every document for a company the size of the 1M-record demo, timed.

`python -m reports.bench` prints the result as JSON. Environment: BENCH_FINDINGS (default
90,000 findings in the violation report), BENCH_NOTICES (default 50 notices of 25 findings).

What is measured, per document and format, in seconds (wall clock, this process):
- the violation report with every finding: HTML and PDF list the first `max_rows` (1,000) findings
  with a note, XLSX and CSV hold all of them;
- a scorecard for each of the 10 departments (HTML, PDF, XLSX);
- the rectification notices (HTML, PDF);
- one digest per manager (email with inline charts, PDF).
"""

from __future__ import annotations

import json
import os
import resource
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from reports import samples
from reports.htmlrender import DEFAULT_MAX_ROWS, render_digest_email
from reports.i18n import check_lang
from reports.render import Format, render


def _timed(fn: Callable[[], bytes | object]) -> tuple[float, int]:
    start = time.perf_counter()
    out = fn()
    size = len(out) if isinstance(out, bytes) else 0
    return time.perf_counter() - start, size


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench(
    findings: int | None = None, notices: int | None = None, digests: int = 5, lang: str = "zh"
) -> dict[str, Any]:
    """Render every document for a large dataset; returns the times (seconds) and sizes (bytes)."""
    findings = findings if findings is not None else int(os.environ.get("BENCH_FINDINGS", "90000"))
    notices = notices if notices is not None else int(os.environ.get("BENCH_NOTICES", "50"))
    result: dict[str, Any] = {
        "findings": findings,
        "notices": notices,
        "digests": digests,
        "lang": lang,
        "max_rows": DEFAULT_MAX_ROWS,
    }
    seconds: dict[str, float] = {}
    sizes: dict[str, int] = {}

    start = time.perf_counter()
    report = samples.violation_report(findings)
    seconds["build_sample_data"] = time.perf_counter() - start
    formats: tuple[Format, ...] = ("html", "pdf", "xlsx", "csv")
    for fmt in formats:
        seconds[f"violations.{fmt}"], sizes[f"violations.{fmt}"] = _timed(partial(render, report, fmt, lang))
    del report

    total: dict[Format, float] = {"html": 0.0, "pdf": 0.0, "xlsx": 0.0}
    for i, dept in enumerate(samples.DEPARTMENTS):
        card = samples.scorecard(seed=i, dept=dept)
        for fmt in total:
            total[fmt] += _timed(partial(render, card, fmt, lang))[0]
    for fmt, value in total.items():
        seconds[f"scorecards_x{len(samples.DEPARTMENTS)}.{fmt}"] = value

    docs = [samples.notice(25, seed=i) for i in range(notices)]
    for fmt in formats[:2]:
        seconds[f"notices_x{notices}.{fmt}"] = sum(_timed(partial(render, d, fmt, lang))[0] for d in docs)

    digest_docs = [samples.digest(seed=i) for i in range(digests)]
    language = check_lang(lang)
    seconds[f"digests_x{digests}.email"] = sum(
        _timed(partial(render_digest_email, d, language))[0] for d in digest_docs
    )
    seconds[f"digests_x{digests}.pdf"] = sum(_timed(partial(render, d, "pdf", lang))[0] for d in digest_docs)

    seconds["total"] = sum(v for k, v in seconds.items() if k != "build_sample_data")
    result["seconds"] = {k: round(v, 3) for k, v in seconds.items()}
    result["bytes"] = sizes
    result["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    return result


if __name__ == "__main__":
    print(json.dumps(bench(), indent=2, ensure_ascii=False))
