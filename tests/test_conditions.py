"""The condition vocabulary: every registered type documents itself with an example that compiles."""

from __future__ import annotations

import re
import textwrap

import pytest
from ruamel.yaml import YAML

from rules.lang.conditions import REGISTRY, compile_condition
from rules.lang.context import CompileContext
from rules.lang.ir import RECORD, Bool
from rules.problems import Problems
from tests.helpers import policy_library


def example_of(cls: type) -> tuple[str, str]:
    doc = cls.__doc__ or ""
    match = re.search(r"Example(?: \(record type (\w+)\))?::\n\n(.*)", doc, re.S)
    assert match, f"{cls.__name__} has no docstring example"
    return match.group(1) or cls.example_record_type, textwrap.dedent(match.group(2))


def compile_yaml(record_type: str, text: str) -> tuple[object, Problems]:
    lib = policy_library()
    problems = Problems()
    ctx = CompileContext(
        model=lib.model,
        params=lib.parameters,
        problems=problems,
        file="example.yaml",
        rule_id="EX-000",
        scopes=[(RECORD, record_type)],
    )
    spec = YAML(typ="rt").load(text)
    return compile_condition(spec, ctx, {"c": spec}, "c", "condition"), problems


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_condition_type_has_a_compiling_example(name: str) -> None:
    cls = REGISTRY[name]
    record_type, text = example_of(cls)
    assert re.search(rf"(^|[{{\s]){name}:", text), "the example must use the type it documents"
    node, problems = compile_yaml(record_type, text)
    assert not problems, [str(p) for p in problems]
    assert node != Bool(False)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_condition_type_declares_its_schema(name: str) -> None:
    assert REGISTRY[name].schema, f"{name} declares no schema"


@pytest.mark.parametrize(
    ("record_type", "text", "expected"),
    [
        ("expense_claim", "compare: {field: amout, op: gt, value: 1}", "expense_claim has no field 'amout'"),
        (
            "expense_claim",
            "compare: {field: amount, op: gt, value: {param: no_such}}",
            "unknown parameter 'no_such'",
        ),
        (
            "expense_claim",
            "compare: {field: amount, op: gt, value: {param: cs_resolve_days}}",
            "parameter cs_resolve_days is of type days",
        ),
        (
            "expense_claim",
            "compare: {field: amount, op: gt, value: {field: submitted_at}}",
            "cannot compare record.amount (decimal)",
        ),
        ("expense_claim", "compare: {field: amount, op: bigger, value: 1}", "'bigger' is not one of"),
        ("expense_claim", "compare: {field: amount, op: gt, value: 1.234}", "more than 2 decimal places"),
        ("expense_claim", "compare: {field: category, op: eq, value: luxury}", "not one of"),
        ("expense_claim", "compare: {field: amount, op: gt}", "missing key 'value'"),
        ("expense_claim", "compare: {field: amount, op: gt, value: 1, extra: 2}", "unknown key 'extra'"),
        ("expense_claim", "comparez: {field: amount}", "unknown condition type 'comparez'"),
        (
            "expense_claim",
            "related: {type: approvals, on: {record_id: id}}",
            "unknown record type 'approvals'",
        ),
        (
            "expense_claim",
            "related: {type: approval, on: {record_idx: id}}",
            "approval has no field 'record_idx'",
        ),
        ("expense_claim", "related: {type: approval, on: {record_id: amount}}", "differ in type"),
        (
            "expense_claim",
            "related: {type: approval, on: {record_id: id}, where: {present: nobody.x}}",
            "unknown scope 'nobody'",
        ),
        (
            "complaint",
            "within_days: {start: received_at, end: resolved_at, days: -1}",
            "expected a number of days",
        ),
        (
            "inventory_count",
            "in_last_period: {field: counted_at, period: week}",
            "expected one of ['month', 'quarter', 'year']",
        ),
        ("expense_claim", "all: []", "expected a non-empty list"),
    ],
)
def test_meaning_errors_are_specific(record_type: str, text: str, expected: str) -> None:
    _, problems = compile_yaml(record_type, text)
    messages = [p.message_en for p in problems]
    assert any(expected in m for m in messages), messages
    assert all(p.policy == "EX-000" and p.file == "example.yaml" for p in problems)
    assert all(p.message_zh for p in problems)
