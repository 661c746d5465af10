"""Evaluate typed record frames with the batch or the streaming engine.

Both engines get the same encoded frames and the same compiled rules; the findings they give
are described by the same code (`rules.findings`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal

import pandas as pd

from rules.engine import batch
from rules.engine.encode import encode_frame, timestamp_ms
from rules.engine.verdict import Verdict
from rules.findings import Finding, describe
from rules.lang.ir import CompiledRule
from rules.library import Library, load_library
from service.settings import Settings

Engine = Literal["batch", "stream"]


def stream_check(rule: CompiledRule) -> str | None:
    """Why a rule cannot run on the streaming engine, or None (used while loading policies)."""
    from rules.engine.stream import check_rule

    return check_rule(rule)


def load_policy_library(settings: Settings, *, params_file: Path | None = None) -> Library:
    """The policy library as configured: policies folder, company file, time zone, overrides."""
    company = settings.company_file if settings.company_file.exists() else None
    return load_library(
        settings.policies_dir,
        company_file=company,
        params_file=params_file,
        stream_check=stream_check,
        timezone=settings.timezone,
    )


def encode_all(library: Library, typed: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    return {t: encode_frame(library.model[t], f) for t, f in typed.items() if t in library.model}


def evaluate_encoded(
    library: Library,
    encoded: Mapping[str, pd.DataFrame],
    *,
    as_of_ms: int,
    engine: Engine = "batch",
    progress: Callable[[str], None] | None = None,
) -> list[Verdict]:
    compiled = [r.compiled for r in library.rules]
    tz = library.company.tz
    if engine == "batch":
        return batch.evaluate(compiled, encoded, as_of_ms=as_of_ms, tz=tz, progress=progress)
    from rules.engine.stream import StreamEngine  # durable-rules loads only when asked for

    verdicts: list[Verdict] = StreamEngine(compiled, tz=tz).evaluate_all(encoded, as_of_ms=as_of_ms)
    return verdicts


def evaluate_frames(
    library: Library,
    typed: Mapping[str, pd.DataFrame],
    *,
    as_of: pd.Timestamp,
    engine: Engine = "batch",
    progress: Callable[[str], None] | None = None,
) -> list[Finding]:
    """Findings of every rule in force over the typed frames, sorted by rule then record."""
    encoded = encode_all(library, typed)
    as_of_ms = timestamp_ms(as_of)
    verdicts = sorted(evaluate_encoded(library, encoded, as_of_ms=as_of_ms, engine=engine, progress=progress))
    return describe(
        verdicts,
        library.rules,
        typed,
        encoded,
        library.model.types,
        library.parameters,
        as_of_ms=as_of_ms,
        tz=library.company.tz,
    )
