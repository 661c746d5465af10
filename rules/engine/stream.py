"""The streaming engine: each record is judged by durable-rules when it arrives, with its related
records, and reaches exactly the verdicts of `rules.engine.batch`.

The only module of zhidu that talks to durable-rules. One durable ruleset per record type holds
every level of every rule of that type; each level's violation is normalised
(`rules.engine.dnf`) into conjunctions, one durable rule each: the record pattern first, then
the related records joined to it, then `none(...)` patterns.

A *session* (a durable state id) judges a small group of records (`group_size`): its related
facts are asserted first and its record facts last, in one `assert_facts` call (durable evaluates
a `none` when the record arrives), the actions collect the matches, and the state is deleted.
The Python work is done once per *chunk* of consecutive records (`_CHUNK`), not per session:
the related records of the whole chunk are fetched from a `RelatedSource` in one look-up per
fetch step, the derived values (as-of time, period bounds, aggregates) are computed by
`derive_columns` (the batch code) on the chunk's record frame, and every fact's JSON text is
written once, column by column. Each session then gets exactly the related records its own
records' keys select (as if fetched for that group alone), minus those that can match no
pattern: a related record must pass, for at least one pattern of its kind, the pattern's tests
on the related record alone and, for each comparison with a record field, the comparison with
some record of the chunk (`_Filter`). That only leaves out facts durable could never bind; every
verdict still comes from durable's matching.

durable-rules 2.0.28 constraints this module works around (all verified against its C source):

* The engine is global C state and not thread-safe: every call holds one module lock. No
  durable `Host` is used, so no background dispatcher thread ever touches our rulesets.
* A ruleset breaks for good past 1024 live state ids, and states, messages and properties are
  looked up by a 32-bit FNV hash of their name only: sessions use a bounded pool of state ids
  with distinct hashes and are always deleted; fact ids come from a list without hash
  collisions; attribute names are checked for collisions.
* `delete_state` frees an uninitialised action context unless an action has run in that
  state: each session first asserts an *opener* fact whose (empty) action runs at once.
* An action exception is swallowed by durable's Python layer: we drive the actions ourselves
  (`start_action_for_state` / `complete_and_start_action`) and raise `StreamEngineError`.
* A missing property fails a join (error 311): every fact carries every attribute a pattern
  reads on its kind (values are encoded with sentinels and `__p` presence flags).
* Facts with equal ids collide: ids are per session, never derived from content.
* Rules match distinct facts by default (`dist`): we set `dist: 0`, as batch lets two aliases
  bind the same record. `cap` delivers all matches of a rule in one action.
* Strings compare with `strncmp` on the raw JSON text, past the shorter string's end: the few
  characters that would misorder (below `$`) or need a JSON escape are replaced by order-keeping
  tokens (`durable_string`), so durable's order is Python's code-point order. Numbers in
  exponent notation do not parse: floats are written positionally. Equality on values that may
  be floats is written `>= & <=`, because a hashed join compares an int and an equal float by
  their (different) text.
* An `$or` mixing tests on the fact alone with join tests is evaluated wrongly (and crashes
  `delete_state`): `dnf` distributes such an `Or`.
* Cost grows with the properties of each fact and the alpha nodes it visits: attributes get
  short names, a fact carries only what patterns read, and tests on the fact alone come first in
  a canonical order so that patterns share alpha nodes.
"""

from __future__ import annotations

import json
import math
import re
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import count
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from durable import engine

from rules.engine.batch import eval_node, record_frame, refs_in
from rules.engine.derive import derive_columns
from rules.engine.dnf import Conjunction, Pattern, UnsupportedCondition, normalise, rename_scope
from rules.engine.encode import PRESENT_SUFFIX
from rules.engine.related import FrameSource, RelatedSource, ValueIndex
from rules.engine.verdict import Verdict
from rules.lang.ir import (
    RECORD,
    Aggregate,
    And,
    Arith,
    Bool,
    Cmp,
    CompiledLevel,
    CompiledRule,
    Const,
    Derivation,
    Exists,
    Expr,
    Node,
    Not,
    Or,
    Present,
    Ref,
    scopes_of,
    simplify,
)

_DRE: Any = engine.durable_rules_engine
_LOCK = threading.RLock()  # serialises every durable call (re-entrant for the finalizer)

REC = "$rec"  # the `t` of record facts
_OPEN = "$open"  # the `t` of the opener fact
_RESERVED = frozenset({"id", "sid", "t", "k"})
_MAX_PATTERNS = 16  # MAX_MESSAGE_FRAMES: facts joined in one durable rule
_MAX_PROPERTIES = 250  # MAX_OBJECT_PROPERTIES is 255, `id`/`sid`/`t`/`k` included
_POOL_SIZE = 8
_CAP = 100_000
_OPS = {"ne": "$neq", "lt": "$lt", "le": "$lte", "gt": "$gt", "ge": "$gte"}
_NOT_HANDLED, _OBSERVED = 1, 2

ActionHook = Callable[[str, str, str], None]
"""Called inside the durable action for every match: (rule id, severity, record id)."""


class StreamEngineError(RuntimeError):
    """durable-rules failed while judging records (`rule_id` when a rule's action failed)."""

    def __init__(self, message: str, *, rule_id: str | None = None) -> None:
        super().__init__(f"rule {rule_id}: {message}" if rule_id else message)
        self.rule_id = rule_id


# --- names durable identifies by hash --------------------------------------------------------


def fnv1a32(text: str) -> int:
    """durable's `fnv1Hash32` (it XORs signed chars)."""
    h = 0x811C9DC5
    for b in text.encode("utf-8"):
        h ^= (b - 256 if b >= 128 else b) & 0xFFFFFFFF
        h = (h * 16777619) & 0xFFFFFFFF
    return h


def _distinct_hashes(names: Iterable[str], *, taken: set[int] | None = None) -> list[str]:
    seen = set(taken or ())
    out = []
    for name in names:
        h = fnv1a32(name)
        if h not in seen:
            seen.add(h)
            out.append(name)
    return out


_SIDS = tuple(_distinct_hashes(f"z{i}" for i in range(_POOL_SIZE * 2))[:_POOL_SIZE])


class _FactIds:
    """Fact ids with pairwise distinct hashes (durable identifies a message by its id's hash),
    none colliding with a state fact's id (`sid-<sid>`)."""

    def __init__(self) -> None:
        self._ids: list[str] = []
        self._hashes = {fnv1a32(f"sid-{sid}") for sid in _SIDS}
        self._next = 0
        self._lock = threading.Lock()

    def first(self, n: int) -> list[str]:
        if len(self._ids) < n:
            with self._lock:
                while len(self._ids) < n:
                    candidate = format(self._next, "x")
                    self._next += 1
                    h = fnv1a32(candidate)
                    if h not in self._hashes:
                        self._hashes.add(h)
                        self._ids.append(candidate)
        return self._ids[:n]


_FACT_IDS = _FactIds()


# --- values as durable sees them ----------------------------------------------------------------

# durable compares strings with strncmp over the raw JSON text, up to the longer length: a string
# that is a prefix of another is compared with the other's next byte against the closing quote
# (0x22). Characters below `$` (0x24) and the JSON specials are therefore escaped into tokens that
# keep the code-point order: c < 0x24 -> "#" + chr(0x24 + c); "[" -> "[$"; "\" -> "[%". Tokens are
# prefix-free and every byte is >= 0x24, so the byte order of the result is the code-point order
# of the original (UTF-8 is order-preserving), and the text needs no JSON escape.
_ESCAPES: dict[int, str] = {c: "#" + chr(0x24 + c) for c in range(0x24)}
_ESCAPES[ord("[")] = "[$"
_ESCAPES[ord("\\")] = "[%"
_TABLE = str.maketrans(_ESCAPES)


def durable_string(value: str) -> str:
    """A string as durable compares it (see above); byte order = Python's code-point order."""
    out = value.translate(_TABLE)
    if not out.isascii():
        try:
            out.encode("utf-8")
        except UnicodeEncodeError as e:  # a lone surrogate cannot travel as UTF-8
            raise StreamEngineError(f"durable-rules cannot take the string {value!r}") from e
    return out


def _number(value: object) -> int | float:
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value)
    raise StreamEngineError(f"durable-rules cannot take the value {value!r} ({type(value).__name__})")


def _float_text(value: float) -> str:
    if not math.isfinite(value):
        raise StreamEngineError(f"durable-rules cannot take the non-finite number {value!r}")
    text = repr(value)
    return format(Decimal(text), "f") if "e" in text else text  # durable rejects exponents


def _value_text(value: object) -> str:
    """One value as durable JSON text."""
    if isinstance(value, str):
        return f'"{durable_string(value)}"'
    number = _number(value)
    return _float_text(number) if isinstance(number, float) else str(number)


_SPECIAL = re.compile(r"[\x00-\x23\[\\]")


def _column_texts(values: np.ndarray) -> list[str]:
    """The JSON text of each value of a column (in Python: see `_column_json`)."""
    kind = values.dtype.kind
    if kind in "iu":
        return list(map(str, values.tolist()))
    if kind == "b":
        return ["1" if v else "0" for v in values.tolist()]
    if kind == "f":
        return [_float_text(v) for v in values.tolist()]
    items = values.tolist()
    try:
        joined = "".join(items)  # TypeError unless every value is a string
    except TypeError:
        joined = None
    if joined is not None and _SPECIAL.search(joined) is None and (joined.isascii() or _utf8(joined)):
        return [f'"{v}"' for v in items]  # nothing to escape (the usual case)
    codes, uniques = pd.factorize(values, use_na_sentinel=False)  # encode each distinct value once
    texts = np.array([_value_text(v) for v in uniques], dtype=object)
    return texts[codes].tolist()  # type: ignore[no-any-return]


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def dumps(payload: object) -> str:
    """JSON as durable parses it: strings as `durable_string`, floats positional (its parser
    rejects exponents such as `1e-05`), no whitespace."""
    if isinstance(payload, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{dumps(v)}" for k, v in payload.items()) + "}"
    if isinstance(payload, list | tuple):
        return "[" + ",".join(dumps(v) for v in payload) + "]"
    return _value_text(payload)


# --- compiling rules ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Column:
    column: str  # unprefixed column name (the record's derived frame is prefixed on read)


@dataclass(frozen=True, slots=True)
class _Computed:
    column: str
    op: str
    const: int | float


_Source = _Column | _Computed


@dataclass(frozen=True, slots=True)
class _Fetch:
    """Fetch rows of `type` whose `field` is one of the values of `source_field` on the record
    (`source` None) or on the rows fetched by step `source`; `field` None: every row."""

    type: str
    field: str | None
    source: int | None
    source_field: str
    present_only: bool


@dataclass
class _Ruleset:
    """One record type's durable ruleset and what judging a record needs."""

    name: str
    record_type: str
    rules: list[tuple[int, CompiledRule]]
    kinds: dict[str, dict[str, _Source]]  # fact kind (REC or a related type) -> attribute -> source
    codes: dict[str, str]  # fact kind -> its `t`
    derivations: tuple[Derivation, ...]
    fetches: list[_Fetch]
    actions: dict[str, tuple[int, int]]  # durable rule name -> (rule index, level index)
    definition: dict[str, Any]  # durable's JSON ruleset
    filters: dict[str, list[_Filter]]  # related kind -> what its facts must pass (absent: all pass)
    handle: int = 0
    free_sids: list[str] = field(default_factory=lambda: list(reversed(_SIDS)))


_Scopes = Mapping[str, tuple[str, str]]  # IR scope -> (durable alias, fact kind)


class _Builder:
    """Translates conjunctions into durable patterns and records which attributes facts need.
    Attributes get short names (durable hashes every property name of every fact) and a fact
    carries only what some pattern reads on its kind."""

    def __init__(self, float_fields: set[str]) -> None:
        self.kinds: dict[str, dict[str, _Source]] = {REC: {}}
        self.codes: dict[str, str] = {REC: REC}
        self.float_fields = float_fields  # record fields holding floats (aggregates)
        self._names: dict[_Source, str] = {}

    def code(self, kind: str) -> str:
        if kind not in self.codes:
            self.codes[kind] = f"T{len(self.codes)}"
        return self.codes[kind]

    def _register(self, kind: str, source: _Source) -> str:
        name = self._names.setdefault(source, f"a{len(self._names)}")
        self.kinds.setdefault(kind, {})[name] = source
        return name

    def attr(self, kind: str, field_name: str) -> str:
        return self._register(kind, _Column(field_name))

    def flag(self, kind: str, field_name: str) -> str:
        return self._register(kind, _Column(field_name + PRESENT_SUFFIX))

    def computed(self, kind: str, expr: Arith) -> str:
        return self._register(kind, _Computed(expr.ref.field, expr.op, expr.const))

    # expressions

    def _is_float(self, expr: Expr, scopes: _Scopes) -> bool:
        if isinstance(expr, Const):
            return isinstance(expr.value, float)
        if isinstance(expr, Arith) and isinstance(expr.const, float):
            return True
        ref = expr.ref if isinstance(expr, Arith) else expr
        return scopes[ref.scope][1] == REC and ref.field in self.float_fields

    def _operand(self, expr: Expr, own: str, scopes: _Scopes) -> Any:
        if isinstance(expr, Const):
            return expr.value
        ref = expr.ref if isinstance(expr, Arith) else expr
        name, kind = scopes[ref.scope]
        target = (
            {"$m": self.attr(kind, ref.field)} if ref.scope == own else {name: self.attr(kind, ref.field)}
        )
        if isinstance(expr, Ref):
            return target
        return {"$add" if expr.op == "+" else "$mul": {"$l": target, "$r": expr.const}}

    def _cmp(self, node: Cmp, own: str, scopes: _Scopes) -> dict[str, Any]:
        kind = scopes[own][1]
        left = node.left
        if isinstance(left, Ref) and left.scope == own:
            name = self.attr(kind, left.field)
        elif isinstance(left, Arith) and left.ref.scope == own:
            name = self.computed(kind, left)
        else:
            raise UnsupportedCondition(f"comparison {node} is not oriented on {own!r}")
        right = self._operand(node.right, own, scopes)
        if node.op == "eq":
            if self._is_float(node.left, scopes) or self._is_float(node.right, scopes):
                return {"$and": [{"$gte": {name: right}}, {"$lte": {name: right}}]}
            return {name: right}
        return {_OPS[node.op]: {name: right}}

    def _expr(self, node: Node, own: str, scopes: _Scopes) -> Any:
        if isinstance(node, And):
            return _and([self._expr(item, own, scopes) for item in node.items])
        if isinstance(node, Or):
            return {"$or": [self._expr(item, own, scopes) for item in node.items]}
        if isinstance(node, Present):
            if node.ref.scope != own:
                raise UnsupportedCondition(f"presence of {node.ref} inside the pattern of {own!r}")
            return {self.flag(scopes[own][1], node.ref.field): 0 if node.negated else 1}
        if isinstance(node, Cmp):
            return self._cmp(node, own, scopes)
        raise UnsupportedCondition(f"{type(node).__name__} inside a durable pattern")

    def _items(self, kind: str, own: str, node: Node, scopes: _Scopes, joins: list[Any]) -> Any:
        """`t`, then the tests on the fact alone in a canonical order (patterns with common tests
        share durable's alpha nodes), then the join tests (in the given order)."""
        conjuncts = [] if isinstance(node, Bool) else list(node.items) if isinstance(node, And) else [node]
        if isinstance(node, Bool) and not node.value:
            raise UnsupportedCondition("a false term survived normalisation")
        implied = _implied_presence(conjuncts, own)
        conjuncts = [c for c in conjuncts if not (isinstance(c, Present) and (c.ref, c.negated) in implied)]
        local = [self._expr(c, own, scopes) for c in conjuncts if scopes_of(c) <= {own}]
        join = [self._expr(c, own, scopes) for c in conjuncts if not scopes_of(c) <= {own}]
        local.sort(key=lambda item: json.dumps(item, sort_keys=True))
        return _and([{"t": self.code(kind)}, *local, *joins, *join])

    def pattern(self, p: Pattern, scopes: _Scopes) -> Any:
        keys: list[Any] = []
        for related_field, ref in p.keys:
            outer, outer_kind = scopes[ref.scope]
            # the key present, equal to the outer value, and the outer value present (= this flag)
            keys.append({self.attr(p.type, related_field): {outer: self.attr(outer_kind, ref.field)}})
            keys.append({self.flag(p.type, related_field): {outer: self.flag(outer_kind, ref.field)}})
        presence = [Present(Ref(p.alias, f)) for f, _ in p.keys]
        terms = And((*presence, *(p.terms.items if isinstance(p.terms, And) else [p.terms])))
        return self._items(p.type, p.alias, simplify(terms), scopes, keys)

    def conjunction(self, conj: Conjunction) -> list[dict[str, Any]]:
        if 1 + len(conj.positives) > _MAX_PATTERNS:
            raise UnsupportedCondition(
                f"more than {_MAX_PATTERNS - 1} related records joined in one condition"
            )
        scopes: dict[str, tuple[str, str]] = {RECORD: ("r", REC)}
        entries: list[dict[str, Any]] = [{"r": self._items(REC, RECORD, conj.record_terms, scopes, [])}]
        for i, p in enumerate(conj.positives):
            scopes[p.alias] = (f"p{i}", p.type)
            entries.append({f"p{i}": self.pattern(p, scopes)})
        for i, n in enumerate(conj.negatives):
            entries.append({f"n{i}$not": self.pattern(n, {**scopes, n.alias: (f"n{i}", n.type)})})
        return entries


_SENTINEL_TEST: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: bool(a == b),
    "ne": lambda a, b: bool(a != b),
    "lt": lambda a, b: bool(a < b),
    "le": lambda a, b: bool(a <= b),
    "gt": lambda a, b: bool(a > b),
    "ge": lambda a, b: bool(a >= b),
}


def _implied_presence(conjuncts: Sequence[Node], own: str) -> set[tuple[Ref, bool]]:
    """Presence tests a conjunction need not run: a missing value is encoded as the sentinel
    ("" or 0, `rules.engine.encode`), so where a comparison of the field with a constant fails
    on the sentinel, it already fails for a missing value (fewer alpha tests and attributes)."""
    implied: set[tuple[Ref, bool]] = set()
    for c in conjuncts:
        if (
            isinstance(c, Cmp)
            and isinstance(c.left, Ref)
            and c.left.scope == own
            and isinstance(c.right, Const)
        ):
            value = c.right.value
            if isinstance(value, str):
                sentinel: str | int = ""
            elif isinstance(value, int) and not isinstance(value, bool):
                sentinel = 0
            else:
                continue  # floats are aggregates, always present
            if not _SENTINEL_TEST[c.op](sentinel, value):
                implied.add((c.left, False))
    return implied


def _and(items: list[Any]) -> Any:
    return items[0] if len(items) == 1 else {"$and": items}


def _exists_nodes(node: Node) -> Iterable[Exists]:
    if isinstance(node, Exists):
        yield node
        yield from _exists_nodes(node.body)
    elif isinstance(node, And | Or):
        for item in node.items:
            yield from _exists_nodes(item)
    elif isinstance(node, Not):
        yield from _exists_nodes(node.item)


def _plan_fetches(node: Node, env: Mapping[str, int | None], steps: list[_Fetch]) -> None:
    """Fetch steps for every Exists (nested ones from the candidates of their outer alias)."""
    if isinstance(node, And | Or):
        for item in node.items:
            _plan_fetches(item, env, steps)
    elif isinstance(node, Not):
        _plan_fetches(node.item, env, steps)
    elif isinstance(node, Exists):
        if node.keys:
            related_field, ref = node.keys[0]
            if ref.scope not in env:
                raise UnsupportedCondition(f"join key {node.alias}.{related_field} = {ref}: unknown scope")
            step = _Fetch(node.type, related_field, env[ref.scope], ref.field, present_only=True)
        else:
            step = _Fetch(node.type, None, None, "", present_only=False)
        if step not in steps:
            steps.append(step)
        _plan_fetches(node.body, {**env, node.alias: steps.index(step)}, steps)


def _rename_record_field(node: Node, old: str, new: str) -> Node:
    def expr(e: Expr) -> Expr:
        if isinstance(e, Ref) and e.scope == RECORD and e.field == old:
            return Ref(RECORD, new)
        if isinstance(e, Arith) and e.ref.scope == RECORD and e.ref.field == old:
            return Arith(Ref(RECORD, new), e.op, e.const)
        return e

    if isinstance(node, Cmp):
        return Cmp(expr(node.left), node.op, expr(node.right))
    if isinstance(node, Present):
        return Present(Ref(RECORD, new), node.negated) if node.ref == Ref(RECORD, old) else node
    if isinstance(node, And):
        return And(tuple(_rename_record_field(i, old, new) for i in node.items))
    if isinstance(node, Or):
        return Or(tuple(_rename_record_field(i, old, new) for i in node.items))
    if isinstance(node, Not):
        return Not(_rename_record_field(node.item, old, new))
    if isinstance(node, Exists):
        keys = tuple((f, Ref(RECORD, new) if r == Ref(RECORD, old) else r) for f, r in node.keys)
        shadowed = node.alias == RECORD
        return Exists(
            node.alias, node.type, keys, node.body if shadowed else _rename_record_field(node.body, old, new)
        )
    return node


def _unique_derivations(
    rules: Sequence[tuple[int, CompiledRule]],
) -> tuple[list[CompiledRule], tuple[Derivation, ...]]:
    """All rules' derivations on one frame; an aggregate name two rules define differently is
    renamed for the later rule (in its conditions too)."""
    by_name: dict[str, Aggregate] = {}
    derivations: dict[Derivation, None] = {}
    out: list[CompiledRule] = []
    for index, rule in rules:
        levels = rule.levels
        own: list[Derivation] = []
        for derivation in rule.derivations:
            d = derivation
            if isinstance(d, Aggregate) and by_name.get(d.name, d) != d:
                new_name = f"{d.name}r{index}__"
                levels = tuple(
                    CompiledLevel(level.severity, _rename_record_field(level.violation, d.name, new_name))
                    for level in levels
                )
                d = Aggregate(new_name, d.parts)
            if isinstance(d, Aggregate):
                by_name[d.name] = d
            own.append(d)
        derivations.update(dict.fromkeys(own))
        out.append(CompiledRule(rule.id, rule.record_type, levels, tuple(own)))
    return out, tuple(derivations)


_ROW = "row"  # the scope of a related record in a filter (local tests read no other scope)


@dataclass(frozen=True, slots=True)
class _Filter:
    """A necessary condition for a related record to match one pattern: its tests on the
    related record alone (`local`) and its comparisons with a record field (`bounds`: related
    field, operator, record expression), which some record of the group must satisfy. A record
    failing the filters of every pattern of its kind could never be part of a match, so its fact
    is not asserted; every match is still found by durable-rules."""

    local: tuple[Node, ...]  # conjuncts, the related record's scope renamed `_ROW`
    bounds: tuple[tuple[str, str, Ref | Arith], ...]


def _pattern_filter(pattern: Pattern) -> _Filter | None:
    """The filter of a pattern, or None when it admits every related record."""
    items = pattern.terms.items if isinstance(pattern.terms, And) else (pattern.terms,)
    # the join keys are left out: each group's fetch already selects on them
    local: list[Node] = [Present(Ref(pattern.alias, f)) for f, _ in pattern.keys]
    bounds: list[tuple[str, str, Ref | Arith]] = []
    for item in items:
        if isinstance(item, Bool):
            continue
        scopes = scopes_of(item)
        if scopes <= {pattern.alias}:
            local.append(item)
        elif (
            isinstance(item, Cmp)
            and scopes == {pattern.alias, RECORD}
            and isinstance(item.left, Ref)
            and item.left.scope == pattern.alias
            and isinstance(item.right, Ref | Arith)
            and not (isinstance(item.right, Arith) and isinstance(item.right.const, float))
        ):
            bounds.append((item.left.field, item.op, item.right))
    if not local and not bounds:
        return None
    local_node = rename_scope(simplify(And(tuple(local))), pattern.alias, _ROW)
    conjuncts = local_node.items if isinstance(local_node, And) else (local_node,)
    return _Filter(tuple(c for c in conjuncts if not isinstance(c, Bool)), tuple(bounds))


def _add_filters(conj: Conjunction, filters: dict[str, list[_Filter] | None]) -> None:
    for pattern in (*conj.positives, *conj.negatives):
        current = filters.get(pattern.type, [])
        if current is None:
            continue  # a pattern of this kind admits every record already
        one = _pattern_filter(pattern)
        if one is None:
            filters[pattern.type] = None
        elif one not in current:
            filters[pattern.type] = [*current, one]


def _check_attributes(kinds: Mapping[str, Mapping[str, _Source]]) -> None:
    for kind, attrs in kinds.items():
        names = [*sorted(_RESERVED), *attrs]
        if len(names) > _MAX_PROPERTIES:
            raise UnsupportedCondition(
                f"facts of {kind} would need {len(names)} attributes (durable allows 254)"
            )
        if len(_distinct_hashes(names)) != len(names):
            raise UnsupportedCondition(f"two attribute names of {kind} collide in durable's hash: {names}")


_RULESET_NUMBERS = count(1)


def _compile(record_type: str, rules: Sequence[tuple[int, CompiledRule]]) -> _Ruleset:
    renamed, derivations = _unique_derivations(rules)
    float_fields = {d.name for d in derivations if isinstance(d, Aggregate)}
    builder = _Builder(float_fields)
    definition: dict[str, Any] = {"open": {"all": [{"m": {"t": _OPEN}}]}}
    actions: dict[str, tuple[int, int]] = {}
    fetches: list[_Fetch] = []
    filters: dict[str, list[_Filter] | None] = {}
    for (index, _), rule in zip(rules, renamed, strict=True):
        try:
            for d in rule.derivations:
                if isinstance(d, Aggregate):
                    for part in d.parts:
                        if any(True for _ in _exists_nodes(part.where)):
                            raise UnsupportedCondition("an aggregate filter with a related-record condition")
                        if part.keys:
                            step = _Fetch(
                                part.type, part.keys[0][0], None, part.keys[0][1], present_only=False
                            )
                        else:
                            step = _Fetch(part.type, None, None, "", present_only=False)
                        if step not in fetches:
                            fetches.append(step)
            for li, level in enumerate(rule.levels):
                _plan_fetches(level.violation, {RECORD: None}, fetches)
                for ci, conj in enumerate(normalise(level.violation)):
                    name = f"r{index}l{li}c{ci}"
                    definition[name] = {"all": builder.conjunction(conj), "dist": 0, "cap": _CAP}
                    actions[name] = (index, li)
                    _add_filters(conj, filters)
        except UnsupportedCondition as e:
            raise UnsupportedCondition(f"rule {rule.id}: {e}") from e
    _check_attributes(builder.kinds)
    name = f"zhidu_{next(_RULESET_NUMBERS)}_{record_type}"
    return _Ruleset(
        name,
        record_type,
        list(rules),
        builder.kinds,
        builder.codes,
        derivations,
        fetches,
        actions,
        definition,
        {kind: kind_filters for kind, kind_filters in filters.items() if kind_filters is not None},
    )


def check_rule(rule: CompiledRule) -> str | None:
    """Why `rule` cannot run on the streaming engine, or None (no durable-rules call is made)."""
    try:
        _compile(rule.record_type, [(0, rule)])
    except UnsupportedCondition as e:
        return str(e)
    return None


def _create(ruleset: _Ruleset) -> None:
    with _LOCK:
        try:
            ruleset.handle = int(_DRE.create_ruleset(ruleset.name, dumps(ruleset.definition)))
        except Exception as e:  # attribute the failure (e.g. too many join terms) to a rule
            for rule_name, (index, _) in ruleset.actions.items():
                try:
                    probe = dumps({rule_name: ruleset.definition[rule_name]})
                    handle = _DRE.create_ruleset(f"{ruleset.name}_probe", probe)
                    _DRE.delete_ruleset(handle)
                except Exception as inner:
                    rule = dict(ruleset.rules)[index]
                    raise UnsupportedCondition(f"rule {rule.id}: durable-rules rejects it ({inner})") from e
            raise StreamEngineError(f"durable-rules rejected ruleset {ruleset.name}: {e}") from e


def _delete_rulesets(handles: list[int]) -> None:
    with _LOCK:
        for handle in handles:
            _DRE.delete_ruleset(handle)
        handles.clear()


# --- the engine -------------------------------------------------------------------------------------


_CHUNK = 4096  # records prepared together (related records, derived values, fact texts)
_NO_ROWS = np.zeros(0, dtype=np.int64)
_FILTER_MIN_ROWS = 64  # fewer related records are asserted unfiltered: filtering costs more
_ARROW_MIN_ROWS = 64  # fewer facts are written in Python: an Arrow call costs more


@dataclass
class _Related:
    """The records of one related type fetched for a chunk (positions 0..n-1) and, for those
    that pass the kind's filters, their facts' JSON text."""

    frame: pd.DataFrame
    keep: np.ndarray = field(init=False)  # bool per row: its fact may take part in a match
    bodies: np.ndarray = field(init=False)  # object per row: `"t":...,...}` (kept rows only)
    _columns: dict[str, np.ndarray] = field(default_factory=dict)
    _indexes: dict[str, ValueIndex] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.keep = np.zeros(len(self.frame), dtype=bool)
        self.bodies = np.empty(len(self.frame), dtype=object)

    def column(self, name: str) -> np.ndarray:
        values = self._columns.get(name)
        if values is None:
            values = self._columns[name] = self.frame[name].to_numpy()
        return values

    def index(self, name: str) -> ValueIndex:
        index = self._indexes.get(name)
        if index is None:
            index = self._indexes[name] = ValueIndex.build(self.frame, name)
        return index


@dataclass
class _Chunk:
    """Consecutive records of one type prepared at once; judged a group (session) at a time."""

    ids: np.ndarray  # record ids (verdicts)
    keys: dict[str, np.ndarray]  # record columns the fetch steps read (unprefixed names)
    bodies: list[str]  # record facts' JSON text, `"k"` = position in the chunk
    related: dict[str, _Related]


class StreamEngine:
    """Judges records one small group at a time with durable-rules; verdicts equal batch's."""

    def __init__(
        self,
        rules: Sequence[CompiledRule],
        *,
        tz: ZoneInfo,
        group_size: int = 256,
        action_hook: ActionHook | None = None,
    ) -> None:
        if group_size < 1:
            raise ValueError("group_size must be at least 1")
        self.rules = list(rules)
        self.tz = tz
        self.group_size = group_size
        self._hook = action_hook
        by_type: dict[str, list[tuple[int, CompiledRule]]] = {}
        for index, rule in enumerate(self.rules):
            by_type.setdefault(rule.record_type, []).append((index, rule))
        self._rulesets = {t: _compile(t, rs) for t, rs in by_type.items()}
        self._handles: list[int] = []
        self._finalizer = weakref.finalize(self, _delete_rulesets, self._handles)
        for ruleset in self._rulesets.values():
            _create(ruleset)
            self._handles.append(ruleset.handle)

    def close(self) -> None:
        """Free the durable rulesets (also done when the engine is garbage-collected)."""
        self._finalizer()

    def __enter__(self) -> StreamEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def ruleset_names(self) -> dict[str, str]:
        return {t: r.name for t, r in self._rulesets.items()}

    def live_states(self) -> int:
        """How many durable states (sessions) exist in this engine's rulesets (0 when idle)."""
        live = 0
        with _LOCK:
            for ruleset in self._rulesets.values():
                for sid in _SIDS:
                    try:
                        _DRE.get_state(ruleset.handle, sid)
                    except Exception:  # durable raises when the state does not exist
                        continue
                    live += 1
        return live

    # public API

    def evaluate(
        self, record_type: str, subjects: pd.DataFrame, source: RelatedSource, *, as_of_ms: int
    ) -> list[Verdict]:
        """Verdicts for `subjects` (encoded, unprefixed records of `record_type`), in rule order
        then record order, each at the highest level that holds (as `batch.evaluate_rule`)."""
        found = self._evaluate(record_type, subjects, source, as_of_ms)
        return [v for _, vs in sorted(found.items()) for v in vs]

    def evaluate_all(self, encoded: Mapping[str, pd.DataFrame], *, as_of_ms: int) -> list[Verdict]:
        """Every record of every type, fed in arrival order in small groups; verdicts in rule order
        then record order (the order of `batch.evaluate`)."""
        source = FrameSource(encoded)
        found: dict[int, list[Verdict]] = {}
        for record_type, subjects in encoded.items():
            if record_type in self._rulesets:
                found.update(self._evaluate(record_type, subjects, source, as_of_ms))
        return [v for _, vs in sorted(found.items()) for v in vs]

    # judging

    def _evaluate(
        self, record_type: str, subjects: pd.DataFrame, source: RelatedSource, as_of_ms: int
    ) -> dict[int, list[Verdict]]:
        ruleset = self._rulesets.get(record_type)
        if ruleset is None or len(subjects) == 0:
            return {}
        if not self._handles:
            raise StreamEngineError("the engine is closed")
        subjects = subjects.reset_index(drop=True)
        best: dict[tuple[int, int], int] = {}  # (rule index, subject position) -> level index
        chunk_size = max(_CHUNK, self.group_size)
        for chunk_start in range(0, len(subjects), chunk_size):
            chunk = self._prepare(
                ruleset, subjects.iloc[chunk_start : chunk_start + chunk_size], source, as_of_ms
            )
            for start in range(0, len(chunk.ids), self.group_size):
                stop = min(start + self.group_size, len(chunk.ids))
                facts = [*self._related_facts(ruleset, chunk, start, stop), *chunk.bodies[start:stop]]
                for rule_index, level, k in self._judge(ruleset, facts, chunk.ids):
                    key = (rule_index, chunk_start + k)
                    if best.get(key, -1) < level:
                        best[key] = level
        ids = subjects["id"].to_numpy()
        out: dict[int, list[Verdict]] = {index: [] for index, _ in ruleset.rules}
        for (rule_index, position), level in sorted(best.items()):
            rule = self.rules[rule_index]
            out[rule_index].append(
                Verdict(rule.id, rule.record_type, str(ids[position]), rule.levels[level].severity)
            )
        return out

    def _fetch(
        self, ruleset: _Ruleset, records: pd.DataFrame, source: RelatedSource
    ) -> dict[str, pd.DataFrame]:
        """The related records of a chunk, by type, each row once (positions 0..n-1)."""
        candidates: list[pd.DataFrame] = []
        for step in ruleset.fetches:
            base, column = (
                (records, f"{RECORD}.{step.source_field}")
                if step.source is None
                else (candidates[step.source], step.source_field)
            )
            if step.source is not None and len(base) == 0:
                rows = pd.DataFrame()  # the outer alias has no candidates
            elif step.field is None or column not in base.columns:
                rows = source.scan(step.type)  # no key, or a key on a derived value
            else:
                values = base[column].to_numpy()
                if step.present_only:
                    values = values[base[column + PRESENT_SUFFIX].to_numpy() == 1]
                unique = pd.unique(values).tolist() if len(values) else []
                rows = source.fetch(step.type, step.field, unique) if unique else pd.DataFrame()
            candidates.append(rows)
        fetched: dict[str, pd.DataFrame] = {}
        for step, rows in zip(ruleset.fetches, candidates, strict=True):
            if len(rows) == 0:
                continue
            previous = fetched.get(step.type)
            if previous is None:
                fetched[step.type] = rows
            else:
                both = pd.concat([previous, rows])
                fetched[step.type] = both[~both.index.duplicated()]
        return {t: rows.reset_index(drop=True) for t, rows in fetched.items()}

    def _prepare(
        self, ruleset: _Ruleset, subjects: pd.DataFrame, source: RelatedSource, as_of_ms: int
    ) -> _Chunk:
        """Fetch the chunk's related records once, derive its records' values (the batch code)
        and write every fact's JSON text once; `_related_facts` then picks each group's."""
        records = record_frame(subjects.reset_index(drop=True))
        fetched = self._fetch(ruleset, records, source)
        derived = derive_columns(records, ruleset.derivations, as_of_ms=as_of_ms, tz=self.tz, related=fetched)
        related: dict[str, _Related] = {}
        for kind, rows in fetched.items():
            one = related[kind] = _Related(rows)
            if kind not in ruleset.codes:
                continue  # fetched for an aggregate only: no facts
            one.keep = _passes(ruleset.filters.get(kind), one, derived)
            kept = np.flatnonzero(one.keep)
            if len(kept):
                texts = _fact_bodies(
                    one.column, kept, len(kept), ruleset.kinds.get(kind, {}), ruleset.codes[kind]
                )
                one.bodies[kept] = texts
        keys: dict[str, np.ndarray] = {}
        for step in ruleset.fetches:
            column = f"{RECORD}.{step.source_field}"
            if step.source is None and step.field is not None and column in records.columns:
                keys[column] = records[column].to_numpy()
                keys[column + PRESENT_SUFFIX] = records[column + PRESENT_SUFFIX].to_numpy()
        bodies = _fact_bodies(  # `k`: the record's position in the chunk
            lambda name: derived[f"{RECORD}.{name}"].to_numpy(),
            slice(None),
            len(derived),
            ruleset.kinds[REC],
            REC,
            positions=True,
        )
        return _Chunk(subjects["id"].to_numpy(), keys, bodies, related)

    def _related_facts(self, ruleset: _Ruleset, chunk: _Chunk, start: int, stop: int) -> list[str]:
        """The related facts of records `start:stop` of the chunk: the rows each fetch step
        returns for exactly these records (as if fetched for them alone), minus filtered ones."""
        if start == 0 and stop == len(chunk.ids):  # one group: the chunk's fetch was its own
            return [
                text
                for kind, rows in chunk.related.items()
                if kind in ruleset.codes
                for text in rows.bodies[rows.keep].tolist()
            ]
        steps: list[np.ndarray] = []
        for step in ruleset.fetches:
            rows = chunk.related.get(step.type)
            if rows is None:
                steps.append(_NO_ROWS)
                continue
            if step.source is None:
                column = f"{RECORD}.{step.source_field}"
                if step.field is None or column not in chunk.keys:
                    steps.append(np.arange(len(rows.frame)))
                    continue
                values = chunk.keys[column][start:stop]
                present = chunk.keys[column + PRESENT_SUFFIX][start:stop]
            else:
                base = steps[step.source]
                outer = chunk.related.get(ruleset.fetches[step.source].type)
                if outer is None or len(base) == 0:
                    steps.append(_NO_ROWS)
                    continue
                if step.field is None or step.source_field not in outer.frame.columns:
                    steps.append(np.arange(len(rows.frame)))
                    continue
                values = outer.column(step.source_field)[base]
                present = outer.column(step.source_field + PRESENT_SUFFIX)[base]
            if step.present_only:
                values = values[present == 1]
            unique = pd.unique(values).tolist() if len(values) else []
            steps.append(rows.index(step.field).positions(unique) if unique else _NO_ROWS)
        facts: list[str] = []
        for kind in ruleset.codes:
            rows = chunk.related.get(kind)
            if kind == REC or rows is None:
                continue
            parts = [found for step, found in zip(ruleset.fetches, steps, strict=True) if step.type == kind]
            positions = np.unique(np.concatenate(parts)) if parts else _NO_ROWS
            positions = positions[rows.keep[positions]]
            facts += rows.bodies[positions].tolist()
        return facts

    def _judge(self, ruleset: _Ruleset, facts: list[str], ids: np.ndarray) -> list[tuple[int, int, int]]:
        """Run one durable session: opener, related facts, record facts; collect the matches."""
        matches: list[tuple[int, int, int]] = []
        with _LOCK:
            if not ruleset.free_sids:
                raise StreamEngineError(f"no durable state id left for {ruleset.name}")
            sid = ruleset.free_sids.pop()
            heads = _fact_heads(sid, len(facts) + 1)
            opened = False
            try:
                code, state = _DRE.assert_fact(ruleset.handle, f'{heads[0]}"t":"{_OPEN}"}}')
                self._drain(ruleset, state, ids, matches)  # runs the opener: the state can be deleted
                opened = True
                code, state = _DRE.assert_facts(
                    ruleset.handle, f"[{','.join(map(str.__add__, heads[1:], facts))}]"
                )
                if code == _OBSERVED:
                    raise StreamEngineError(f"durable saw a fact id twice in {ruleset.name}")
                if code not in (0, _NOT_HANDLED):
                    raise StreamEngineError(f"durable deferred the facts of {ruleset.name} (code {code})")
                self._drain(ruleset, state, ids, matches)
            finally:
                if opened:
                    _DRE.delete_state(ruleset.handle, sid)
                    ruleset.free_sids.append(sid)
                # else: the state may hold an uninitialised action context that `delete_state`
                # would free; the id is retired (the pool is bounded, the ruleset stays usable)
        return matches

    def _drain(
        self, ruleset: _Ruleset, state: int, ids: np.ndarray, matches: list[tuple[int, int, int]]
    ) -> None:
        result = _DRE.start_action_for_state(ruleset.handle, state)
        while result is not None:
            # a result is `{"<action>":<frame or [frames]>}`, one action (durable's
            # `serializeResult`), and each frame holds one record fact: its only `"k"` (values
            # carry no raw `"`, see `durable_string`), so the matches are read without a JSON parse
            text: str = result[1] if isinstance(result, tuple) else result
            action = text[2 : text.index('"', 2)]
            if action != "open":
                rule_index, level = ruleset.actions[action]
                rule = self.rules[rule_index]
                try:
                    for k in map(int, _RECORD_POSITION.findall(text)):
                        matches.append((rule_index, level, k))
                        if self._hook is not None:
                            self._hook(rule.id, rule.levels[level].severity, str(ids[k]))
                except Exception as e:
                    _DRE.abandon_action(ruleset.handle, state)
                    raise StreamEngineError(f"action failed: {e!r}", rule_id=rule.id) from e
            result = _DRE.complete_and_start_action(ruleset.handle, state)


_RECORD_POSITION = re.compile(r'"k":(\d+)')
_HEADS: dict[str, list[str]] = {}


def _fact_heads(sid: str, n: int) -> list[str]:
    """`{"id":...,"sid":...,` of the first `n` facts of a session (ids: `_FACT_IDS`); call
    under `_LOCK`."""
    heads = _HEADS.setdefault(sid, [])
    if len(heads) < n:
        heads += [f'{{"id":"{fact_id}","sid":"{sid}",' for fact_id in _FACT_IDS.first(n)[len(heads) :]]
    return heads[:n]


def _passes(filters: Sequence[_Filter] | None, rows: _Related, derived: pd.DataFrame) -> np.ndarray:
    """Which related rows pass at least one pattern's filter (all of them without filters)."""
    n = len(rows.frame)
    if filters is None or n < _FILTER_MIN_ROWS:
        return np.ones(n, dtype=bool)
    names = {r.field for one in filters for item in one.local for r in refs_in(item)}
    read = [c for c in rows.frame.columns if c in names or c.removesuffix(PRESENT_SUFFIX) in names]
    scoped = pd.DataFrame(  # one frame for every local test (dtype kept: no string inference)
        {f"{_ROW}.{c}": pd.Series(rows.column(c), dtype=rows.column(c).dtype) for c in read},
        index=pd.RangeIndex(n),
    )
    tested: dict[object, np.ndarray] = {}  # patterns share tests: each is evaluated once
    keep = np.zeros(n, dtype=bool)
    for one in filters:
        passing = np.ones(n, dtype=bool)
        for test in (*one.local, *one.bounds):
            if not passing.any():
                break
            result = tested.get(test)
            if result is None:
                if isinstance(test, tuple):
                    related_field, op, outer = test
                    values = rows.column(related_field)
                    result = _some_record(values, op, _outer_values(derived, outer))
                else:
                    result = eval_node(scoped, test, {})
                tested[test] = result
            passing &= result
        keep |= passing
    return keep


def _outer_values(derived: pd.DataFrame, expr: Ref | Arith) -> np.ndarray:
    ref = expr.ref if isinstance(expr, Arith) else expr
    values = derived[f"{RECORD}.{ref.field}"].to_numpy()
    if isinstance(expr, Arith):
        values = values + expr.const if expr.op == "+" else values * expr.const
    return np.asarray(values)


def _some_record(values: np.ndarray, op: str, outer: np.ndarray) -> np.ndarray:
    """Which `values` satisfy `value op o` for some `o` in `outer`: a necessary condition only,
    so values of other types (floats, mixed) all pass."""
    if len(outer) == 0:
        return np.zeros(len(values), dtype=bool)
    numeric = values.dtype.kind in "iu" and outer.dtype.kind in "iu"
    if not numeric and not (_all_str(values) and _all_str(outer)):
        return np.ones(len(values), dtype=bool)
    if op == "eq":
        return np.asarray(pd.Index(pd.unique(outer)).get_indexer(values) >= 0)
    if op == "ne":
        distinct = pd.unique(outer)
        return np.ones(len(values), dtype=bool) if len(distinct) > 1 else np.asarray(values != distinct[0])
    bound = min(outer.tolist()) if op in ("gt", "ge") else max(outer.tolist())
    return np.asarray(_COMPARE[op](values, bound), dtype=bool)


def _all_str(values: np.ndarray) -> bool:
    return values.dtype.kind == "O" and pd.api.types.infer_dtype(values, skipna=False) in ("string", "empty")


_COMPARE: dict[str, Callable[[np.ndarray, Any], Any]] = {
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
}


def _fact_bodies(
    column: Callable[[str], np.ndarray],
    rows: np.ndarray | slice,
    count: int,
    attrs: Mapping[str, _Source],
    fact_kind: str,
    *,
    positions: bool = False,
) -> list[str]:
    """For each of `rows` (`count` of them), its fact without `id` and `sid` (added per session):
    `"t":...,"attr":value,...}` with every attribute the patterns read on this kind (`column`
    gives a field's values), and `"k"` = its position among `rows` if `positions`. Many rows
    are joined column by column in Arrow (C); a few in Python (Arrow's per-call cost)."""
    columns: list[np.ndarray] = []
    for source in attrs.values():
        try:
            values = column(source.column)[rows]
        except KeyError as e:
            raise StreamEngineError(f"the records of {fact_kind} have no field {source.column!r}") from e
        if isinstance(source, _Computed):  # the same arithmetic as the batch engine
            values = values + source.const if source.op == "+" else values * source.const
        columns.append(np.asarray(values))
    head = f'"t":{json.dumps(fact_kind)}'
    if count < _ARROW_MIN_ROWS:
        template = head + "".join(f',"{name}":{{}}' for name in attrs)  # names are `a<n>`: no braces
        texts = [_column_texts(values) for values in columns]
        bodies = list(map(template.format, *texts)) if texts else [head] * count
        if positions:
            return [f'{body},"k":{k}}}' for k, body in enumerate(bodies)]
        return [body + "}" for body in bodies]
    parts: list[Any] = [head]
    for name, values in zip(attrs, columns, strict=True):
        parts += [f',"{name}":', _column_json(values)]
    if positions:
        parts += [',"k":', pa.array(np.arange(count)).cast(pa.string())]
    parts.append("}")
    if not any(isinstance(part, pa.Array) for part in parts):
        return ["".join(parts)] * count
    joined: list[str] = pc.binary_join_element_wise(*parts, "").to_pylist()
    return joined


def _column_json(values: np.ndarray) -> Any:
    """The JSON text of each value of a column, as an Arrow string array: integers and strings
    without a character to escape (the usual case) are converted in Arrow, others by
    `_column_texts`."""
    kind = values.dtype.kind
    if kind in "iu":
        return pa.array(values).cast(pa.string())
    if kind == "O":
        try:
            strings = pa.array(values, type=pa.string())
        except (pa.ArrowException, TypeError, ValueError):  # not all strings, or not UTF-8
            strings = None
        if (
            strings is not None
            and strings.null_count == 0
            and not pc.any(pc.match_substring_regex(strings, _SPECIAL.pattern)).as_py()
        ):
            return pc.binary_join_element_wise('"', strings, '"', "")
    return pa.array(_column_texts(values), type=pa.string())


__all__ = [
    "ActionHook",
    "FrameSource",
    "RelatedSource",
    "StreamEngine",
    "StreamEngineError",
    "UnsupportedCondition",
    "check_rule",
    "dumps",
    "durable_string",
    "fnv1a32",
]
