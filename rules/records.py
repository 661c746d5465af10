"""The record model: record types and their fields, declared as data in `policies/record_types.yaml`.

In typed frames (what readers return and engines consume) values are held as:
string -> str (missing: NA), int -> Int64, decimal -> Int64 in hundredths (exact CNY fen),
bool -> boolean, timestamp/date -> datetime64[ns, UTC] (a date is midnight in the company's zone).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from rules.problems import Problems
from rules.yamlsource import YamlDoc, line_of, load_yaml

DECIMAL_SCALE = 100  # decimals are exact to 0.01 (CNY fen)


class FieldType(StrEnum):
    STRING = "string"
    INT = "int"
    DECIMAL = "decimal"
    BOOL = "bool"
    TIMESTAMP = "timestamp"
    DATE = "date"

    @property
    def is_time(self) -> bool:
        return self in (FieldType.TIMESTAMP, FieldType.DATE)

    @property
    def is_number(self) -> bool:
        return self in (FieldType.INT, FieldType.DECIMAL)


@dataclass(frozen=True, slots=True)
class Text:
    """A user-facing text in both languages."""

    zh: str
    en: str

    def get(self, lang: str) -> str:
        return self.zh if lang.startswith("zh") else self.en

    def as_dict(self) -> dict[str, str]:
        return {"zh": self.zh, "en": self.en}


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    type: FieldType
    required: bool
    label: Text
    values: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    pattern: str | None = None


@dataclass(frozen=True)
class RecordType:
    name: str
    label: Text
    fields: dict[str, FieldSpec]

    @property
    def has_dept(self) -> bool:
        return "dept" in self.fields

    @property
    def required_fields(self) -> list[str]:
        return [f.name for f in self.fields.values() if f.required]

    def field(self, name: str) -> FieldSpec:
        return self.fields[name]


@dataclass(frozen=True)
class RecordModel:
    types: dict[str, RecordType]

    def __getitem__(self, name: str) -> RecordType:
        return self.types[name]

    def __contains__(self, name: object) -> bool:
        return name in self.types

    @property
    def names(self) -> list[str]:
        return list(self.types)


def text_or_none(node: Any) -> Text | None:
    """A `{zh: ..., en: ...}` pair with both texts non-empty, else None."""
    if isinstance(node, dict) and isinstance(node.get("zh"), str) and isinstance(node.get("en"), str):
        zh, en = node["zh"].strip(), node["en"].strip()
        if zh and en:
            return Text(zh, en)
    return None


def text_from(node: Any, doc: YamlDoc, problems: Problems, key_path: str, parent: Any, key: Any) -> Text:
    """Read a `{zh: ..., en: ...}` pair; both languages are mandatory for user-facing text."""
    text = text_or_none(node)
    if text is not None:
        return text
    problems.add(
        doc.name,
        f"{key_path} must be a text in both languages: {{zh: ..., en: ...}}",
        f"{key_path} 必须同时提供中英文：{{zh: ..., en: ...}}",
        line=line_of(parent, key),
        key=key_path,
    )
    return Text("?", "?")


_FIELD_KEYS = {"type", "required", "label", "values", "min", "max", "pattern"}


def load_record_model(path: Path, problems: Problems) -> RecordModel:
    """Load `record_types.yaml`, collecting every problem."""
    doc = load_yaml(path, problems)
    if doc is None:
        return RecordModel({})
    root = doc.data
    if not isinstance(root, dict) or not isinstance(root.get("record_types"), dict):
        problems.add(
            doc.name,
            "top level must be a mapping with `record_types`",
            "顶层必须是含 record_types 的映射",
            line=1,
        )
        return RecordModel({})
    types: dict[str, RecordType] = {}
    for type_name, spec in root["record_types"].items():
        where = f"record_types.{type_name}"
        if not re.fullmatch(r"[a-z][a-z0-9_]*", str(type_name)):
            problems.add(
                doc.name,
                f"record type name {type_name!r} must be snake_case",
                f"记录类型名 {type_name!r} 须为小写下划线形式",
                line=line_of(root["record_types"], type_name),
                key=where,
            )
        if not isinstance(spec, dict) or not isinstance(spec.get("fields"), dict):
            problems.add(
                doc.name,
                f"{where} needs `label` and `fields`",
                f"{where} 需要 label 与 fields",
                line=line_of(root["record_types"], type_name),
                key=where,
            )
            continue
        label = text_from(spec.get("label"), doc, problems, f"{where}.label", spec, "label")
        fields: dict[str, FieldSpec] = {}
        for fname, fspec in spec["fields"].items():
            fwhere = f"{where}.fields.{fname}"
            fline = line_of(spec["fields"], fname)
            if not isinstance(fspec, dict):
                problems.add(
                    doc.name, f"{fwhere} must be a mapping", f"{fwhere} 必须是映射", line=fline, key=fwhere
                )
                continue
            unknown = set(fspec) - _FIELD_KEYS
            if unknown:
                problems.add(
                    doc.name,
                    f"{fwhere}: unknown keys {sorted(unknown)}",
                    f"{fwhere}：未知键 {sorted(unknown)}",
                    line=fline,
                    key=fwhere,
                )
            try:
                ftype = FieldType(str(fspec.get("type")))
            except ValueError:
                problems.add(
                    doc.name,
                    f"{fwhere}.type must be one of {[t.value for t in FieldType]}",
                    f"{fwhere}.type 必须是 {[t.value for t in FieldType]} 之一",
                    line=fline,
                    key=fwhere,
                )
                continue
            values = fspec.get("values")
            if values is not None and not (
                isinstance(values, list) and all(isinstance(v, str) for v in values)
            ):
                problems.add(
                    doc.name,
                    f"{fwhere}.values must be a list of strings",
                    f"{fwhere}.values 必须是字符串列表",
                    line=fline,
                    key=fwhere,
                )
                values = None
            pattern = fspec.get("pattern")
            if pattern is not None:
                try:
                    re.compile(str(pattern))
                except re.error as exc:
                    problems.add(
                        doc.name,
                        f"{fwhere}.pattern is not a valid regular expression: {exc}",
                        f"{fwhere}.pattern 不是有效的正则表达式：{exc}",
                        line=fline,
                        key=fwhere,
                    )
                    pattern = None
            fields[str(fname)] = FieldSpec(
                name=str(fname),
                type=ftype,
                required=bool(fspec.get("required", False)),
                label=text_from(fspec.get("label"), doc, problems, f"{fwhere}.label", fspec, "label"),
                values=tuple(values) if values else None,
                min=fspec.get("min"),
                max=fspec.get("max"),
                pattern=pattern,
            )
        if "id" not in fields:
            problems.add(
                doc.name,
                f"{where} must declare an `id` field",
                f"{where} 必须声明 id 字段",
                line=line_of(root["record_types"], type_name),
                key=where,
            )
        types[str(type_name)] = RecordType(str(type_name), label, fields)
    return RecordModel(types)
