"""The intermediate representation every rule compiles to, and both engines execute.

Values are *encoded* before evaluation (see `rules.engine.encode`): timestamps as int epoch
milliseconds, decimals as int hundredths, bools as 0/1, strings as str. A missing value is
encoded as a sentinel (0 or "") with a presence flag column/attribute `<field>__p` (1/0), because
durable-rules fails on a missing property. `Cmp` compares encoded values only; the condition
types always pair it with `Present` tests, so a comparison with a missing operand is false.

Scopes: `record` is the record under evaluation; a related record is bound to its alias
(`Exists.alias`). Derived values (as-of time, period bounds, aggregates) are attributes of the
`record` scope computed before evaluation by `rules.engine.derive`, identically for both engines.

Arithmetic is at most one binary operation with a constant (`Arith`), the limit durable-rules
supports; constants are folded at compile time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

RECORD = "record"

Op = Literal["eq", "ne", "lt", "le", "gt", "ge"]
NEGATED_OP: dict[str, Op] = {"eq": "ne", "ne": "eq", "lt": "ge", "le": "gt", "gt": "le", "ge": "lt"}
FLIPPED_OP: dict[str, Op] = {"eq": "eq", "ne": "ne", "lt": "gt", "le": "ge", "gt": "lt", "ge": "le"}
Scalar = int | float | str


@dataclass(frozen=True, slots=True)
class Ref:
    """A field of a scope: `Ref("record", "amount")`, `Ref("gm", "decided_at")`."""

    scope: str
    field: str

    def __str__(self) -> str:
        return f"{self.scope}.{self.field}"


@dataclass(frozen=True, slots=True)
class Const:
    value: Scalar


@dataclass(frozen=True, slots=True)
class Arith:
    """`ref + const` or `ref * const` (a single binary operation, as durable-rules allows)."""

    ref: Ref
    op: Literal["+", "*"]
    const: int | float


Expr = Ref | Const | Arith


def refs_of(expr: Expr) -> tuple[Ref, ...]:
    if isinstance(expr, Ref):
        return (expr,)
    if isinstance(expr, Arith):
        return (expr.ref,)
    return ()


@dataclass(frozen=True, slots=True)
class Cmp:
    left: Expr
    op: Op
    right: Expr


@dataclass(frozen=True, slots=True)
class Present:
    """True when the field has a value (`negated`: when it is missing)."""

    ref: Ref
    negated: bool = False


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Node


@dataclass(frozen=True, slots=True)
class Exists:
    """Some record of `type`, bound to `alias`, makes `body` true. `keys` are the join:
    related field -> the outer reference it must equal (both present)."""

    alias: str
    type: str
    keys: tuple[tuple[str, Ref], ...]
    body: Node


@dataclass(frozen=True, slots=True)
class Bool:
    value: bool


Node = Cmp | Present | And | Or | Not | Exists | Bool
TRUE = Bool(True)
FALSE = Bool(False)


# --- derived values (computed on the record scope before evaluation) -----------------------

AS_OF = "as_of__"


@dataclass(frozen=True, slots=True)
class PeriodBound:
    """Start or end (exclusive) of the last complete calendar period before the as-of time."""

    period: Literal["month", "quarter", "year"]
    which: Literal["start", "end"]

    @property
    def column(self) -> str:
        return f"{self.which}_of_last_{self.period}__"


@dataclass(frozen=True, slots=True)
class AggregatePart:
    """Sum of `field` over records of `type` joined on `keys`, optionally restricted by `where`
    (over the related record only) and to the calendar year (company time zone) of `year_field`
    equal to the record's `year_of`."""

    type: str
    keys: tuple[tuple[str, str], ...]  # related field -> record field
    field: str
    where: Node
    year_field: str | None = None
    year_of: str | None = None


@dataclass(frozen=True, slots=True)
class Aggregate:
    name: str  # column on the record scope, e.g. "agg_fin_001_1__"
    parts: tuple[AggregatePart, ...]


Derivation = PeriodBound | Aggregate


@dataclass(frozen=True)
class CompiledLevel:
    severity: str
    violation: Node


@dataclass(frozen=True)
class CompiledRule:
    """What the engines run: per level, the violation condition over the record scope."""

    id: str
    record_type: str
    levels: tuple[CompiledLevel, ...]  # ascending severity; the verdict takes the highest that holds
    derivations: tuple[Derivation, ...] = field(default=())


# --- normal forms -----------------------------------------------------------------------------


def negate(node: Node) -> Node:
    """Negation pushed to the leaves (negation normal form); `Not(Exists)` stays as is."""
    if isinstance(node, Bool):
        return Bool(not node.value)
    if isinstance(node, Cmp):
        return Cmp(node.left, NEGATED_OP[node.op], node.right)
    if isinstance(node, Present):
        return Present(node.ref, not node.negated)
    if isinstance(node, And):
        return Or(tuple(negate(i) for i in node.items))
    if isinstance(node, Or):
        return And(tuple(negate(i) for i in node.items))
    if isinstance(node, Not):
        return nnf(node.item)
    return Not(nnf(node))


def nnf(node: Node) -> Node:
    if isinstance(node, Not):
        return negate(node.item)
    if isinstance(node, And):
        return simplify(And(tuple(nnf(i) for i in node.items)))
    if isinstance(node, Or):
        return simplify(Or(tuple(nnf(i) for i in node.items)))
    if isinstance(node, Exists):
        return Exists(node.alias, node.type, node.keys, nnf(node.body))
    return node


def simplify(node: Node) -> Node:
    """Flatten nested And/Or and fold boolean constants."""
    if isinstance(node, And | Or):
        kind = type(node)
        unit, zero = (True, False) if isinstance(node, And) else (False, True)
        items: list[Node] = []
        for item in node.items:
            s = simplify(item)
            if isinstance(s, Bool):
                if s.value == zero:
                    return Bool(zero)
                continue
            if isinstance(s, kind):
                items.extend(s.items)
            else:
                items.append(s)
        if not items:
            return Bool(unit)
        if len(items) == 1:
            return items[0]
        return kind(tuple(items))
    if isinstance(node, Not):
        inner = simplify(node.item)
        return Bool(not inner.value) if isinstance(inner, Bool) else Not(inner)
    if isinstance(node, Exists):
        body = simplify(node.body)
        if isinstance(body, Bool) and not body.value:
            return Bool(False)
        return Exists(node.alias, node.type, node.keys, body)
    return node


def scopes_of(node: Node) -> set[str]:
    """Every scope a node reads (aliases bound inside an Exists are excluded)."""
    if isinstance(node, Cmp):
        return {r.scope for r in (*refs_of(node.left), *refs_of(node.right))}
    if isinstance(node, Present):
        return {node.ref.scope}
    if isinstance(node, And | Or):
        out: set[str] = set()
        for i in node.items:
            out |= scopes_of(i)
        return out
    if isinstance(node, Not):
        return scopes_of(node.item)
    if isinstance(node, Exists):
        inner = scopes_of(node.body) | {r.scope for _, r in node.keys}
        inner.discard(node.alias)
        return inner
    return set()


def aliases_bound(node: Node) -> set[str]:
    if isinstance(node, Exists):
        return {node.alias} | aliases_bound(node.body)
    if isinstance(node, And | Or):
        out: set[str] = set()
        for i in node.items:
            out |= aliases_bound(i)
        return out
    if isinstance(node, Not):
        return aliases_bound(node.item)
    return set()
