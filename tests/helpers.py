"""Shared test helpers (not fixtures): paths and a loaded policy library."""

from __future__ import annotations

import functools
from pathlib import Path

from rules.library import Library, load_library
from service.evaluation.service import stream_check

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ROOT / "policies"


@functools.cache
def policy_library() -> Library:
    return load_library(POLICIES, stream_check=stream_check)
