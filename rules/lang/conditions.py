"""The condition vocabulary. Each condition type is a class in `REGISTRY`: it owns its schema
(the keys it takes), a docstring example that a test compiles, and its compilation to IR.

A condition in YAML is a mapping with exactly one key, the type name:
`{compare: {field: amount, op: gt, value: {param: exp_general_manager_threshold}}}`.
Field names are those of the innermost scope (the record, or inside `related`, the related
record); other scopes are qualified: `record.paid_at`, `<alias>.decided_at`.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

from rules.lang.context import PERIODS, CompileContext
from rules.lang.ir import (
    AS_OF,
    RECORD,
    Aggregate,
    AggregatePart,
    And,
    Arith,
    Bool,
    Cmp,
    Const,
    Exists,
    Node,
    Not,
    Op,
    Or,
    PeriodBound,
    Present,
    Ref,
)
from rules.lang.values import MS_PER_DAY, compatible, days_value, operand
from rules.records import FieldType

OPS: dict[str, Op] = {"eq": "eq", "ne": "ne", "lt": "lt", "le": "le", "gt": "gt", "ge": "ge"}
REGISTRY: dict[str, type[Condition]] = {}


def register(cls: type[Condition]) -> type[Condition]:
    REGISTRY[cls.name] = cls
    return cls


def compile_condition(spec: Any, ctx: CompileContext, parent: Any, key: Any, path: str) -> Node:
    """Shape check (one-key mapping naming a registered type), then the type's own schema and meaning."""
    if not isinstance(spec, dict) or len(spec) != 1:
        ctx.error(
            parent,
            key,
            f"{path}: a condition is a mapping with exactly one key, the condition type "
            f"({', '.join(sorted(REGISTRY))})",
            f"{path}：条件必须是只有一个键（条件类型）的映射（{', '.join(sorted(REGISTRY))}）",
            path,
        )
        return Bool(False)
    ((name, body),) = spec.items()
    cls = REGISTRY.get(str(name))
    if cls is None:
        ctx.error(
            spec,
            name,
            f"{path}: unknown condition type {name!r}; known: {', '.join(sorted(REGISTRY))}",
            f"{path}：未知条件类型 {name!r}；可用：{', '.join(sorted(REGISTRY))}",
            path,
        )
        return Bool(False)
    return cls.build(body, ctx, spec, name, f"{path}.{name}")


class Condition(ABC):
    name: ClassVar[str]
    # key -> description; keys marked with a trailing "?" are optional.
    schema: ClassVar[dict[str, str]]
    # The record type the docstring example is written for.
    example_record_type: ClassVar[str] = "expense_claim"

    @classmethod
    def build(cls, body: Any, ctx: CompileContext, parent: Any, key: Any, path: str) -> Node:
        if not cls._check_schema(body, ctx, parent, key, path):
            return Bool(False)
        return cls.compile(body, ctx, path)

    @classmethod
    def _check_schema(cls, body: Any, ctx: CompileContext, parent: Any, key: Any, path: str) -> bool:
        required = {k for k in cls.schema if not k.endswith("?")}
        allowed = required | {k[:-1] for k in cls.schema if k.endswith("?")}
        if "*" in cls.schema:  # the body is not a mapping (a list, a field name or a condition)
            return True
        if not isinstance(body, dict):
            ctx.error(
                parent,
                key,
                f"{path}: expected a mapping with keys {sorted(allowed)}",
                f"{path}：应为含键 {sorted(allowed)} 的映射",
                path,
            )
            return False
        ok = True
        for missing in sorted(required - set(body)):
            ctx.error(parent, key, f"{path}: missing key {missing!r}", f"{path}：缺少键 {missing!r}", path)
            ok = False
        for extra in sorted(set(body) - allowed):
            ctx.error(
                body,
                extra,
                f"{path}: unknown key {extra!r}; allowed: {sorted(allowed)}",
                f"{path}：未知键 {extra!r}；允许：{sorted(allowed)}",
                path,
            )
            ok = False
        return ok

    @classmethod
    @abstractmethod
    def compile(cls, body: Any, ctx: CompileContext, path: str) -> Node: ...


def _present_all(refs: tuple[Ref, ...]) -> list[Node]:
    return [Present(r) for r in dict.fromkeys(refs)]


@register
class AllOf(Condition):
    """All of the listed conditions hold.

    Example::

        all:
          - present: invoice_no
          - compare: {field: invoice_count, op: ge, value: 1}
    """

    name = "all"
    schema: ClassVar[dict[str, str]] = {"*": "a list of conditions"}

    @classmethod
    def compile(cls, body: Any, ctx: CompileContext, path: str) -> Node:
        return And(tuple(_items(body, ctx, path)))


@register
class AnyOf(Condition):
    """At least one of the listed conditions holds.

    Example::

        any:
          - present: paid_at
          - older_than: {field: submitted_at, days: {param: exp_approval_days}}
    """

    name = "any"
    schema: ClassVar[dict[str, str]] = {"*": "a list of conditions"}

    @classmethod
    def compile(cls, body: Any, ctx: CompileContext, path: str) -> Node:
        return Or(tuple(_items(body, ctx, path)))


def _items(body: Any, ctx: CompileContext, path: str) -> list[Node]:
    if not isinstance(body, list) or not body:
        ctx.error(
            body, None, f"{path}: expected a non-empty list of conditions", f"{path}：应为非空条件列表", path
        )
        return [Bool(False)]
    return [compile_condition(item, ctx, body, i, f"{path}[{i}]") for i, item in enumerate(body)]


@register
class NotCond(Condition):
    """The condition does not hold.

    Example::

        not: {compare: {field: category, op: eq, value: entertainment}}
    """

    name = "not"
    schema: ClassVar[dict[str, str]] = {"*": "a condition"}

    @classmethod
    def compile(cls, body: Any, ctx: CompileContext, path: str) -> Node:
        return Not(compile_condition(body, ctx, {"not": body}, "not", path))


@register
class Compare(Condition):
    """Compare a field with a constant, a parameter, another field or the as-of time.
    `op` is one of eq, ne, lt, le, gt, ge. False when either side is missing.

    Example::

        compare: {field: amount, op: gt, value: {param: exp_general_manager_threshold}}
    """

    name = "compare"
    schema: ClassVar[dict[str, str]] = {"field": "field name", "op": "eq|ne|lt|le|gt|ge", "value": "operand"}

    @classmethod
    def compile(cls, body: Any, ctx: CompileContext, path: str) -> Node:
        resolved = ctx.resolve_field(body["field"], body, "field", f"{path}.field")
        op = OPS.get(str(body["op"]))
        if op is None:
            ctx.error(
                body,
                "op",
                f"{path}.op: {body['op']!r} is not one of {list(OPS)}",
                f"{path}.op：{body['op']!r} 不是 {list(OPS)} 之一",
                path,
            )
        if resolved is None or op is None:
            return Bool(False)
        ref, spec = resolved
        right = operand(body["value"], spec, ctx, body, "value", f"{path}.value")
        if right is None:
            return Bool(False)
        if not compatible(spec.type, right.kind):
            ctx.error(
                body,
                "value",
                f"{path}: cannot compare {ref} ({spec.type.value}) with a {right.kind.value if right.kind else '?'} value",
                f"{path}：{ref}（{spec.type.value}）不能与 {right.kind.value if right.kind else '?'} 类型的值比较",
                path,
            )
            return Bool(False)
        if spec.type == FieldType.STRING and op not in ("eq", "ne") and isinstance(right.expr, Const):
            pass  # ordering strings is allowed (ids), durable-rules and numpy order them alike
        return And((*_present_all((ref, *right.presence)), Cmp(ref, op, right.expr)))


@register
class InValues(Condition):
    """The field's value is one of the listed constants.

    Example::

        in: {field: category, values: [travel, transport]}
    """

    name = "in"
    schema: ClassVar[dict[str, str]] = {"field": "field name", "values": "list of constants"}
    negate: ClassVar[bool] = False

    @classmethod
    def compile(cls, body: Any, ctx: CompileContext, path: str) -> Node:
        resolved = ctx.resolve_field(body["field"], body, "field", f"{path}.field")
        values = body["values"]
        if not isinstance(values, list) or not values:
            ctx.error(
                body,
                "values",
                f"{path}.values: expected a non-empty list",
                f"{path}.values：应为非空列表",
                path,
            )
            return Bool(False)
        if resolved is None:
            return Bool(False)
        ref, spec = resolved
        cmps: list[Node] = []
        for i, v in enumerate(values):
            o = operand(v, spec, ctx, values, i, f"{path}.values[{i}]")
            if o is None:
                return Bool(False)
            cmps.append(Cmp(ref, "ne" if cls.negate else "eq", o.expr))
        combined: Node = And(tuple(cmps)) if cls.negate else Or(tuple(cmps))
        return And((Present(ref), combined))


@register
class NotInValues(InValues):
    """The field has a value and it is none of the listed constants.

    Example::

        not_in: {field: category, values: [entertainment]}
    """

    name = "not_in"
    negate = True


@register
class PresentCond(Condition):
    """The field has a value.

    Example::

        present: invoice_no
    """

    name = "present"
    schema: ClassVar[dict[str, str]] = {"*": "field name"}
    negated: ClassVar[bool] = False

    @classmethod
    def compile(cls, body: Any, ctx: CompileContext, path: str) -> Node:
        resolved = ctx.resolve_field(body, {cls.name: body}, cls.name, path)
        if resolved is None:
            return Bool(False)
        return Present(resolved[0], negated=cls.negated)


@register
class AbsentCond(PresentCond):
    """The field is empty.

    Example::

        absent: paid_at
    """

    name = "absent"
    negated = True


@register
class Before(Condition):
    """Both timestamps are present and `field` is not later than `other` (`strict: true`: earlier).

    Example (record type hire)::

        before: {field: background_check_at, other: hired_at}
    """

    name = "before"
    schema: ClassVar[dict[str, str]] = {
        "field": "timestamp field",
        "other": "timestamp field",
        "strict?": "bool",
    }
    example_record_type = "hire"

    @classmethod
    def compile(cls, body: Any, ctx: CompileContext, path: str) -> Node:
        a = ctx.resolve_field(body["field"], body, "field", f"{path}.field")
        b = ctx.resolve_field(body["other"], body, "other", f"{path}.other")
        if a is None or b is None:
            return Bool(False)
        for ref, spec, k in ((a[0], a[1], "field"), (b[0], b[1], "other")):
            if not spec.type.is_time:
                ctx.error(
                    body, k, f"{path}.{k}: {ref} is not a timestamp", f"{path}.{k}：{ref} 不是时间字段", path
                )
                return Bool(False)
        op: Op = "lt" if body.get("strict") else "le"
        return And((Present(a[0]), Present(b[0]), Cmp(a[0], op, b[0])))


def _late(start: Ref, end: Ref, days: int) -> Node:
    """The end came after the deadline, or is still missing after the deadline as of now."""
    deadline = Arith(start, "+", days * MS_PER_DAY)
    return And(
        (
            Present(start),
            Or(
                (
                    And((Present(end), Cmp(end, "gt", deadline))),
                    And((Present(end, negated=True), Cmp(Ref(RECORD, AS_OF), "gt", deadline))),
                )
            ),
        )
    )


@register
class WithinDays(Condition):
    """`end` happened within `days` days of `start`. Judged as of the evaluation time: while
    `end` is missing and the deadline has not passed, the condition still holds.
    True when `start` is missing (nothing to time).

    Example (record type complaint)::

        within_days: {start: received_at, end: resolved_at, days: {param: cs_resolve_days}}
    """

    name = "within_days"
    schema: ClassVar[dict[str, str]] = {"start": "timestamp field", "end": "timestamp field", "days": "days"}
    example_record_type = "complaint"

    @classmethod
    def compile(cls, body: Any, ctx: CompileContext, path: str) -> Node:
        s = ctx.resolve_field(body["start"], body, "start", f"{path}.start")
        e = ctx.resolve_field(body["end"], body, "end", f"{path}.end")
        days = days_value(body["days"], ctx, body, "days", f"{path}.days")
        if s is None or e is None or days is None:
            return Bool(False)
        if s[0].scope != RECORD or e[0].scope != RECORD:
            ctx.error(
                body,
                "start",
                f"{path}: within_days compares fields of the record",
                f"{path}：within_days 只比较本记录的字段",
                path,
            )
            return Bool(False)
        return Not(_late(s[0], e[0], days))


@register
class OlderThan(Condition):
    """The timestamp is more than `days` days before the evaluation time.

    Example::

        older_than: {field: submitted_at, days: {param: exp_approval_days}}
    """

    name = "older_than"
    schema: ClassVar[dict[str, str]] = {"field": "timestamp field", "days": "days"}

    @classmethod
    def compile(cls, body: Any, ctx: CompileContext, path: str) -> Node:
        f = ctx.resolve_field(body["field"], body, "field", f"{path}.field")
        days = days_value(body["days"], ctx, body, "days", f"{path}.days")
        if f is None or days is None:
            return Bool(False)
        if f[0].scope != RECORD:
            ctx.error(
                body,
                "field",
                f"{path}: older_than applies to a field of the record",
                f"{path}：older_than 只用于本记录字段",
                path,
            )
            return Bool(False)
        return And((Present(f[0]), Cmp(Ref(RECORD, AS_OF), "gt", Arith(f[0], "+", days * MS_PER_DAY))))


@register
class InLastPeriod(Condition):
    """The timestamp falls in the last complete calendar period (month, quarter or year, in the
    company's time zone) before the evaluation time.

    Example (record type warehouse)::

        related:
          type: inventory_count
          on: {warehouse: id}
          where: {in_last_period: {field: counted_at, period: {param: inv_count_period}}}
    """

    name = "in_last_period"
    schema: ClassVar[dict[str, str]] = {"field": "timestamp field", "period": "month|quarter|year or {param}"}
    example_record_type = "warehouse"

    @classmethod
    def compile(cls, body: Any, ctx: CompileContext, path: str) -> Node:
        f = ctx.resolve_field(body["field"], body, "field", f"{path}.field")
        period = body["period"]
        if isinstance(period, dict) and set(period) == {"param"}:
            p = ctx.param(period["param"], period, "param", f"{path}.period.param", ("period",))
            period = p.value if p is not None else None
        if period not in PERIODS:
            if period is not None:
                ctx.error(
                    body,
                    "period",
                    f"{path}.period: expected one of {list(PERIODS)}",
                    f"{path}.period：应为 {list(PERIODS)} 之一",
                    path,
                )
            return Bool(False)
        if f is None:
            return Bool(False)
        start, end = PeriodBound(period, "start"), PeriodBound(period, "end")
        for bound in (start, end):
            if bound not in ctx.derivations:
                ctx.derivations.append(bound)
        return And(
            (
                Present(f[0]),
                Cmp(f[0], "ge", Ref(RECORD, start.column)),
                Cmp(f[0], "lt", Ref(RECORD, end.column)),
            )
        )


@register
class Deviates(Condition):
    """`field` differs from `from` by more than the relative `tolerance` (both present).

    Example (record type inventory_count)::

        deviates: {field: counted_qty, from: system_qty, tolerance: {param: inv_discrepancy_tolerance}}
    """

    name = "deviates"
    schema: ClassVar[dict[str, str]] = {"field": "number field", "from": "number field", "tolerance": "ratio"}
    example_record_type = "inventory_count"

    @classmethod
    def compile(cls, body: Any, ctx: CompileContext, path: str) -> Node:
        from rules.lang.values import ratio_value

        a = ctx.resolve_field(body["field"], body, "field", f"{path}.field")
        b = ctx.resolve_field(body["from"], body, "from", f"{path}.from")
        tol = ratio_value(body["tolerance"], ctx, body, "tolerance", f"{path}.tolerance")
        if a is None or b is None or tol is None:
            return Bool(False)
        if a[1].type != b[1].type or not a[1].type.is_number:
            ctx.error(
                body,
                "from",
                f"{path}: both fields must be numbers of the same type",
                f"{path}：两个字段须为同类型数值",
                path,
            )
            return Bool(False)
        return And(
            (
                Present(a[0]),
                Present(b[0]),
                Or((Cmp(a[0], "gt", Arith(b[0], "*", 1 + tol)), Cmp(a[0], "lt", Arith(b[0], "*", 1 - tol)))),
            )
        )


def _join_keys(
    body: Any, ctx: CompileContext, path: str, related_type: str, alias: str
) -> tuple[tuple[str, Ref], ...] | None:
    """`on: {related_field: outer_field}` -> join keys; types of both sides must agree."""
    on = body.get("on")
    if not isinstance(on, dict) or not on:
        ctx.error(
            body,
            "on",
            f"{path}.on: map at least one field of {related_type} to a field it must equal",
            f"{path}.on：至少映射一个关联字段",
            path,
        )
        return None
    rt = ctx.model.types[related_type]
    keys: list[tuple[str, Ref]] = []
    for rel_field, outer in on.items():
        if rel_field not in rt.fields:
            ctx.error(
                on,
                rel_field,
                f"{path}.on: {related_type} has no field {rel_field!r}",
                f"{path}.on：{related_type} 没有字段 {rel_field!r}",
                path,
            )
            return None
        resolved = ctx.resolve_field(outer, on, rel_field, f"{path}.on.{rel_field}")
        if resolved is None:
            return None
        if resolved[1].type != rt.fields[rel_field].type:
            ctx.error(
                on,
                rel_field,
                f"{path}.on: {related_type}.{rel_field} and {resolved[0]} differ in type",
                f"{path}.on：{related_type}.{rel_field} 与 {resolved[0]} 类型不同",
                path,
            )
            return None
        keys.append((str(rel_field), resolved[0]))
    return tuple(keys)


def _related_type(body: Any, ctx: CompileContext, path: str) -> str | None:
    t = body.get("type")
    if t not in ctx.model.types:
        ctx.error(
            body,
            "type",
            f"{path}.type: unknown record type {t!r}; known: {', '.join(ctx.model.names)}",
            f"{path}.type：未知记录类型 {t!r}",
            path,
        )
        return None
    return str(t)


def _exists(
    body: Any,
    ctx: CompileContext,
    path: str,
    default_alias: str | None = None,
    extra: Callable[[str], list[Node]] | None = None,
) -> Node:
    rtype = _related_type(body, ctx, path)
    if rtype is None:
        return Bool(False)
    alias = str(body.get("as") or default_alias or rtype)
    if alias == RECORD or alias in dict(ctx.scopes):
        alias = ctx.fresh_alias(alias)
    if not re.fullmatch(r"[a-z][a-z0-9_]*", alias):
        ctx.error(
            body, "as", f"{path}.as: alias must be snake_case", f"{path}.as：别名须为小写下划线形式", path
        )
        return Bool(False)
    keys = _join_keys(body, ctx, path, rtype, alias)
    if keys is None:
        return Bool(False)
    ctx.scopes.append((alias, rtype))
    try:
        parts: list[Node] = [Present(ref) for _, ref in keys]
        if "where" in body:
            parts.append(compile_condition(body["where"], ctx, body, "where", f"{path}.where"))
        if extra is not None:
            parts.extend(extra(alias))
    finally:
        ctx.scopes.pop()
    return Exists(alias, rtype, keys, And(tuple(parts)))


@register
class Related(Condition):
    """Some record of another type, joined on keys (`on: {its_field: our_field}`), satisfies
    `where`. Inside `where`, plain field names are the related record's; `record.<field>` is the
    record under evaluation. `as` names the related record for nested conditions.

    Example::

        related:
          type: approval
          on: {record_id: id}
          where:
            all:
              - compare: {field: record_type, op: eq, value: expense_claim}
              - compare: {field: step, op: eq, value: general_manager}
              - compare: {field: decision, op: eq, value: approved}
    """

    name = "related"
    schema: ClassVar[dict[str, str]] = {
        "type": "record type",
        "on": "join keys",
        "where?": "condition",
        "as?": "alias",
    }

    @classmethod
    def compile(cls, body: Any, ctx: CompileContext, path: str) -> Node:
        return _exists(body, ctx, path)


@register
class NoRelated(Related):
    """No record of another type, joined on keys, satisfies `where` (the negation of `related`).

    Example::

        no_related:
          type: approval
          on: {record_id: id}
          where: {compare: {field: decided_at, op: gt, value: {field: record.paid_at}}}
    """

    name = "no_related"

    @classmethod
    def compile(cls, body: Any, ctx: CompileContext, path: str) -> Node:
        return Not(_exists(body, ctx, path))


@register
class ValidAt(Condition):
    """A related record (e.g. a supplier) holds a valid status at a moment of the record: its
    `flag` is true and `at` lies within [from, until] (until inclusive, a date covering its whole
    day; a missing bound is open).

    Example (record type purchase_order)::

        valid_at:
          type: supplier
          on: {id: supplier_id}
          at: ordered_at
          flag: qualified
          from: qualified_from
          until: qualified_until
    """

    name = "valid_at"
    schema: ClassVar[dict[str, str]] = {
        "type": "record type",
        "on": "join keys",
        "at": "timestamp field of the record",
        "flag?": "bool field",
        "from?": "date/timestamp field",
        "until?": "date/timestamp field",
        "as?": "alias",
    }
    example_record_type = "purchase_order"

    @classmethod
    def compile(cls, body: Any, ctx: CompileContext, path: str) -> Node:
        at = ctx.resolve_field(body["at"], body, "at", f"{path}.at")
        if at is None:
            return Bool(False)

        def validity(alias: str) -> list[Node]:
            nodes: list[Node] = [Present(at[0])]
            if "flag" in body:
                f = ctx.resolve_field(body["flag"], body, "flag", f"{path}.flag")
                if f is None or f[1].type != FieldType.BOOL:
                    if f is not None:
                        ctx.error(
                            body,
                            "flag",
                            f"{path}.flag: must be a bool field",
                            f"{path}.flag：须为布尔字段",
                            path,
                        )
                    return [Bool(False)]
                nodes += [Present(f[0]), Cmp(f[0], "eq", Const(1))]
            if "from" in body:
                f = ctx.resolve_field(body["from"], body, "from", f"{path}.from")
                if f is None:
                    return [Bool(False)]
                nodes.append(Or((Present(f[0], negated=True), Cmp(f[0], "le", at[0]))))
            if "until" in body:
                f = ctx.resolve_field(body["until"], body, "until", f"{path}.until")
                if f is None:
                    return [Bool(False)]
                end = Arith(f[0], "+", MS_PER_DAY) if f[1].type == FieldType.DATE else f[0]
                op: Op = "lt" if f[1].type == FieldType.DATE else "le"
                nodes.append(Or((Present(f[0], negated=True), Cmp(at[0], op, end))))
            return nodes

        return _exists(body, ctx, path, extra=validity)


@register
class StepsInOrder(Condition):
    """Related records carrying steps (e.g. approvals) happened in the listed order: no record
    of a later step has a `time` earlier than a record of an earlier step.

    Example::

        steps_in_order:
          type: approval
          on: {record_id: id}
          where: {compare: {field: record_type, op: eq, value: expense_claim}}
          key: step
          order: [dept_head, finance, division_leader, general_manager]
          time: decided_at
    """

    name = "steps_in_order"
    schema: ClassVar[dict[str, str]] = {
        "type": "record type",
        "on": "join keys",
        "key": "field",
        "order": "list of values",
        "time": "timestamp field",
        "where?": "condition",
    }

    @classmethod
    def compile(cls, body: Any, ctx: CompileContext, path: str) -> Node:
        order = body["order"]
        if not isinstance(order, list) or len(order) < 2:
            ctx.error(
                body,
                "order",
                f"{path}.order: list at least two steps",
                f"{path}.order：至少列出两个环节",
                path,
            )
            return Bool(False)
        violations: list[Node] = []
        for i, earlier in enumerate(order):
            for later in order[i + 1 :]:
                first_alias = ctx.fresh_alias("step")
                second_alias = ctx.fresh_alias("step")

                def second(alias: str, later: Any = later, first_alias: str = first_alias) -> list[Node]:
                    key_cmp = Compare.compile(
                        {"field": body["key"], "op": "eq", "value": later}, ctx, f"{path}.order"
                    )
                    t = ctx.resolve_field(body["time"], body, "time", f"{path}.time")
                    if t is None:
                        return [Bool(False)]
                    return [key_cmp, Present(t[0]), Cmp(t[0], "lt", Ref(first_alias, t[0].field))]

                def first(
                    alias: str,
                    earlier: Any = earlier,
                    second: Callable[[str], list[Node]] = second,
                    second_alias: str = second_alias,
                ) -> list[Node]:
                    key_cmp = Compare.compile(
                        {"field": body["key"], "op": "eq", "value": earlier}, ctx, f"{path}.order"
                    )
                    t = ctx.resolve_field(body["time"], body, "time", f"{path}.time")
                    if t is None:
                        return [Bool(False)]
                    inner = dict(body)
                    inner["on"] = {
                        k: f"{RECORD}.{v}" if "." not in str(v) else v for k, v in body["on"].items()
                    }
                    nested = _exists({**inner, "as": second_alias}, ctx, path, extra=second)
                    return [key_cmp, Present(t[0]), nested]

                violations.append(_exists({**body, "as": first_alias}, ctx, path, extra=first))
        return Not(Or(tuple(violations)))


@register
class AggregateCompare(Condition):
    """Compare a sum over related records (optionally of several types, each restricted to the
    calendar year given by a field of the record) with a value. `name` makes the sum available
    to the rule's message as `{<name>}`.

    Example (record type budget)::

        aggregate:
          name: spending
          sum:
            - {type: expense_claim, on: {dept: dept}, field: amount, year: {field: submitted_at, equals: year}}
            - {type: payment, on: {dept: dept}, field: amount, year: {field: paid_at, equals: year}}
          op: gt
          value: {field: amount, times: {param: fin_budget_warning_ratio}}
    """

    name = "aggregate"
    schema: ClassVar[dict[str, str]] = {
        "name": "identifier",
        "sum": "list of parts",
        "op": "operator",
        "value": "operand",
    }
    example_record_type = "budget"

    @classmethod
    def compile(cls, body: Any, ctx: CompileContext, path: str) -> Node:
        name = body["name"]
        if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            ctx.error(
                body, "name", f"{path}.name: must be snake_case", f"{path}.name：须为小写下划线形式", path
            )
            return Bool(False)
        parts_spec = body["sum"]
        if not isinstance(parts_spec, list) or not parts_spec:
            ctx.error(body, "sum", f"{path}.sum: list at least one part", f"{path}.sum：至少列出一项", path)
            return Bool(False)
        record_type = ctx.current[1]
        parts: list[AggregatePart] = []
        kind: FieldType | None = None
        for i, part in enumerate(parts_spec):
            ppath = f"{path}.sum[{i}]"
            if (
                not isinstance(part, dict)
                or not {"type", "on", "field"} <= set(part)
                or set(part) - {"type", "on", "field", "where", "year"}
            ):
                ctx.error(
                    parts_spec,
                    i,
                    f"{ppath}: needs type, on, field (optional where, year)",
                    f"{ppath}：需要 type、on、field（可选 where、year）",
                    path,
                )
                return Bool(False)
            rtype = _related_type(part, ctx, ppath)
            if rtype is None:
                return Bool(False)
            keys = _join_keys(part, ctx, ppath, rtype, "item")
            if keys is None:
                return Bool(False)
            if any(ref.scope != RECORD for _, ref in keys):
                ctx.error(
                    part,
                    "on",
                    f"{ppath}.on: join on fields of the record",
                    f"{ppath}.on：须与本记录字段关联",
                    path,
                )
                return Bool(False)
            ctx.scopes.append(("item", rtype))
            try:
                f = ctx.resolve_field(part["field"], part, "field", f"{ppath}.field")
                where = (
                    compile_condition(part["where"], ctx, part, "where", f"{ppath}.where")
                    if "where" in part
                    else Bool(True)
                )
                year_field = year_of = None
                if "year" in part:
                    y = part["year"]
                    if not isinstance(y, dict) or set(y) != {"field", "equals"}:
                        ctx.error(
                            part,
                            "year",
                            f"{ppath}.year: needs field and equals",
                            f"{ppath}.year：需要 field 与 equals",
                            path,
                        )
                        return Bool(False)
                    yf = ctx.resolve_field(y["field"], y, "field", f"{ppath}.year.field")
                    ctx.scopes.append((RECORD, record_type))
                    try:
                        ye = ctx.resolve_field(y["equals"], y, "equals", f"{ppath}.year.equals")
                    finally:
                        ctx.scopes.pop()
                    if yf is None or ye is None:
                        return Bool(False)
                    if not yf[1].type.is_time or ye[1].type != FieldType.INT:
                        ctx.error(
                            y,
                            "field",
                            f"{ppath}.year: field must be a timestamp and equals an int field",
                            f"{ppath}.year：field 须为时间，equals 须为整数字段",
                            path,
                        )
                        return Bool(False)
                    year_field, year_of = yf[0].field, ye[0].field
            finally:
                ctx.scopes.pop()
            if f is None:
                return Bool(False)
            if not f[1].type.is_number or (kind is not None and kind != f[1].type):
                ctx.error(
                    part,
                    "field",
                    f"{ppath}.field: sum numbers of one type",
                    f"{ppath}.field：只能对同一类型的数值求和",
                    path,
                )
                return Bool(False)
            kind = f[1].type
            parts.append(
                AggregatePart(
                    rtype, tuple((k, r.field) for k, r in keys), f[0].field, where, year_field, year_of
                )
            )
        op = OPS.get(str(body["op"]))
        if op is None:
            ctx.error(
                body, "op", f"{path}.op: not one of {list(OPS)}", f"{path}.op：不是 {list(OPS)} 之一", path
            )
            return Bool(False)
        column = f"agg_{name}__"
        agg = Aggregate(column, tuple(parts))
        existing = [d for d in ctx.derivations if isinstance(d, Aggregate) and d.name == column]
        if existing and existing[0] != agg:
            ctx.error(
                body,
                "name",
                f"{path}.name: {name!r} already names a different sum",
                f"{path}.name：{name!r} 已用于另一个求和",
                path,
            )
            return Bool(False)
        if not existing:
            ctx.derivations.append(agg)
        from rules.records import FieldSpec, Text

        pseudo = FieldSpec(name, kind or FieldType.DECIMAL, True, Text(name, name))
        right = operand(body["value"], pseudo, ctx, body, "value", f"{path}.value")
        if right is None:
            return Bool(False)
        return And((*_present_all(right.presence), Cmp(Ref(RECORD, column), op, right.expr)))
