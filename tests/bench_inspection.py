"""Benchmark (not a test): an inspection of a generated company of BENCH_RECORDS records (default
1,000,000): data-quality checks (great-expectations) and every rule (batch engine) over every
record, kept to the month inspected, then the inspection's writes (violations, data-quality
findings, summaries, notices) into a fresh SQLite database.

The records are read from the generated files, not loaded into the database first: storing 1M
records would dominate and is measured by `tests/bench.py` elsewhere; the inspection's own work
(`service.inspections.core.judge_scope` + the writes of `service.inspections.flows`) is what is
timed. Goal: checks + rules ≤ 30 s at 1M records.

    python -m tests.bench_inspection            # prints the result as JSON
"""

from __future__ import annotations

import json
import os
import resource
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RECORDS = int(os.environ.get("BENCH_RECORDS", "1000000"))


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def store_judged_inspection(
    factory: Any, *, library: Any, config: Any, result: Any, frames: Any, when: Any, as_of: Any, now: Any
) -> tuple[Any, Any, Any, Any]:
    """Store an inspection judged from files (not from the database, which is what the inspection
    flow reads), as the flow stores it: findings, data-quality findings, summaries, notices."""
    from service.inspections import service
    from service.inspections.models import Inspection
    from service.notices import service as notices

    tz = library.company.tz
    with factory() as session, session.begin():
        inspection = Inspection(
            period=when.label,
            period_start=when.start(tz),
            period_end=when.end(tz),
            as_of=as_of,
            complete=True,
            depts=None,
            trigger="cli",
            run_key=None,
            requested_by="bench",
            started_at=now,
            finished_at=now,
            policy_version=library.version,
            records_checked=result.records_checked,
            counts={},
            timings={},
        )
        session.add(inspection)
        session.flush()
        reconciled = service.reconcile_scope(
            session,
            library=library,
            result=result,
            typed=frames,
            now=now,
            reason="bench",
            actor="system",
        )
        service.record_findings(session, inspection_id=inspection.id, reconciled=reconciled)
        service.reconcile_quality(session, inspection_id=inspection.id, result=result, now=now)
        summaries = service.summarise(
            session, inspection=inspection, config=config, result=result, reconciled=reconciled
        )
        by_dept: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in reconciled.open_rows:
            if row["dept"] is not None:
                by_dept[row["dept"]].append(row)
        issued = notices.issue_notices(
            session,
            library=library,
            config=config,
            by_dept=by_dept,
            inspection_id=inspection.id,
            actor="bench",
            now=now,
        )
    return inspection, reconciled, summaries, issued


def bench(records: int = RECORDS, *, period: str = "2026-10", seed: int = 1) -> dict[str, Any]:
    """Seconds, counts and memory of one inspection of `period` over `records` generated records."""
    from checks import warm_up
    from rules.readers import read_data_dir
    from service.db.base import engine_for, session_factory
    from service.db.migrate import upgrade
    from service.inspections.config import load_config
    from service.inspections.core import judge_scope, suites_of
    from service.inspections.periods import Period
    from service.settings import Settings
    from service.synthetic import generate

    out: dict[str, Any] = {"records_requested": records, "period": period, "source": "generated files"}
    with tempfile.TemporaryDirectory(prefix="zhidu-bench-inspection-") as tmp:
        data = Path(tmp) / "data"
        start = time.perf_counter()
        manifest = generate(data, records=records, seed=seed, fmt="csv")
        out["generate_seconds"] = time.perf_counter() - start
        out["records"] = manifest.records_written_total

        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        settings = Settings(database_url=url)
        from service.evaluation.service import load_policy_library

        library = load_policy_library(settings)
        config = load_config(settings.policies_dir, library.model)
        start = time.perf_counter()
        warm_up()
        suites = suites_of(library)
        out["import_gx_and_suites_seconds"] = time.perf_counter() - start

        start = time.perf_counter()
        frames = read_data_dir(data, library.model, library.company.tz).frames
        out["read_validate_seconds"] = time.perf_counter() - start

        when = Period.parse(period)
        tz = library.company.tz
        now = datetime.fromisoformat(manifest.as_of).astimezone(UTC)
        as_of = when.as_of(tz, grace_days=config.grace_days, now=now)
        start = time.perf_counter()
        result = judge_scope(library, config, frames, period=when, depts=None, as_of=as_of, suites=suites)
        out["judge_seconds"] = time.perf_counter() - start
        out["judge_timings"] = {k: round(v, 3) for k, v in result.timings.items()}
        out["checks_plus_rules_seconds"] = result.timings["checks_seconds"] + result.timings["rules_seconds"]
        out["records_in_scope"] = result.records_checked
        out["findings"] = len(result.findings)
        out["unverifiable"] = len(result.unverifiable)
        out["data_quality_findings"] = len(result.quality)
        out["peak_rss_mb_after_judging"] = _peak_rss_mb()

        engine = engine_for(url)
        try:
            factory = session_factory(engine)
            start = time.perf_counter()
            _inspection, reconciled, summaries, issued = store_judged_inspection(
                factory,
                library=library,
                config=config,
                result=result,
                frames=frames,
                when=when,
                as_of=as_of,
                now=now,
            )
            out["store_seconds"] = time.perf_counter() - start
            out["violations_opened"] = reconciled.count("opened")
            out["departments"] = len(summaries)
            out["notices"] = len(issued)
        finally:
            engine.dispose()
    out["inspection_seconds"] = out["judge_seconds"] + out["store_seconds"]
    out["peak_rss_mb"] = _peak_rss_mb()
    out["goal_checks_plus_rules_seconds"] = 30
    out["goal_met"] = out["checks_plus_rules_seconds"] <= 30
    return out


if __name__ == "__main__":
    print(json.dumps(bench(), indent=1, ensure_ascii=False))
