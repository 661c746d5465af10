"""`make bench`: speed and memory of zhidu's main paths, printed as a table and written to
bench-results.json. Each measurement runs in a fresh subprocess so its peak RSS is its own.

Environment: BENCH_RECORDS (default 1_000_000), BENCH_STREAM_RECORDS (default 20_000).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RECORDS = int(os.environ.get("BENCH_RECORDS", "1000000"))
STREAM_RECORDS = int(os.environ.get("BENCH_STREAM_RECORDS", "20000"))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_generate(out: str, records: int) -> dict[str, Any]:
    from service.synthetic import generate

    start = time.perf_counter()
    manifest = generate(Path(out), records=records, seed=1, fmt="csv")
    elapsed = time.perf_counter() - start
    size = sum(p.stat().st_size for p in Path(out).glob("*.csv") if p.name != "ground_truth.csv")
    return {
        "records": manifest.records_written_total,
        "seconds": elapsed,
        "disk_mb": size / 2**20,
        "peak_rss_mb": peak_rss_mb(),
    }


def _load(data: str, phases: dict[str, float] | None = None) -> tuple[Any, Any, Any]:
    """(library, data set, (encoded frames, as-of)); `phases` gets each phase's seconds and the
    peak RSS after it (the library loaded = the baseline, read + validated, encoded)."""
    import pandas as pd

    from rules.readers import read_data_dir
    from service.evaluation.service import encode_all, load_policy_library
    from service.settings import Settings

    phases = {} if phases is None else phases
    library = load_policy_library(Settings())
    phases["baseline_rss_mb"] = peak_rss_mb()
    start = time.perf_counter()
    dataset = read_data_dir(Path(data), library.model, library.company.tz)
    phases["read_validate_seconds"] = time.perf_counter() - start
    phases["rss_after_read_mb"] = peak_rss_mb()
    manifest = json.loads((Path(data) / "manifest.json").read_text())
    start = time.perf_counter()
    encoded = encode_all(library, dataset.frames)
    phases["encode_seconds"] = time.perf_counter() - start
    phases["rss_after_encode_mb"] = peak_rss_mb()
    return library, dataset, (encoded, pd.Timestamp(manifest["as_of"]))


def measure_batch(data: str) -> dict[str, Any]:
    from rules.engine import batch
    from rules.engine.encode import timestamp_ms

    phases: dict[str, float] = {}
    library, dataset, (encoded, as_of) = _load(data, phases)
    data_mb = sum(f.memory_usage(deep=True).sum() for f in dataset.frames.values()) / 2**20
    rss_before = peak_rss_mb()
    start = time.perf_counter()
    verdicts = batch.evaluate(
        [r.compiled for r in library.rules], encoded, as_of_ms=timestamp_ms(as_of), tz=library.company.tz
    )
    seconds = time.perf_counter() - start
    records = sum(len(f) for f in dataset.frames.values())
    csv_mb = sum(p.stat().st_size for p in Path(data).glob("*.csv") if p.name != "ground_truth.csv") / 2**20
    return {
        "records": records,
        **phases,
        "evaluate_seconds": seconds,
        "verdicts": len(verdicts),
        "data_mb_in_memory": data_mb,
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_evaluate_mb": rss_before,
        "rss_over_data": peak_rss_mb() / data_mb if data_mb else None,
        "csv_mb": csv_mb,
        # what the data costs on top of the process with its libraries and policy library loaded
        "peak_rss_over_baseline_mb": peak_rss_mb() - phases["baseline_rss_mb"],
    }


def measure_validate_small(repeat: int = 200) -> dict[str, Any]:
    """Milliseconds to validate one record (an API submit), by the small-frame path and by the
    vectorised path it replaces for frames of up to `rules.validate.SMALL_FRAME` rows."""
    import statistics

    import pandas as pd

    import rules.validate as validate_module
    from service.evaluation.service import load_policy_library
    from service.settings import Settings

    library = load_policy_library(Settings())
    rt, tz = library.model["expense_claim"], library.company.tz
    claim = {
        "id": "EC0000001",
        "dept": "SAL",
        "applicant": "李霞铭",
        "category": "travel",
        "amount": "8186.15",
        "invoice_no": "25312110004104729361",
        "invoice_count": "1",
        "submitted_at": "2025-11-03T08:31:00+08:00",
        "paid_at": "2025-11-09T20:48:00",
    }
    frames = {
        "csv": pd.DataFrame([claim], dtype="str"),
        "json": pd.DataFrame(  # as the API builds it: object columns, JSON's own types
            {
                k: pd.Series([v], dtype=object)
                for k, v in {**claim, "amount": 8186.15, "invoice_count": 1}.items()
            }
        ),
    }

    def median_ms(raw: pd.DataFrame) -> float:
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            validate_module.validate_frame(rt, raw, source="bench", tz=tz)
            times.append((time.perf_counter() - start) * 1000)
        return statistics.median(times[repeat // 10 :])  # the first calls warm caches

    out: dict[str, Any] = {}
    small_frame = validate_module.SMALL_FRAME
    for name, raw in frames.items():
        out[f"{name}_small_path_ms"] = median_ms(raw)
        validate_module.SMALL_FRAME = -1  # every frame the vectorised way, as before the small path
        out[f"{name}_vectorised_ms"] = median_ms(raw)
        validate_module.SMALL_FRAME = small_frame
    return out


def measure_stream(data: str, limit: int) -> dict[str, Any]:
    from durable import engine as durable_engine
    from durable import lang

    from rules.engine.encode import timestamp_ms
    from rules.engine.related import FrameSource
    from rules.engine.stream import StreamEngine

    library, _dataset, (encoded, as_of) = _load(data)
    claims = encoded["expense_claim"].head(limit)
    # Raw durable-rules: one threshold rule, one assert per record, sessions rotated under the
    # 1024-session limit. Measured twice: at the division-leader threshold (5,000.00 CNY, fires on
    # few claims) and at 50.00 CNY (fires on nearly every claim, so its action cost is included).
    rows = claims[["id", "amount"]].to_dict("records")

    def raw_rate_at(threshold: int) -> float:
        name = f"bench_raw_{threshold}_{time.monotonic_ns()}"
        hits: list[str] = []

        def _over(c: Any) -> None:
            hits.append(c.m.id)

        with lang.ruleset(name):
            lang.when_all(lang.m.amount > threshold)(_over)
        start = time.perf_counter()
        for i, row in enumerate(rows):
            with contextlib.suppress(durable_engine.MessageNotHandledException):  # no rule matched
                lang.assert_fact(name, {"sid": str(i % 512), "id": row["id"], "amount": int(row["amount"])})
        return len(rows) / (time.perf_counter() - start)

    raw_rate = raw_rate_at(500_000)
    raw_rate_firing = raw_rate_at(5_000)
    engine = StreamEngine([r.compiled for r in library.rules], tz=library.company.tz)
    source = FrameSource(encoded)
    start = time.perf_counter()
    engine.evaluate("expense_claim", claims, source, as_of_ms=timestamp_ms(as_of))
    full_rate = len(claims) / (time.perf_counter() - start)
    per_type = {}
    for rtype, frame in encoded.items():
        subset = frame.head(max(1, limit // 10))
        start = time.perf_counter()
        engine.evaluate(rtype, subset, source, as_of_ms=timestamp_ms(as_of))
        per_type[rtype] = len(subset) / (time.perf_counter() - start)
    return {
        "records": len(claims),
        "raw_durable_records_per_s": raw_rate,
        "engine_records_per_s": full_rate,
        "ratio": full_rate / raw_rate,
        "raw_durable_firing_records_per_s": raw_rate_firing,
        "ratio_vs_firing_rule": full_rate / raw_rate_firing,
        "engine_records_per_s_by_type": per_type,
    }


def run_child(name: str, *args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.bench", "--child", name, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"benchmark {name} failed:\n{proc.stdout}\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    results: dict[str, Any] = {"records_requested": RECORDS}
    with tempfile.TemporaryDirectory() as tmp:
        data = str(Path(tmp) / "company")
        results["generate"] = run_child("generate", data, str(RECORDS))
        results["batch"] = run_child("batch", data)
        results["stream"] = run_child("stream", data, str(STREAM_RECORDS))
        results["checks"] = run_child("checks", data)  # checks/bench.py: data-quality suites
    results["validate_small"] = run_child("validate_small")
    results["reports"] = run_child("reports")  # reports/bench.py: every document, large data
    results["inspection"] = run_child("inspection")  # tests/bench_inspection.py: 1M records
    results["report_service"] = run_child("report_service")  # tests/bench_reports.py: gather + render, 1M
    results["api"] = run_child("api")  # tests/bench_api.py: its own company and database
    g, b, s = results["generate"], results["batch"], results["stream"]
    rows = [
        ("generate", f"{g['records']:,} records", f"{g['seconds']:.1f} s", "goal < 60 s"),
        (
            "read + validate",
            f"{b['records']:,} records",
            f"{b['read_validate_seconds']:.1f} s (encode {b['encode_seconds']:.1f} s)",
            "",
        ),
        (
            "batch engine, full library",
            f"{b['verdicts']:,} verdicts",
            f"{b['evaluate_seconds']:.1f} s",
            "goal ≤ 10 s",
        ),
        (
            "batch peak RSS",
            f"{b['peak_rss_mb']:.0f} MB",
            f"{b['peak_rss_mb'] / b['csv_mb']:.1f} × the CSV data ({b['csv_mb']:.0f} MB); {b['rss_over_data']:.1f} × typed frames ({b['data_mb_in_memory']:.0f} MB)",
            "goal ≤ 3×",
        ),
        (
            "batch RSS by phase",
            f"baseline {b['baseline_rss_mb']:.0f} MB",
            f"after read + validate {b['rss_after_read_mb']:.0f} MB, after encode {b['rss_after_encode_mb']:.0f} MB; "
            f"data's share {b['peak_rss_over_baseline_mb']:.0f} MB = {b['peak_rss_over_baseline_mb'] / b['csv_mb']:.1f} × the CSV",
            "",
        ),
        (
            "stream engine, full library",
            f"{s['engine_records_per_s']:,.0f} rec/s",
            f"raw durable {s['raw_durable_records_per_s']:,.0f} rec/s (rule firing on most: {s['raw_durable_firing_records_per_s']:,.0f})",
            f"ratio {s['ratio']:.2f} ({s['ratio_vs_firing_rule']:.2f}) (goal ≥ 0.5)",
        ),
        (
            "batch evaluation working memory",
            f"{b['peak_rss_mb'] - b['rss_before_evaluate_mb']:.0f} MB",
            f"{(b['peak_rss_mb'] - b['rss_before_evaluate_mb']) / b['data_mb_in_memory']:.1f} × typed frames",
            "",
        ),
    ]
    bulk, latency = results["api"]["bulk_ingest"], results["api"]["submit_latency"]
    alone, loop, paced = latency["one_client"], latency["closed_loop"], latency["paced"]
    rows += [
        (
            "API bulk ingest + evaluation (SQLite)",
            f"{bulk['records_per_s']:,} rec/s",
            f"{bulk['records']:,} records in {bulk['seconds']:.1f} s",
            "goal ≥ 2,000 rec/s",
        ),
        (
            "API submit latency, 1 client",
            f"p50 {alone['p50_ms']:.0f} ms",
            f"p99 {alone['p99_ms']:.0f} ms, {alone['requests_per_s']:.0f} req/s",
            "",
        ),
        (
            f"API submit latency, {loop['clients']} clients, closed loop",
            f"p50 {loop['p50_ms']:.0f} ms",
            f"p99 {loop['p99_ms']:.0f} ms, {loop['requests_per_s']:.0f} req/s",
            "goal p99 ≤ 50 ms",
        ),
        (
            f"API submit latency, {paced['clients']} clients, {paced['requests_per_s']:.0f} req/s",
            f"p50 {paced['p50_ms']:.0f} ms",
            f"p99 {paced['p99_ms']:.0f} ms",
            "",
        ),
        (
            f"API submit, {paced['clients']} clients open loop: highest rate with p99 ≤ 50 ms",
            f"{latency['max_rate_within_goal'] or 0:.0f} req/s",
            ", ".join(
                f"{s['target_requests_per_s']:.0f}/s: p99 {s['p99_ms']:.0f} ms" for s in latency["open_loop"]
            ),
            f"server CPU {alone.get('server_cpu_ms_per_request', 0):.0f} ms/request",
        ),
    ]
    small = results["validate_small"]
    rows.append(
        (
            "validate one record (API submit)",
            f"{small['json_small_path_ms']:.1f} ms",
            f"vectorised path {small['json_vectorised_ms']:.1f} ms; CSV text {small['csv_small_path_ms']:.1f} / "
            f"{small['csv_vectorised_ms']:.1f} ms",
            "",
        )
    )
    checks, reports_times = results["checks"], results["reports"]
    rows.append(
        (
            "data-quality checks",
            f"{checks['expectations']} expectations on {checks['records']:,} records",
            f"{checks['run_checks_warm_seconds']:.1f} s (first run {checks['run_checks_cold_seconds']:.1f} s)",
            "",
        )
    )
    rows.extend(
        (
            f"render {name}",
            f"{reports_times['findings']:,} findings" if name.startswith("violations") else "",
            f"{secs:.1f} s",
            "",
        )
        for name, secs in reports_times["seconds"].items()
        if name != "build_sample_data"
    )
    inspection = results["inspection"]
    rows.append(
        (
            "inspection (checks + rules)",
            f"{inspection['records']:,} records" if "records" in inspection else "1M records",
            f"{inspection['checks_plus_rules_seconds']:.1f} s (with storing: {inspection['inspection_seconds']:.1f} s)",
            "goal ≤ 30 s",
        )
    )
    gathered = results["report_service"]
    rows.extend(
        (
            f"report {name} from the database ({gathered['records']:,} records)",
            f"gather {gathered['gather_seconds'][name]:.1f} s",
            ", ".join(
                f"{k.split('.')[1]} {v:.1f} s"
                for k, v in gathered["render_seconds"].items()
                if k.startswith(name)
            ),
            "",
        )
        for name in gathered["gather_seconds"]
    )
    width = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, width, strict=True)))
    (ROOT / "bench-results.json").write_text(
        json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8"
    )
    print(f"written to {ROOT / 'bench-results.json'}")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        name, args = sys.argv[2], sys.argv[3:]
        if name == "generate":
            out = measure_generate(args[0], int(args[1]))
        elif name == "batch":
            out = measure_batch(args[0])
        elif name == "validate_small":
            out = measure_validate_small()
        elif name == "api":
            from tests.bench_api import bench

            out = bench()
        elif name == "inspection":
            from tests.bench_inspection import bench as bench_inspection

            out = bench_inspection()
        elif name == "report_service":
            from tests.bench_reports import bench as bench_report_service

            out = bench_report_service()
        elif name == "checks":
            from checks.bench import bench as bench_checks

            out = bench_checks(Path(args[0]))
        elif name == "reports":
            from reports.bench import bench as bench_reports

            out = bench_reports()
        else:
            out = measure_stream(args[0], int(args[1]))
        print(json.dumps(out))
    else:
        main()
