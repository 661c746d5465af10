"""`make bench` hook for the data-quality checks: `bench(data_dir)` times loading the suites,
importing great_expectations, and `run_checks` over a generated company (cold, then warm), and
optionally the batch engine and `split_verdicts` after it. Run it in a fresh process so the GX
import and the peak RSS are its own:

    python -c "from pathlib import Path; from checks.bench import bench; print(bench(Path('out/1m')))"
"""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path
from typing import Any

import pandas as pd

from checks.runner import run_checks, warm_up
from checks.suites import suites_for_library
from checks.verdicts import split_verdicts
from rules.library import load_library
from rules.readers import read_data_dir

POLICIES = Path(__file__).resolve().parents[1] / "policies"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench(data_dir: Path, *, policies: Path = POLICIES, with_rules: bool = False) -> dict[str, Any]:
    """Seconds and sizes of one data-quality run over the records in `data_dir` (as written by
    `zhidu generate`; the as-of time is the manifest's, else now)."""
    out: dict[str, Any] = {}
    start = time.perf_counter()
    library = load_library(policies)
    suites = suites_for_library(library)
    out["load_suites_seconds"] = time.perf_counter() - start
    out["expectations"] = len(suites.expectations)

    start = time.perf_counter()
    frames = read_data_dir(Path(data_dir), library.model, library.company.tz).frames
    out["read_validate_seconds"] = time.perf_counter() - start
    out["records"] = sum(len(f) for f in frames.values())
    manifest = Path(data_dir) / "manifest.json"
    as_of = (
        pd.Timestamp(json.loads(manifest.read_text(encoding="utf-8"))["as_of"])
        if manifest.exists()
        else pd.Timestamp.now(tz=library.company.tz)
    )

    start = time.perf_counter()
    warm_up()
    out["import_gx_seconds"] = time.perf_counter() - start
    rss_before = _peak_rss_mb()
    for label in ("cold", "warm"):
        result = run_checks(suites, frames, as_of=as_of, tz=library.company.tz)
        out[f"run_checks_{label}_seconds"] = result.seconds
        out[f"run_checks_{label}_gx_seconds"] = result.gx_seconds
    out["outcomes"] = result.counts
    out["failing_rows"] = sum(len(o.failing) for o in result.outcomes)
    out["unverifiable_records"] = len(result.unverifiable)
    out["peak_rss_mb"] = _peak_rss_mb()
    out["rss_before_checks_mb"] = rss_before

    if with_rules:
        from rules.engine import batch
        from rules.engine.encode import encode_frame, timestamp_ms

        encoded = {t: encode_frame(library.model[t], f) for t, f in frames.items()}
        start = time.perf_counter()
        verdicts = batch.evaluate(
            [r.compiled for r in library.rules],
            encoded,
            as_of_ms=timestamp_ms(as_of),
            tz=library.company.tz,
        )
        out["batch_engine_seconds"] = time.perf_counter() - start
        start = time.perf_counter()
        violations, unverifiable = split_verdicts(verdicts, library.rules, result.unverifiable)
        out["split_verdicts_seconds"] = time.perf_counter() - start
        out["verdicts"] = len(verdicts)
        out["violations"] = len(violations)
        out["unverifiable_verdicts"] = len(unverifiable)
    return out
