"""Data quality meets the rules: which fields a rule reads, and which verdicts cannot stand.

A rule's verdict on a record is only as good as the fields it read. When one of those fields
failed a data-quality expectation on that record (`CheckRun.unverifiable`), the rule is
*unverifiable* for the record: the verdict becomes a data-quality finding instead of a
violation, so nobody is penalised for what may be a typo. A failing field the rule does not read
leaves the verdict a violation. Every verdict names its record by `id`, so a failing `id`
(missing or duplicated) makes every rule unverifiable for that record.

Only the subject record's fields count: the related records a rule joins (e.g. approvals) are
checked by their own suites and reported there, but do not turn the verdict into a finding.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from rules.engine.verdict import Verdict
from rules.lang.ir import (
    AS_OF,
    RECORD,
    Aggregate,
    And,
    Cmp,
    CompiledRule,
    Exists,
    Node,
    Not,
    Or,
    PeriodBound,
    Present,
    refs_of,
)

IDENTITY_FIELD = "id"


class HasCompiled(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def compiled(self) -> CompiledRule: ...


@dataclass(frozen=True, slots=True)
class UnverifiableVerdict:
    """A verdict that cannot stand: `fields` of its record, read by the rule, failed data quality."""

    verdict: Verdict
    fields: tuple[str, ...]

    @property
    def rule(self) -> str:
        return self.verdict.rule

    @property
    def record_type(self) -> str:
        return self.verdict.record_type

    @property
    def record_id(self) -> str:
        return self.verdict.record_id


def _node_fields(node: Node, out: set[str]) -> None:
    if isinstance(node, Cmp):
        out.update(r.field for r in (*refs_of(node.left), *refs_of(node.right)) if r.scope == RECORD)
    elif isinstance(node, Present):
        if node.ref.scope == RECORD:
            out.add(node.ref.field)
    elif isinstance(node, And | Or):
        for item in node.items:
            _node_fields(item, out)
    elif isinstance(node, Not):
        _node_fields(node.item, out)
    elif isinstance(node, Exists):
        out.update(ref.field for _, ref in node.keys if ref.scope == RECORD)
        _node_fields(node.body, out)


def fields_read(rule: CompiledRule) -> set[str]:
    """The fields of its own record a rule reads: every `record.<field>` of its levels
    (inside `Exists` bodies and join keys too) and of its aggregates' joins. Derived values
    (the as-of time, period bounds, aggregate sums) are not record fields and are left out."""
    out: set[str] = set()
    for level in rule.levels:
        _node_fields(level.violation, out)
    derived = {AS_OF}
    for d in rule.derivations:
        if isinstance(d, PeriodBound):
            derived.add(d.column)
        elif isinstance(d, Aggregate):
            derived.add(d.name)
            for part in d.parts:
                out.update(record_field for _, record_field in part.keys)
                if part.year_of is not None:
                    out.add(part.year_of)
    return out - derived


def split_verdicts(
    verdicts: Iterable[Verdict],
    rules: Iterable[HasCompiled | CompiledRule] | Mapping[str, HasCompiled | CompiledRule],
    unverifiable: Mapping[tuple[str, str], set[str]],
) -> tuple[list[Verdict], list[UnverifiableVerdict]]:
    """(violations, data-quality findings): a verdict on a record with a failing field that
    its rule reads (or a failing id) becomes an `UnverifiableVerdict`; the others stay
    violations, in their order. `rules` are library rules (`Rule`) or compiled rules."""
    items = rules.values() if isinstance(rules, Mapping) else rules
    compiled = {r.id: (r if isinstance(r, CompiledRule) else r.compiled) for r in items}
    needed: dict[str, set[str]] = {}
    violations: list[Verdict] = []
    findings: list[UnverifiableVerdict] = []
    for v in verdicts:
        bad = unverifiable.get((v.record_type, v.record_id))
        if not bad:
            violations.append(v)
            continue
        if v.rule not in needed:
            if v.rule not in compiled:
                raise KeyError(f"verdict of rule {v.rule}, which is not among the rules given")
            needed[v.rule] = fields_read(compiled[v.rule]) | {IDENTITY_FIELD}
        hit = bad & needed[v.rule]
        if hit:
            findings.append(UnverifiableVerdict(v, tuple(sorted(hit))))
        else:
            violations.append(v)
    return violations, findings
