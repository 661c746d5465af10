"""Operands of conditions: constants, parameters, fields and the as-of time, with day offsets
and ratios folded into one `Arith` (see `rules.lang.ir`)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import pandas as pd

from rules.lang.context import PARAM_FOR_FIELD, CompileContext
from rules.lang.ir import AS_OF, RECORD, Arith, Const, Expr, Ref
from rules.records import DECIMAL_SCALE, FieldSpec, FieldType

MS_PER_DAY = 86_400_000
_VALUE_KEYS = {"param", "field", "as_of", "plus_days", "minus_days", "times"}


@dataclass(frozen=True)
class Operand:
    expr: Expr
    kind: FieldType | None  # the value's type family (None: unknown constant)
    presence: tuple[Ref, ...]  # field references whose presence the comparison requires


def encode_constant(value: Any, spec: FieldSpec, ctx: CompileContext, node: Any, key: Any, path: str) -> Any:
    """A YAML constant -> the encoded value of a field of `spec`'s type; None when invalid."""
    t = spec.type
    try:
        if t == FieldType.STRING and isinstance(value, str | int) and not isinstance(value, bool):
            if spec.values and str(value) not in spec.values:
                raise ValueError(f"not one of {list(spec.values)}")
            return str(value)
        if t == FieldType.INT and isinstance(value, int) and not isinstance(value, bool):
            return int(value)
        if (
            t == FieldType.DECIMAL
            and isinstance(value, int | float | str | Decimal)
            and not isinstance(value, bool)
        ):
            scaled = Decimal(str(value)) * DECIMAL_SCALE
            if scaled != scaled.to_integral_value():
                raise ValueError("more than 2 decimal places")
            return int(scaled)
        if t == FieldType.BOOL and isinstance(value, bool):
            return int(value)
        if t.is_time and isinstance(value, str):
            ts = pd.Timestamp(value)
            if ts.tzinfo is None:
                raise ValueError("a timestamp constant needs an offset, e.g. +08:00")
            return int(ts.value // 1_000_000)
        raise ValueError(f"expected a {t.value} value")
    except (ValueError, InvalidOperation) as exc:
        ctx.error(
            node,
            key,
            f"{path}: {value!r} does not fit field type {t.value} ({exc})",
            f"{path}：{value!r} 与字段类型 {t.value} 不符（{exc}）",
            path,
        )
        return None


def days_value(spec: Any, ctx: CompileContext, node: Any, key: str, path: str) -> int | None:
    """A number of days: an integer or `{param: <days parameter>}`."""
    if isinstance(spec, int) and not isinstance(spec, bool) and spec >= 0:
        return spec
    if isinstance(spec, dict) and set(spec) == {"param"}:
        p = ctx.param(spec["param"], spec, "param", f"{path}.param", ("days", "int"))
        return int(p.value) if p is not None else None
    ctx.error(
        node,
        key,
        f"{path}: expected a number of days (a non-negative integer or {{param: ...}})",
        f"{path}：应为天数（非负整数或 {{param: ...}}）",
        path,
    )
    return None


def ratio_value(spec: Any, ctx: CompileContext, node: Any, key: str, path: str) -> float | None:
    if isinstance(spec, int | float) and not isinstance(spec, bool):
        return float(spec)
    if isinstance(spec, dict) and set(spec) == {"param"}:
        p = ctx.param(spec["param"], spec, "param", f"{path}.param", ("ratio",))
        return float(p.value) if p is not None else None
    ctx.error(
        node,
        key,
        f"{path}: expected a ratio (a number or {{param: ...}})",
        f"{path}：应为比例（数字或 {{param: ...}}）",
        path,
    )
    return None


def operand(
    spec: Any, against: FieldSpec | None, ctx: CompileContext, node: Any, key: Any, path: str
) -> Operand | None:
    """Parse an operand. `against` is the field it is compared with (for typing constants)."""
    if not isinstance(spec, dict):
        if against is None:
            ctx.error(
                node,
                key,
                f"{path}: a constant needs a field to compare with",
                f"{path}：常量需要与字段比较",
                path,
            )
            return None
        value = encode_constant(spec, against, ctx, node, key, path)
        return None if value is None else Operand(Const(value), against.type, ())
    unknown = set(spec) - _VALUE_KEYS
    bases = [k for k in ("param", "field", "as_of") if k in spec]
    if unknown or len(bases) != 1:
        ctx.error(
            node,
            key,
            f"{path}: an operand is a constant or a mapping with exactly one of param/field/as_of "
            f"(plus optional plus_days/minus_days/times); got keys {sorted(spec)}",
            f"{path}：操作数应为常量，或只含 param/field/as_of 之一的映射（可加 plus_days/minus_days/times）；实际键 {sorted(spec)}",
            path,
        )
        return None
    base: Expr
    kind: FieldType | None
    presence: tuple[Ref, ...] = ()
    if "param" in spec:
        allowed = (
            PARAM_FOR_FIELD.get(against.type, ())
            if against is not None
            else ("decimal", "int", "string", "bool")
        )
        p = ctx.param(
            spec["param"], spec, "param", f"{path}.param", allowed or ("<none: compare times with fields>",)
        )
        if p is None:
            return None
        if against is None:
            return None
        value = encode_constant(p.value, against, ctx, spec, "param", f"{path}.param")
        if value is None:
            return None
        base, kind = Const(value), against.type
    elif "field" in spec:
        resolved = ctx.resolve_field(spec["field"], spec, "field", f"{path}.field")
        if resolved is None:
            return None
        ref, fspec = resolved
        base, kind, presence = ref, fspec.type, (ref,)
    else:
        base, kind = Ref(RECORD, AS_OF), FieldType.TIMESTAMP

    offsets = [k for k in ("plus_days", "minus_days", "times") if k in spec]
    if len(offsets) > 1:
        ctx.error(
            spec,
            offsets[1],
            f"{path}: use one of plus_days/minus_days/times",
            f"{path}：plus_days/minus_days/times 只能用一个",
            path,
        )
        return None
    if not offsets:
        return Operand(base, kind, presence)
    mod = offsets[0]
    if isinstance(base, Const):
        ctx.error(
            spec,
            mod,
            f"{path}: {mod} applies to a field or as_of, not a parameter",
            f"{path}：{mod} 只能用于字段或 as_of",
            path,
        )
        return None
    if mod in ("plus_days", "minus_days"):
        if kind is None or not kind.is_time:
            ctx.error(spec, mod, f"{path}: {mod} needs a timestamp", f"{path}：{mod} 只能用于时间字段", path)
            return None
        days = days_value(spec[mod], ctx, spec, mod, f"{path}.{mod}")
        if days is None:
            return None
        delta = days * MS_PER_DAY * (1 if mod == "plus_days" else -1)
        return Operand(Arith(base, "+", delta), kind, presence)
    if kind is None or not kind.is_number:
        ctx.error(spec, mod, f"{path}: times needs a number field", f"{path}：times 只能用于数值字段", path)
        return None
    ratio = ratio_value(spec[mod], ctx, spec, mod, f"{path}.times")
    if ratio is None:
        return None
    return Operand(Arith(base, "*", ratio), kind, presence)


def compatible(a: FieldType | None, b: FieldType | None) -> bool:
    if a is None or b is None:
        return True
    if a.is_time and b.is_time:
        return True
    return a == b
