"""Benchmark (not a test): the report documents gathered from the database and rendered, on a
generated company of BENCH_RECORDS records (default 1,000,000) stored in a fresh SQLite database
and inspected for one month (the inspection's judging and writes, as `tests/bench_inspection.py`
does them, from the generated files: timed here only for the record).

Timed: gathering each document (`service/reports/service.py`) and rendering it in each format —
the violation report of the month (html, pdf, xlsx, csv; every finding of the month), the
scorecard of the department with the most findings, its notice, a monthly digest of every
department.

    python -m tests.bench_reports          # prints the result as JSON
    BENCH_RECORDS=100000 python -m tests.bench_reports
"""

from __future__ import annotations

import json
import os
import resource
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RECORDS = int(os.environ.get("BENCH_RECORDS", "1000000"))


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _inspect(url: str, data: Path, *, period: str, now: datetime, out: dict[str, Any]) -> None:
    """Store every generated record, then inspect `period`: violations, data-quality findings,
    summaries with scores, and notices, as the inspection flow writes them."""
    from rules.readers import read_data_dir
    from rules.validate import content_hash, to_payloads
    from service.db.base import engine_for, session_factory
    from service.evaluation.service import load_policy_library
    from service.inspections.config import load_config
    from service.inspections.core import judge_scope
    from service.inspections.periods import Period
    from service.records.flows import load_dataset
    from service.settings import Settings
    from tests.bench_inspection import store_judged_inspection

    settings = Settings(database_url=url)
    library = load_policy_library(settings)
    config = load_config(settings.policies_dir, library.model)
    tz = library.company.tz
    start = time.perf_counter()
    frames = read_data_dir(data, library.model, tz).frames
    out["read_validate_seconds"] = time.perf_counter() - start
    engine = engine_for(url)
    try:
        factory = session_factory(engine)
        start = time.perf_counter()
        load_dataset(
            factory,
            records={
                t: [(p, content_hash(p)) for p in to_payloads(library.model[t], f, tz)]
                for t, f in frames.items()
            },
            submitted_by="bench",
            source=str(data),
            now=now,
        )
        out["store_records_seconds"] = time.perf_counter() - start
        when = Period.parse(period)
        as_of = when.as_of(tz, grace_days=config.grace_days, now=now)
        start = time.perf_counter()
        result = judge_scope(library, config, frames, period=when, depts=None, as_of=as_of)
        _inspection, _reconciled, _summaries, issued = store_judged_inspection(
            factory,
            library=library,
            config=config,
            result=result,
            frames=frames,
            when=when,
            as_of=as_of,
            now=now,
        )
        out["inspection_seconds"] = time.perf_counter() - start
        out["findings_in_month"] = len(result.findings)
        out["notices"] = len(issued)
    finally:
        engine.dispose()


def bench(records: int = RECORDS, *, period: str = "2026-10", seed: int = 1) -> dict[str, Any]:
    """Seconds to gather and render every document over `records` generated records."""
    import reports
    from service.db.base import engine_for, session_factory
    from service.db.migrate import upgrade
    from service.evaluation.service import load_policy_library
    from service.inspections.config import load_config
    from service.reports import service
    from service.reports.periods import parse_period
    from service.settings import Settings
    from service.synthetic import generate

    out: dict[str, Any] = {"records_requested": records, "period": period}
    gather: dict[str, float] = {}
    render: dict[str, float] = {}
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="zhidu-bench-reports-") as tmp:
        data = Path(tmp) / "data"
        start = time.perf_counter()
        manifest = generate(data, records=records, seed=seed, fmt="csv")
        out["generate_seconds"] = time.perf_counter() - start
        out["records"] = manifest.records_written_total
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        now = datetime.fromisoformat(manifest.as_of).astimezone(UTC)
        _inspect(url, data, period=period, now=now, out=out)

        settings = Settings(database_url=url)
        library = load_policy_library(settings)
        src = service.sources(
            library=library, config=load_config(settings.policies_dir, library.model), now=now
        )
        month = parse_period(period)
        engine = engine_for(url)
        try:
            with session_factory(engine)() as session:

                def timed(name: str, make: Any) -> Any:
                    started = time.perf_counter()
                    document = make()
                    gather[name] = time.perf_counter() - started
                    return document

                def rendered(name: str, document: Any, formats: tuple[str, ...]) -> None:
                    for fmt in formats:
                        started = time.perf_counter()
                        content = reports.render(document, fmt, "zh")
                        render[f"{name}.{fmt}"] = time.perf_counter() - started
                        sizes[f"{name}.{fmt}"] = len(content)

                report = timed(
                    "violations",
                    lambda: service.gather_violation_report(session=session, period=month, src=src),
                )
                out["report_findings"] = len(report.findings)
                out["report_records_checked"] = report.totals.records_checked
                rendered("violations", report, ("html", "pdf", "xlsx", "csv"))
                top = report.by_department[0].dept.code
                card = timed(
                    "scorecard",
                    lambda: service.gather_scorecard(session=session, dept=top, period=month, src=src),
                )
                rendered("scorecard", card, ("html", "pdf", "xlsx", "csv"))
                number = next(n.number for n in card.notices)
                notice = timed(
                    "notice", lambda: service.gather_notice(session=session, number=number, src=src)
                )
                out["notice_findings"] = len(notice.findings)
                rendered("notice", notice, ("html", "pdf"))
                depts = [d.dept.code for d in report.by_department if d.dept.code != "-"]
                digest = timed(
                    "digest",
                    lambda: service.gather_digest(
                        session=session,
                        manager="bench",
                        depts=depts,
                        cadence="monthly",
                        period=month,
                        src=src,
                    ),
                )
                rendered("digest", digest, ("html", "pdf", "xlsx", "csv"))
        finally:
            engine.dispose()
    out["gather_seconds"] = {k: round(v, 3) for k, v in gather.items()}
    out["render_seconds"] = {k: round(v, 3) for k, v in render.items()}
    out["bytes"] = sizes
    out["peak_rss_mb"] = _peak_rss_mb()
    return out


if __name__ == "__main__":
    print(json.dumps(bench(), indent=1, ensure_ascii=False))
