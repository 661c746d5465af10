"""Run each rule's examples (records that must pass and records that must fail) on the engines.

Example records list only the fields that matter to the rule; every other required field gets
a neutral value (text "x" or the first allowed value, 0, false, 2026-01-01 09:00 in the company's
zone) so that examples stay short and readable. Examples go through the same validation as a
user's files, so an example with a bad value is reported like a bad row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from rules.engine.batch import evaluate_rule
from rules.engine.encode import encode_frame, timestamp_ms
from rules.engine.verdict import Verdict
from rules.lang.rule import Example, Rule
from rules.problems import InputError, Problem
from rules.records import FieldType, RecordModel, RecordType
from rules.validate import validate_frame

DEFAULT_AS_OF = "2026-06-30T00:00:00+08:00"
_NEUTRAL: dict[FieldType, str] = {
    FieldType.STRING: "x",
    FieldType.INT: "0",
    FieldType.DECIMAL: "0",
    FieldType.BOOL: "false",
    FieldType.TIMESTAMP: "2026-01-01T09:00:00",
    FieldType.DATE: "2026-01-01",
}

# An engine runs one rule over encoded frames as of a time and returns its verdicts.
EngineRun = Callable[[Rule, dict[str, pd.DataFrame], int], list[Verdict]]


@dataclass(frozen=True)
class ExampleOutcome:
    rule: str
    engine: str
    expect: str
    line: int | None
    ok: bool
    detail: str


def _complete(rt: RecordType, record: dict[str, Any], counter: int) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name, spec in rt.fields.items():
        if name in record:
            row[name] = record[name]
        elif name == "id":
            row[name] = f"EX{counter}"
        elif spec.required:
            row[name] = spec.values[0] if spec.values else _NEUTRAL[spec.type]
    return row


def example_frames(rule: Rule, example: Example, model: RecordModel, tz: ZoneInfo) -> dict[str, pd.DataFrame]:
    """Typed frames for one example: the record under test and its related records."""
    rows: dict[str, list[dict[str, Any]]] = {rule.record_type: []}
    for rtype, records in example.related.items():
        if rtype not in model:
            raise InputError(
                rule.file,
                [
                    Problem(
                        rule.file,
                        f"example related type {rtype!r} is unknown",
                        f"示例中的关联类型 {rtype!r} 不存在",
                        line=example.line,
                        policy=rule.id,
                    )
                ],
            )
        rows.setdefault(rtype, []).extend(records)
    rows[rule.record_type] = [example.record, *rows[rule.record_type]]
    typed: dict[str, pd.DataFrame] = {}
    problems: list[Problem] = []
    for rtype, records in rows.items():
        rt = model[rtype]
        raw = pd.DataFrame([_complete(rt, r, i) for i, r in enumerate(records)], dtype=object)
        result = validate_frame(rt, raw, source=f"{rule.file} (example of {rule.id}, {rtype})", tz=tz)
        problems.extend(p for p in result.problems)
        typed[rtype] = result.frame
    if problems:
        raise InputError(f"{rule.id} example at line {example.line}", problems)
    return typed


def batch_run(rule: Rule, encoded: dict[str, pd.DataFrame], as_of_ms: int, tz: ZoneInfo) -> list[Verdict]:
    return evaluate_rule(rule.compiled, encoded, as_of_ms=as_of_ms, tz=tz)


def run_examples(
    rules: Sequence[Rule],
    model: RecordModel,
    tz: ZoneInfo,
    engines: dict[str, Callable[[Rule, dict[str, pd.DataFrame], int], list[Verdict]]],
) -> list[ExampleOutcome]:
    """Every example of every rule on every engine; an outcome says whether it behaved."""
    outcomes: list[ExampleOutcome] = []
    for rule in rules:
        for example in rule.examples:
            frames = example_frames(rule, example, model, tz)
            encoded = {t: encode_frame(model[t], f) for t, f in frames.items()}
            as_of_ms = timestamp_ms(pd.Timestamp(example.as_of or DEFAULT_AS_OF))
            subject_id = str(frames[rule.record_type]["id"].iloc[0])
            for engine, run in engines.items():
                verdicts = [v for v in run(rule, encoded, as_of_ms) if v.record_id == subject_id]
                if example.expect == "pass":
                    ok, detail = not verdicts, "flagged although it should pass" if verdicts else "passed"
                else:
                    ok = bool(verdicts) and (
                        example.severity is None or verdicts[0].severity == example.severity
                    )
                    detail = (
                        "not flagged although it should fail"
                        if not verdicts
                        else f"flagged at {verdicts[0].severity}"
                        + ("" if ok else f", expected {example.severity}")
                    )
                outcomes.append(ExampleOutcome(rule.id, engine, example.expect, example.line, ok, detail))
    return outcomes
