"""Every rule's examples behave on both engines (what `zhidu rules test` runs)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from rules.engine.batch import evaluate_rule
from rules.engine.related import FrameSource
from rules.engine.stream import StreamEngine
from rules.examples import run_examples
from rules.lang.rule import Rule
from tests.helpers import policy_library


def _engines() -> dict[str, Any]:
    tz = policy_library().company.tz

    def batch(rule: Rule, encoded: dict[str, pd.DataFrame], as_of_ms: int) -> Any:
        return evaluate_rule(rule.compiled, encoded, as_of_ms=as_of_ms, tz=tz)

    def stream(rule: Rule, encoded: dict[str, pd.DataFrame], as_of_ms: int) -> Any:
        engine = StreamEngine([rule.compiled], tz=tz)
        return engine.evaluate(
            rule.record_type, encoded[rule.record_type], FrameSource(encoded), as_of_ms=as_of_ms
        )

    return {"batch": batch, "stream": stream}


@pytest.mark.parametrize("rule_id", sorted(r.id for r in policy_library().rules))
def test_rule_examples(rule_id: str) -> None:
    lib = policy_library()
    outcomes = run_examples([lib.rule(rule_id)], lib.model, lib.company.tz, _engines())
    assert outcomes
    failed = [f"{o.engine} {o.expect} example (line {o.line}): {o.detail}" for o in outcomes if not o.ok]
    assert not failed, failed
