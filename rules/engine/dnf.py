"""Normalise a violation condition into conjunctions durable-rules can run.

durable-rules matches a rule as an ordered list of *patterns*: the record first, then related
records joined to it, then `none(...)` patterns (no related record of that kind exists). Each
pattern is one expression (`&`, `|`) over the fact it matches and, through closures, over the
facts matched by earlier patterns. A violation `Node` is therefore rewritten into a disjunction
of `Conjunction`s, each of which becomes one durable rule:

* `record_terms`: an expression over the record only;
* `positives`: related records, in join order (a pattern reads the record and earlier positives);
* `negatives`: `none(...)` patterns (read the record and the positives).

The rewriting (after `nnf`):

* `Exists(X, Lo & Lx)` = `Lo & Exists(X, Lx)`: conjuncts of the body that do not read `X` are
  pulled out to the pattern of the scope they read; nested `Exists` become further positives.
* `Not(Exists(X, D1 | ... | Dn))` = AND over i of `(not Lo_i) | none(X & Lx_i)`.
* An `Or` is kept whole inside a pattern when every leaf belongs to that pattern; it is
  distributed otherwise. Inside a related pattern, an `Or` must also not mix leaves that read
  only the related record with leaves that join it to an outer scope: durable-rules evaluates
  the first kind in its alpha network and the second in the join, and an `Or` across the two
  gives wrong matches (and crashes `delete_state`). Such an `Or` is distributed too (for a
  `none` this only adds a `none` to the same conjunction).
* Comparisons are oriented so that the pattern's own field is on the left (`FLIPPED_OP`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from rules.lang.ir import (
    FLIPPED_OP,
    RECORD,
    And,
    Arith,
    Bool,
    Cmp,
    Const,
    Exists,
    Expr,
    Node,
    Not,
    Or,
    Present,
    Ref,
    negate,
    nnf,
    refs_of,
    scopes_of,
    simplify,
)

MAX_CONJUNCTIONS = 64


class UnsupportedCondition(ValueError):  # noqa: N818 (the name the rule loader reports)
    """The condition cannot be run by the streaming engine (the message says why)."""


@dataclass(frozen=True, slots=True)
class Pattern:
    """A related record of `type`, bound to `alias`, joined on `keys` (related field -> outer
    reference, both present), matching `terms` (over the alias and earlier scopes; comparisons
    have the alias's own field or arithmetic on the left)."""

    alias: str
    type: str
    keys: tuple[tuple[str, Ref], ...]
    terms: Node


@dataclass(frozen=True, slots=True)
class Conjunction:
    record_terms: Node
    positives: tuple[Pattern, ...] = ()
    negatives: tuple[Pattern, ...] = ()


@dataclass(frozen=True, slots=True)
class _Part:
    """A conjunction under construction: `lits` are Exists-free subtrees (any scope)."""

    lits: tuple[Node, ...] = ()
    pos: tuple[Pattern, ...] = ()
    neg: tuple[Pattern, ...] = ()

    def merge(self, other: _Part) -> _Part:
        return _Part(self.lits + other.lits, self.pos + other.pos, self.neg + other.neg)


_CMP_OPS: dict[str, Callable[[object, object], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,  # type: ignore[operator]
    "le": lambda a, b: a <= b,  # type: ignore[operator]
    "gt": lambda a, b: a > b,  # type: ignore[operator]
    "ge": lambda a, b: a >= b,  # type: ignore[operator]
}


def normalise(node: Node, *, limit: int = MAX_CONJUNCTIONS) -> list[Conjunction]:
    """The violation `node` as a disjunction of conjunctions (an empty list: never violated)."""
    return _Normaliser(limit).run(node)


# --- helpers on IR trees -------------------------------------------------------------------------


def _fold(node: Node) -> Node:
    """Fold comparisons between constants (they read no scope)."""
    if isinstance(node, Cmp) and isinstance(node.left, Const) and isinstance(node.right, Const):
        try:
            return Bool(bool(_CMP_OPS[node.op](node.left.value, node.right.value)))
        except TypeError as e:
            raise UnsupportedCondition(
                f"cannot compare constants {node.left.value!r} and {node.right.value!r}"
            ) from e
    if isinstance(node, And):
        return And(tuple(_fold(i) for i in node.items))
    if isinstance(node, Or):
        return Or(tuple(_fold(i) for i in node.items))
    if isinstance(node, Not):
        return Not(_fold(node.item))
    if isinstance(node, Exists):
        return Exists(node.alias, node.type, node.keys, _fold(node.body))
    return node


def _rename_expr(expr: Expr, old: str, new: str) -> Expr:
    if isinstance(expr, Ref) and expr.scope == old:
        return Ref(new, expr.field)
    if isinstance(expr, Arith) and expr.ref.scope == old:
        return Arith(Ref(new, expr.ref.field), expr.op, expr.const)
    return expr


def rename_scope(node: Node, old: str, new: str) -> Node:
    """Rename scope `old` to `new` (an Exists rebinding `old` shadows it in its body, not its keys)."""
    if isinstance(node, Cmp):
        return Cmp(_rename_expr(node.left, old, new), node.op, _rename_expr(node.right, old, new))
    if isinstance(node, Present):
        return Present(Ref(new, node.ref.field), node.negated) if node.ref.scope == old else node
    if isinstance(node, And):
        return And(tuple(rename_scope(i, old, new) for i in node.items))
    if isinstance(node, Or):
        return Or(tuple(rename_scope(i, old, new) for i in node.items))
    if isinstance(node, Not):
        return Not(rename_scope(node.item, old, new))
    if isinstance(node, Exists):
        keys = tuple((f, Ref(new, r.field) if r.scope == old else r) for f, r in node.keys)
        body = node.body if node.alias == old else rename_scope(node.body, old, new)
        return Exists(node.alias, node.type, keys, body)
    return node


def leaves(node: Node) -> Iterable[Node]:
    if isinstance(node, And | Or):
        for i in node.items:
            yield from leaves(i)
    elif isinstance(node, Not):
        yield from leaves(node.item)
    else:
        yield node


def _has_exists(node: Node) -> bool:
    return any(isinstance(leaf, Exists) for leaf in leaves(node))


def _is_own(expr: Expr, own: str) -> bool:
    return isinstance(expr, Ref | Arith) and all(r.scope == own for r in refs_of(expr))


def orient(node: Node, own: str) -> Node:
    """Put the pattern's own field (plain, else with arithmetic) on the left of each comparison."""
    if isinstance(node, Cmp):
        left, right = node.left, node.right
        if isinstance(left, Ref) and left.scope == own:
            return node
        if isinstance(right, Ref) and right.scope == own:
            return Cmp(right, FLIPPED_OP[node.op], left)
        if _is_own(left, own):
            return node
        if _is_own(right, own):
            return Cmp(right, FLIPPED_OP[node.op], left)
        raise UnsupportedCondition(f"comparison {node} does not read {own!r}")
    if isinstance(node, And):
        return And(tuple(orient(i, own) for i in node.items))
    if isinstance(node, Or):
        return Or(tuple(orient(i, own) for i in node.items))
    return node


def _describe(pattern: Pattern) -> str:
    return f"{pattern.alias}: {pattern.type}"


# --- the normaliser ------------------------------------------------------------------------------


@dataclass
class _Normaliser:
    limit: int
    used: set[str] = field(default_factory=lambda: {RECORD})

    def run(self, node: Node) -> list[Conjunction]:
        root = simplify(nnf(_fold(node)))
        parts = self._dnf(root, (RECORD,))
        out: list[Conjunction] = []
        seen: set[Conjunction] = set()
        for part in parts:
            terms = simplify(And(tuple(_unique(part.lits))))
            if isinstance(terms, Bool) and not terms.value:
                continue
            conj = Conjunction(orient(terms, RECORD), tuple(_unique(part.pos)), tuple(_unique(part.neg)))
            if conj not in seen:
                seen.add(conj)
                out.append(conj)
        return out

    # chain: the scopes in join order (record first, then the enclosing aliases)

    def _fresh(self, alias: str) -> str:
        name, n = alias, 2
        while name in self.used:
            name, n = f"{alias}_{n}", n + 1
        self.used.add(name)
        return name

    def _home(self, node: Node, chain: Sequence[str]) -> int:
        """Index in `chain` of the innermost scope an Exists-free subtree reads."""
        home = 0
        for scope in scopes_of(node):
            if scope not in chain:
                raise UnsupportedCondition(f"reference to unknown scope {scope!r}")
            home = max(home, chain.index(scope))
        return home

    def _whole(self, node: Node, chain: Sequence[str]) -> bool:
        """Can an Exists-free subtree stay one expression in a single pattern?"""
        homes = {self._home(leaf, chain) for leaf in leaves(node)}
        if len(homes) != 1:
            return False
        home = homes.pop()
        if home == 0:
            return True
        own = chain[home]
        kinds = {scopes_of(leaf) == {own} for leaf in leaves(node)}  # local vs join leaves
        return len(kinds) == 1

    def _check(self, parts: list[_Part]) -> list[_Part]:
        if len(parts) > self.limit:
            raise UnsupportedCondition(
                f"the condition expands to more than {self.limit} alternatives for the streaming engine"
            )
        return parts

    def _product(self, factors: Iterable[list[_Part]]) -> list[_Part]:
        acc = [_Part()]
        for factor in factors:
            acc = self._check([a.merge(b) for a, b in itertools.product(acc, factor)])
            if not acc:
                return []
        return acc

    def _dnf(self, node: Node, chain: tuple[str, ...]) -> list[_Part]:
        if isinstance(node, Bool):
            return [_Part()] if node.value else []
        if isinstance(node, Cmp | Present):
            self._home(node, chain)  # validates the scopes
            return [_Part(lits=(node,))]
        if isinstance(node, And):
            if not _has_exists(node) and all(
                not isinstance(i, Or) or self._whole(i, chain) for i in node.items
            ):
                return [_Part(lits=node.items)]
            return self._product(self._dnf(i, chain) for i in node.items)
        if isinstance(node, Or):
            if not _has_exists(node) and self._whole(node, chain):
                return [_Part(lits=(node,))]
            return self._check([p for i in node.items for p in self._dnf(i, chain)])
        if isinstance(node, Exists):
            return self._exists(node, chain)
        if isinstance(node, Not) and isinstance(node.item, Exists):
            return self._not_exists(node.item, chain)
        raise UnsupportedCondition(f"unexpected {type(node).__name__} after negation normal form")

    def _bind(self, node: Exists, chain: tuple[str, ...]) -> tuple[str, tuple[tuple[str, Ref], ...], Node]:
        alias = self._fresh(node.alias)
        for f, ref in node.keys:
            if ref.scope not in chain:
                raise UnsupportedCondition(f"join key {node.alias}.{f} = {ref}: unknown scope {ref.scope!r}")
        body = rename_scope(node.body, node.alias, alias) if alias != node.alias else node.body
        return alias, node.keys, body

    def _split(self, part: _Part, alias: str, chain: tuple[str, ...]) -> tuple[list[Node], list[Node]]:
        """Literals of a body part that read the alias, and those pulled out to outer scopes."""
        own_index = len(chain)
        inner = (*chain, alias)
        own = [lit for lit in part.lits if self._home(lit, inner) == own_index]
        outer = [lit for lit in part.lits if self._home(lit, inner) != own_index]
        return own, outer

    def _exists(self, node: Exists, chain: tuple[str, ...]) -> list[_Part]:
        alias, keys, body = self._bind(node, chain)
        out: list[_Part] = []
        for part in self._dnf(body, (*chain, alias)):
            own, outer = self._split(part, alias, chain)
            terms = orient(simplify(And(tuple(_unique(own)))), alias)
            if isinstance(terms, Bool) and not terms.value:
                continue
            pattern = Pattern(alias, node.type, keys, terms)
            out.append(_Part(tuple(outer), (pattern, *part.pos), part.neg))
        return self._check(out)

    def _not_exists(self, node: Exists, chain: tuple[str, ...]) -> list[_Part]:
        alias, keys, body = self._bind(node, chain)
        # group the body's disjuncts by their outer literals Lo: for one Lo,
        # AND_i (not Lo | none_i) = not Lo | AND_i none_i (no blow-up when Lo repeats)
        groups: dict[frozenset[Node], tuple[list[Node], list[Pattern]]] = {}
        for part in self._dnf(body, (*chain, alias)):
            if part.pos or part.neg:
                nested = ", ".join(_describe(p) for p in (*part.pos, *part.neg)) or "?"
                raise UnsupportedCondition(
                    f"a 'no {node.type} exists' condition ({node.alias}) whose condition contains another "
                    f"exists/none ({nested}) is not supported by the streaming engine"
                )
            own, outer = self._split(part, alias, chain)
            terms = orient(simplify(And(tuple(own))), alias)
            if isinstance(terms, Bool) and not terms.value:
                continue  # none(nothing) is always true
            outer_lits, nones = groups.setdefault(frozenset(outer), (_unique(outer), []))
            nones.append(Pattern(alias, node.type, keys, terms))
        factors: list[list[_Part]] = []
        for outer_lits, nones in groups.values():
            factor = [_Part(neg=tuple(_unique(nones)))]
            if outer_lits:
                factor += self._dnf(simplify(negate(And(tuple(outer_lits)))), chain)
            factors.append(self._check(factor))
        return self._product(factors)


_T = TypeVar("_T")


def _unique(items: Iterable[_T]) -> list[_T]:
    return list(dict.fromkeys(items))


__all__ = [
    "MAX_CONJUNCTIONS",
    "Conjunction",
    "Pattern",
    "UnsupportedCondition",
    "leaves",
    "normalise",
    "orient",
    "rename_scope",
]
