"""zhidu checks: data-quality expectation suites (great-expectations) over the typed frames.

`import checks` is cheap: great_expectations is imported only when checks run
(`checks.runner.run_checks`), and the names below are loaded on first use.

    suites = load_suites(policies / "checks", library.model, clause_ids=..., rule_ids=...)
    run = run_checks(suites, frames, as_of=as_of, tz=library.company.tz)
    violations, unverifiable = split_verdicts(verdicts, library.rules, run.unverifiable)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from checks.runner import CheckRun, DataQualityFinding, FailingRow, Outcome, run_checks, warm_up
    from checks.suites import Expectation, Suite, Suites, load_suites, suites_for_library
    from checks.verdicts import UnverifiableVerdict, fields_read, split_verdicts

_EXPORTS = {
    "CheckRun": "checks.runner",
    "DataQualityFinding": "checks.runner",
    "FailingRow": "checks.runner",
    "Outcome": "checks.runner",
    "run_checks": "checks.runner",
    "warm_up": "checks.runner",
    "Expectation": "checks.suites",
    "Suite": "checks.suites",
    "Suites": "checks.suites",
    "load_suites": "checks.suites",
    "suites_for_library": "checks.suites",
    "UnverifiableVerdict": "checks.verdicts",
    "fields_read": "checks.verdicts",
    "split_verdicts": "checks.verdicts",
}

__all__ = [
    "CheckRun",
    "DataQualityFinding",
    "Expectation",
    "FailingRow",
    "Outcome",
    "Suite",
    "Suites",
    "UnverifiableVerdict",
    "fields_read",
    "load_suites",
    "run_checks",
    "split_verdicts",
    "suites_for_library",
    "warm_up",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'checks' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
