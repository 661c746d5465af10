"""What a condition needs while it compiles: scopes, parameters, and where to report problems."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rules.lang.ir import RECORD, Derivation, Ref
from rules.problems import Problems
from rules.records import FieldSpec, FieldType, RecordModel
from rules.yamlsource import line_of


@dataclass(frozen=True)
class Parameter:
    id: str
    type: str  # int | decimal | days | ratio | bool | string | period
    value: Any
    default: Any
    unit: dict[str, str]
    label: dict[str, str]
    clauses: tuple[str, ...]


PARAM_TYPES = ("int", "decimal", "days", "ratio", "bool", "string", "period")
PERIODS = ("month", "quarter", "year")


@dataclass
class CompileContext:
    """Compile state of one rule. Scopes map a scope name to its record type; the innermost
    scope (last pushed) is what an unqualified field name refers to."""

    model: RecordModel
    params: dict[str, Parameter]
    problems: Problems
    file: str
    rule_id: str
    scopes: list[tuple[str, str]]  # (scope name, record type), outermost first
    derivations: list[Derivation] = field(default_factory=list)
    aliases_used: set[str] = field(default_factory=set)
    params_used: set[str] = field(default_factory=set)
    counter: int = 0

    # --- reporting ---------------------------------------------------------------------------
    def error(self, node: Any, key: Any, en: str, zh: str, path: str) -> None:
        self.problems.add(self.file, en, zh, line=line_of(node, key), key=path, policy=self.rule_id)

    # --- scopes ------------------------------------------------------------------------------
    @property
    def current(self) -> tuple[str, str]:
        return self.scopes[-1]

    def fresh_alias(self, base: str) -> str:
        self.counter += 1
        return f"{base}_{self.counter}"

    def resolve_field(self, name: Any, node: Any, key: Any, path: str) -> tuple[Ref, FieldSpec] | None:
        """`amount` (innermost scope) or `record.amount` / `<alias>.amount` -> reference and spec."""
        if not isinstance(name, str) or not name:
            self.error(node, key, f"{path}: a field name is required", f"{path}：需要字段名", path)
            return None
        scope_name, record_type = self.current
        fname = name
        if "." in name:
            scope_name, fname = name.split(".", 1)
            known = dict(self.scopes)
            if scope_name not in known:
                self.error(
                    node,
                    key,
                    f"{path}: unknown scope {scope_name!r} in {name!r}; in scope here: {', '.join(known)}",
                    f"{path}：{name!r} 中的作用域 {scope_name!r} 不存在；可用：{', '.join(known)}",
                    path,
                )
                return None
            record_type = known[scope_name]
        rt = self.model.types.get(record_type)
        if rt is None or fname not in rt.fields:
            fields = ", ".join(rt.fields) if rt else ""
            self.error(
                node,
                key,
                f"{path}: {record_type} has no field {fname!r} (fields: {fields})",
                f"{path}：记录类型 {record_type} 没有字段 {fname!r}（可用字段：{fields}）",
                path,
            )
            return None
        return Ref(scope_name, fname), rt.fields[fname]

    def param(self, name: Any, node: Any, key: Any, path: str, allowed: tuple[str, ...]) -> Parameter | None:
        if not isinstance(name, str) or name not in self.params:
            self.error(
                node,
                key,
                f"{path}: unknown parameter {name!r} (define it in policies/parameters.yaml)",
                f"{path}：未知参数 {name!r}（请在 policies/parameters.yaml 中定义）",
                path,
            )
            return None
        p = self.params[name]
        if p.type not in allowed:
            self.error(
                node,
                key,
                f"{path}: parameter {name} is of type {p.type}, expected {' or '.join(allowed)}",
                f"{path}：参数 {name} 的类型为 {p.type}，此处需要 {' 或 '.join(allowed)}",
                path,
            )
            return None
        self.params_used.add(name)
        return p


def scope_is_record(ref: Ref) -> bool:
    return ref.scope == RECORD


# Which parameter types may be compared with which field types.
PARAM_FOR_FIELD: dict[FieldType, tuple[str, ...]] = {
    FieldType.DECIMAL: ("decimal",),
    FieldType.INT: ("int",),
    FieldType.STRING: ("string",),
    FieldType.BOOL: ("bool",),
    FieldType.TIMESTAMP: (),
    FieldType.DATE: (),
}
