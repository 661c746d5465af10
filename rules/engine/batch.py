"""The batch engine: rules as vectorised pandas operations (merges, masks, group-bys).

A *binding frame* has one row per binding of scopes to records; its columns are
`<scope>.<field>` (encoded values) and `<scope>.<field>__p` (presence). The record frame binds
only `record`; each `Exists` merges the related type on its join keys, evaluates its body on
the merged frame and reduces back to the outer rows. No per-row Python loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from rules.engine.derive import derive_columns
from rules.engine.encode import PRESENT_SUFFIX
from rules.engine.verdict import Verdict
from rules.lang.ir import (
    RECORD,
    And,
    Bool,
    Cmp,
    CompiledRule,
    Const,
    Exists,
    Expr,
    Node,
    Not,
    Or,
    Present,
    Ref,
    aliases_bound,
    refs_of,
    scopes_of,
)

BoolArray = np.ndarray

_OPS: dict[str, Callable[[object, object], object]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,  # type: ignore[operator]
    "le": lambda a, b: a <= b,  # type: ignore[operator]
    "gt": lambda a, b: a > b,  # type: ignore[operator]
    "ge": lambda a, b: a >= b,  # type: ignore[operator]
}


def col(ref: Ref) -> str:
    return f"{ref.scope}.{ref.field}"


def prefixed(frame: pd.DataFrame, scope: str) -> pd.DataFrame:
    return frame.rename(columns=lambda c: f"{scope}.{c}")


def _value(frame: pd.DataFrame, expr: Expr) -> object:
    if isinstance(expr, Const):
        return expr.value
    if isinstance(expr, Ref):
        return frame[col(expr)].to_numpy()
    base = frame[col(expr.ref)].to_numpy()
    return base + expr.const if expr.op == "+" else base * expr.const


def refs_in(node: Node) -> set[Ref]:
    """Every reference a node reads, presence flags included (for choosing merge columns)."""
    if isinstance(node, Cmp):
        return set(refs_of(node.left)) | set(refs_of(node.right))
    if isinstance(node, Present):
        return {node.ref}
    if isinstance(node, And | Or):
        out: set[Ref] = set()
        for item in node.items:
            out |= refs_in(item)
        return out
    if isinstance(node, Not):
        return refs_in(node.item)
    if isinstance(node, Exists):
        return refs_in(node.body) | {r for _, r in node.keys}
    return set()


def eval_node(frame: pd.DataFrame, node: Node, related: Mapping[str, pd.DataFrame]) -> BoolArray:
    """Evaluate `node` on every row of a binding frame; `related` holds encoded frames by type."""
    n = len(frame)
    if isinstance(node, Bool):
        return np.full(n, node.value, dtype=bool)
    if isinstance(node, Cmp):
        result = _OPS[node.op](_value(frame, node.left), _value(frame, node.right))
        return np.broadcast_to(np.asarray(result, dtype=bool), (n,)).copy()
    if isinstance(node, Present):
        flag: BoolArray = frame[col(node.ref) + PRESENT_SUFFIX].to_numpy() == 1
        return ~flag if node.negated else flag
    if isinstance(node, And):
        acc = np.ones(n, dtype=bool)
        for item in node.items:
            acc &= eval_node(frame, item, related)
        return acc
    if isinstance(node, Or):
        acc = np.zeros(n, dtype=bool)
        for item in node.items:
            acc |= eval_node(frame, item, related)
        return acc
    if isinstance(node, Not):
        return ~eval_node(frame, node.item, related)
    return _eval_exists(frame, node, related)


def _split_local(node: Node, alias: str) -> tuple[list[Node], list[Node]]:
    """Conjuncts of an Exists body that read only the related record filter it before the merge."""
    items: list[Node] = list(node.items) if isinstance(node, And) else [node]
    local: list[Node] = [i for i in items if scopes_of(i) <= {alias} and not isinstance(i, Exists)]
    rest: list[Node] = [i for i in items if not (scopes_of(i) <= {alias} and not isinstance(i, Exists))]
    return local, rest


def _eval_exists(frame: pd.DataFrame, node: Exists, related: Mapping[str, pd.DataFrame]) -> BoolArray:
    n = len(frame)
    source = related.get(node.type)
    if source is None or len(source) == 0 or n == 0:
        return np.zeros(n, dtype=bool)
    right = prefixed(source, node.alias)
    local, rest = _split_local(node.body, node.alias)
    keep = eval_node(right, And(tuple(local)), related) if local else np.ones(len(right), dtype=bool)
    for field, _ in node.keys:
        keep &= right[f"{node.alias}.{field}{PRESENT_SUFFIX}"].to_numpy() == 1
    if not keep.any():
        return np.zeros(n, dtype=bool)
    outer_keys = [col(ref) for _, ref in node.keys]
    inner_keys = [f"{node.alias}.{field}" for field, _ in node.keys]
    # Only the columns the join and the rest of the body read are copied and merged: the related
    # type may be the largest of all (approvals), and most of its columns are not needed here.
    inner_needed = {col(r) for r in refs_in(And(tuple(rest))) if r.scope == node.alias} | set(inner_keys)
    inner_needed |= {c + PRESENT_SUFFIX for c in inner_needed}
    right = right.loc[keep, [c for c in right.columns if c in inner_needed]]
    needed = {
        col(r) for r in refs_in(And(tuple(rest))) if r.scope != node.alias and not _bound_inside(r, rest)
    }
    needed |= {c + PRESENT_SUFFIX for c in needed}
    left_cols = [c for c in frame.columns if c in needed or c in outer_keys]
    left = frame[left_cols].copy()
    left["__row__"] = np.arange(n)
    present = np.ones(n, dtype=bool)
    for _, ref in node.keys:
        present &= frame[col(ref) + PRESENT_SUFFIX].to_numpy() == 1
    left = left[present]
    merged = left.merge(right, left_on=outer_keys, right_on=inner_keys, how="inner", suffixes=("", "__dup"))
    if len(merged) == 0:
        return np.zeros(n, dtype=bool)
    if rest:
        merged = merged[eval_node(merged, And(tuple(rest)), related)]
    hit = np.zeros(n, dtype=bool)
    hit[merged["__row__"].to_numpy()] = True
    return hit


def _bound_inside(ref: Ref, nodes: Iterable[Node]) -> bool:
    """A reference to an alias bound by a nested Exists is not a column of the outer frame."""
    return any(ref.scope in aliases_bound(n) for n in nodes)


def record_frame(encoded: pd.DataFrame) -> pd.DataFrame:
    return prefixed(encoded, RECORD)


def evaluate_rule(
    rule: CompiledRule,
    encoded: Mapping[str, pd.DataFrame],
    *,
    as_of_ms: int,
    tz: ZoneInfo,
) -> list[Verdict]:
    """All verdicts of one rule over every record of its type."""
    subject = encoded.get(rule.record_type)
    if subject is None or len(subject) == 0:
        return []
    frame = derive_columns(record_frame(subject), rule.derivations, as_of_ms=as_of_ms, tz=tz, related=encoded)
    severity = np.full(len(frame), "", dtype=object)
    for level in rule.levels:  # ascending: a later (higher) level overwrites a lower one
        severity[eval_node(frame, level.violation, encoded)] = level.severity
    hit = severity != ""
    ids = frame[f"{RECORD}.id"].to_numpy()[hit]
    return [
        Verdict(rule.id, rule.record_type, str(i), str(s)) for i, s in zip(ids, severity[hit], strict=True)
    ]


def evaluate(
    rules: Iterable[CompiledRule],
    encoded: Mapping[str, pd.DataFrame],
    *,
    as_of_ms: int,
    tz: ZoneInfo,
    progress: Callable[[str], None] | None = None,
) -> list[Verdict]:
    """Every verdict of every rule, in rule order then record order."""
    verdicts: list[Verdict] = []
    for rule in rules:
        if progress is not None:
            progress(rule.id)
        verdicts.extend(evaluate_rule(rule, encoded, as_of_ms=as_of_ms, tz=tz))
    return verdicts
