"""Data-quality expectation suites as data: loading `policies/checks/<record_type>.yaml`.

Validated in three tiers, like the rule loader, collecting every problem (file, line, key,
expectation id) before failing:

1. shape: the file is a mapping with a `suite` mapping and an `expectations` list of mappings;
2. schema: each expectation has exactly the keys it may have, values of the right kind
   (stable id `DQ-XXX-001`, severity, `{zh, en}` message, clause and rule id lists);
3. meaning: the record type exists (and is the file's name), the expectation type is one zhidu
   runs, its kwargs are those of that type, every column is a field of the record type (or a
   derived column of the suite) with a type the expectation can check, referenced types and
   fields exist, parameters exist, clauses and rules exist, message placeholders are known.

This module never imports great_expectations (it costs seconds to import): the loader knows the
expectation types it supports from the registry below, and `checks.runner` builds the GX objects
only when the checks run. A test builds every registered type with GX, so the registry cannot
drift from the installed GX.
"""

from __future__ import annotations

import re
import string
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from rules.problems import Problems
from rules.records import DECIMAL_SCALE, FieldSpec, FieldType, RecordModel, RecordType, Text, text_or_none
from rules.yamlsource import YamlDoc, line_of, load_yaml, plain

if TYPE_CHECKING:
    from rules.library import Library

SEVERITIES = ("minor", "major", "critical")
EXPECTATION_ID = re.compile(r"^DQ-[A-Z]{2,5}-\d{3}$")
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# Placeholders every message may use besides the record's fields and the suite's parameters.
ROW_PLACEHOLDERS = ("id", "value", "row")

# --- values that are only known when the checks run ---------------------------------------------


@dataclass(frozen=True, slots=True)
class AsOf:
    """The as-of time of the run shifted by `days` (negative: before it)."""

    days: float


@dataclass(frozen=True, slots=True)
class ValuesOf:
    """Every value of `field` in the frame of `type` (referential integrity)."""

    type: str
    field: str


@dataclass(frozen=True, slots=True)
class TimeLiteral:
    """An ISO 8601 timestamp; without an offset it is in the company's time zone."""

    text: str


# --- the registry of expectation types zhidu runs ----------------------------------------------
# Every supported type is a row-level ("map") expectation, so each failure names its rows and
# through them the record ids. Kwarg kinds: column, columns (a list), value_set, bound, regex,
# mostly, flag (a bool), length (a non-negative int), choice:<a|b|c>.

KwargKind = str
NUMERIC_OR_TIME = frozenset({FieldType.INT, FieldType.DECIMAL, FieldType.TIMESTAMP, FieldType.DATE})


@dataclass(frozen=True)
class ExpectationType:
    name: str
    required: Mapping[str, KwargKind]
    optional: Mapping[str, KwargKind] = field(default_factory=dict)
    one_of: tuple[str, ...] = ()  # at least one of these kwargs
    column_types: frozenset[FieldType] | None = None  # allowed field types of `column`, None: any
    derived_ok: bool = False  # may `column` be a derived column (a number of days)

    @property
    def class_name(self) -> str:
        return class_name(self.name)

    @property
    def kwargs(self) -> dict[str, KwargKind]:
        return {**self.required, **self.optional}


def class_name(expectation_type: str) -> str:
    """The GX class: expect_column_values_to_be_unique -> ExpectColumnValuesToBeUnique."""
    return "".join(part.capitalize() for part in expectation_type.split("_"))


_MOSTLY = {"mostly": "mostly"}
REGISTRY: dict[str, ExpectationType] = {
    t.name: t
    for t in (
        ExpectationType("expect_column_values_to_not_be_null", {"column": "column"}, _MOSTLY),
        ExpectationType(
            "expect_column_values_to_be_in_set", {"column": "column", "value_set": "value_set"}, _MOSTLY
        ),
        ExpectationType(
            "expect_column_values_to_not_be_in_set",
            {"column": "column", "value_set": "value_set"},
            _MOSTLY,
        ),
        ExpectationType(
            "expect_column_values_to_be_between",
            {"column": "column"},
            {
                "min_value": "bound",
                "max_value": "bound",
                "strict_min": "flag",
                "strict_max": "flag",
                **_MOSTLY,
            },
            one_of=("min_value", "max_value"),
            column_types=NUMERIC_OR_TIME,
            derived_ok=True,
        ),
        ExpectationType("expect_column_values_to_be_unique", {"column": "column"}, _MOSTLY),
        ExpectationType(
            "expect_compound_columns_to_be_unique",
            {"column_list": "columns"},
            {"ignore_row_if": "choice:all_values_are_missing|any_value_is_missing|never", **_MOSTLY},
        ),
        ExpectationType(
            "expect_column_values_to_match_regex",
            {"column": "column", "regex": "regex"},
            _MOSTLY,
            column_types=frozenset({FieldType.STRING}),
        ),
        ExpectationType(
            "expect_column_value_lengths_to_be_between",
            {"column": "column"},
            {"min_value": "length", "max_value": "length", **_MOSTLY},
            one_of=("min_value", "max_value"),
            column_types=frozenset({FieldType.STRING}),
        ),
        ExpectationType(
            "expect_column_pair_values_a_to_be_greater_than_b",
            {"column_A": "column", "column_B": "column"},
            {
                "or_equal": "flag",
                "ignore_row_if": "choice:both_values_are_missing|either_value_is_missing|neither",
                **_MOSTLY,
            },
            column_types=NUMERIC_OR_TIME,
        ),
    )
}

# --- the loaded suites ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SuiteParameter:
    name: str
    value: int | float
    unit: Text | None
    label: Text


@dataclass(frozen=True)
class Derived:
    """A column computed before the checks run: `(to - from)` in days (missing if either is)."""

    name: str
    kind: Literal["days_between"]
    start: str
    end: str
    label: Text

    @property
    def sources(self) -> tuple[str, str]:
        return (self.start, self.end)


@dataclass(frozen=True)
class Expectation:
    id: str
    record_type: str
    type: str  # a key of REGISTRY
    kwargs: Mapping[str, Any]  # resolved: parameters substituted, decimals in hundredths
    fields: tuple[str, ...]  # record fields it concerns: marked unverifiable when it fails
    severity: str
    message: Text
    clauses: tuple[str, ...]
    rules: tuple[str, ...]  # rules judging the same fact (documentation and reports)
    where: tuple[tuple[str, Any], ...]  # rows it applies to: field == value, all of them
    marks_unverifiable: bool
    file: str
    line: int | None
    source: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def kind(self) -> ExpectationType:
        return REGISTRY[self.type]

    @property
    def columns(self) -> tuple[str, ...]:
        """The frame columns it reads (record fields or derived columns), in kwargs order."""
        out: list[str] = []
        for key, kind in self.kind.kwargs.items():
            value = self.kwargs.get(key)
            if kind == "column" and isinstance(value, str):
                out.append(value)
            elif kind == "columns" and isinstance(value, list):
                out.extend(str(v) for v in value)
        return tuple(out)

    @property
    def references(self) -> tuple[ValuesOf, ...]:
        return tuple(v for v in self.kwargs.values() if isinstance(v, ValuesOf))

    @property
    def placeholders(self) -> set[str]:
        return {n for t in (self.message.zh, self.message.en) for n in _placeholders(t)}


@dataclass(frozen=True)
class Suite:
    record_type: str
    title: Text
    file: str
    parameters: dict[str, SuiteParameter]
    derived: dict[str, Derived]
    expectations: tuple[Expectation, ...]


@dataclass(frozen=True)
class Suites:
    """Every suite, by record type, with the record model they were checked against."""

    model: RecordModel
    by_type: dict[str, Suite]

    def __iter__(self) -> Iterator[Suite]:
        return iter(self.by_type.values())

    def __getitem__(self, record_type: str) -> Suite:
        return self.by_type[record_type]

    def __contains__(self, record_type: object) -> bool:
        return record_type in self.by_type

    def __len__(self) -> int:
        return len(self.by_type)

    @property
    def expectations(self) -> list[Expectation]:
        return [e for s in self for e in s.expectations]

    def expectation(self, expectation_id: str) -> Expectation:
        for e in self.expectations:
            if e.id == expectation_id:
                return e
        raise KeyError(expectation_id)


# --- loading --------------------------------------------------------------------------------------

_SUITE_KEYS = {"record_type", "title", "parameters", "derived"}
_EXPECTATION_KEYS = {
    "id",
    "type",
    "kwargs",
    "fields",
    "severity",
    "message",
    "clauses",
    "rules",
    "where",
    "unverifiable",
    "description",
}
_REQUIRED_KEYS = ("id", "type", "kwargs", "severity", "message")


def load_suites(
    folder: Path,
    model: RecordModel,
    *,
    clause_ids: Collection[str] | None = None,
    rule_ids: Collection[str] | None = None,
) -> Suites:
    """Load every `<record_type>.yaml` of `folder`; raises InputError listing every problem.
    `clause_ids` / `rule_ids`, when given, are what `clauses` / `rules` may cite."""
    problems = Problems()
    suites = load_suite_files(
        sorted(folder.glob("*.yaml")), model, problems, clause_ids=clause_ids, rule_ids=rule_ids
    )
    if not suites.by_type and not problems:
        problems.add(
            str(folder), "no suite files (<record_type>.yaml) found", "未找到检查集文件（<记录类型>.yaml）"
        )
    problems.raise_if_any("the data-quality suites have problems / 数据质量检查集存在问题")
    return suites


def load_suite_files(
    paths: list[Path],
    model: RecordModel,
    problems: Problems,
    *,
    clause_ids: Collection[str] | None = None,
    rule_ids: Collection[str] | None = None,
) -> Suites:
    """Load the given suite files, adding every problem to `problems` (nothing is raised)."""
    by_type: dict[str, Suite] = {}
    seen: dict[str, str] = {}
    for path in paths:
        doc = load_yaml(path, problems)
        if doc is None:
            continue
        suite = _SuiteLoader(doc, model, problems, clause_ids, rule_ids).load()
        if suite is None:
            continue
        if suite.record_type in by_type:
            problems.add(
                doc.name,
                f"a suite for {suite.record_type} is already defined in {by_type[suite.record_type].file}",
                f"{suite.record_type} 的检查集已在 {by_type[suite.record_type].file} 中定义",
                line=1,
                key="suite.record_type",
            )
            continue
        for e in suite.expectations:
            if e.id in seen:
                problems.add(
                    doc.name,
                    f"expectation id {e.id} is already used in {seen[e.id]}",
                    f"检查编号 {e.id} 已在 {seen[e.id]} 中使用",
                    line=e.line,
                    key="id",
                    policy=e.id,
                )
            else:
                seen[e.id] = f"{doc.name}:{e.line}"
        by_type[suite.record_type] = suite
    return Suites(model, by_type)


def _placeholders(template: str) -> list[str]:
    try:
        return [name for _, name, _, _ in string.Formatter().parse(template) if name]
    except ValueError:
        return ["{"]  # an unbalanced brace: reported as an unknown placeholder


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class _SuiteLoader:
    """One suite file through the three tiers."""

    def __init__(
        self,
        doc: YamlDoc,
        model: RecordModel,
        problems: Problems,
        clause_ids: Collection[str] | None,
        rule_ids: Collection[str] | None,
    ) -> None:
        self.doc = doc
        self.model = model
        self.problems = problems
        self.clause_ids = clause_ids
        self.rule_ids = rule_ids
        self.params: dict[str, SuiteParameter] = {}
        self.derived: dict[str, Derived] = {}
        self.rt: RecordType | None = None

    def err(
        self, node: Any, key: Any, en: str, zh: str, *, path: str | None = None, policy: str | None = None
    ) -> None:
        self.problems.add(self.doc.name, en, zh, line=line_of(node, key), key=path, policy=policy)

    # --- tier 1: shape ---------------------------------------------------------------------------
    def load(self) -> Suite | None:
        data = self.doc.data
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("suite"), dict)
            or not isinstance(data.get("expectations"), list)
        ):
            self.problems.add(
                self.doc.name,
                "a suite file is a mapping with a `suite` mapping and an `expectations` list",
                "检查集文件须为含 suite 映射与 expectations 列表的映射",
                line=1,
            )
            return None
        for extra in sorted(set(data) - {"suite", "expectations"}):
            self.err(
                data, extra, f"unknown top-level key {extra!r}", f"未知顶层键 {extra!r}", path=str(extra)
            )
        head = data["suite"]
        for extra in sorted(set(head) - _SUITE_KEYS):
            self.err(
                head,
                extra,
                f"suite: unknown key {extra!r}; allowed: {sorted(_SUITE_KEYS)}",
                f"suite：未知键 {extra!r}；允许：{sorted(_SUITE_KEYS)}",
                path=f"suite.{extra}",
            )
        record_type = head.get("record_type")
        if not isinstance(record_type, str) or record_type not in self.model.types:
            self.err(
                head,
                "record_type" if "record_type" in head else None,
                f"suite.record_type: unknown record type {record_type!r}; known: {', '.join(self.model.names)}",
                f"suite.record_type：未知记录类型 {record_type!r}",
                path="suite.record_type",
            )
            return None
        if self.doc.path.stem != record_type:
            self.err(
                head,
                "record_type",
                f"suite.record_type {record_type!r} must match the file name {self.doc.path.stem!r}",
                f"suite.record_type {record_type!r} 须与文件名 {self.doc.path.stem!r} 一致",
                path="suite.record_type",
            )
        self.rt = self.model.types[str(record_type)]
        title = text_or_none(head.get("title"))
        if title is None:
            self.err(
                head,
                "title" if "title" in head else None,
                "suite.title must be {zh: ..., en: ...}",
                "suite.title 须为 {zh: ..., en: ...}",
                path="suite.title",
            )
        self._parameters(head.get("parameters"), head)
        self._derived(head.get("derived"), head)
        items = data["expectations"]
        expectations = [
            e for i, spec in enumerate(items) if (e := self._expectation(spec, i, items)) is not None
        ]
        return Suite(
            record_type=str(record_type),
            title=title or Text("?", "?"),
            file=self.doc.name,
            parameters=self.params,
            derived=self.derived,
            expectations=tuple(expectations),
        )

    # --- suite head ------------------------------------------------------------------------------
    def _parameters(self, node: Any, head: Any) -> None:
        if node is None:
            return
        if not isinstance(node, dict):
            self.err(
                head,
                "parameters",
                "suite.parameters must be a mapping",
                "suite.parameters 须为映射",
                path="suite.parameters",
            )
            return
        for name, spec in node.items():
            path = f"suite.parameters.{name}"
            ok = (
                isinstance(spec, dict)
                and _is_number(spec.get("value"))
                and spec["value"] >= 0
                and not set(spec) - {"value", "unit", "label"}
            )
            label = text_or_none(spec.get("label")) if isinstance(spec, dict) else None
            if not ok or label is None or not NAME.match(str(name)):
                self.err(
                    node,
                    name,
                    f"{path} must be {{value: <non-negative number>, unit: {{zh, en}}, label: {{zh, en}}}} with a snake_case name",
                    f"{path} 须为 {{value: 非负数, unit: {{zh, en}}, label: {{zh, en}}}}，名称为小写下划线形式",
                    path=path,
                )
                continue
            assert isinstance(spec, dict)
            assert label is not None
            self.params[str(name)] = SuiteParameter(
                str(name), plain(spec["value"]), text_or_none(spec.get("unit")), label
            )

    def _derived(self, node: Any, head: Any) -> None:
        assert self.rt is not None
        if node is None:
            return
        if not isinstance(node, dict):
            self.err(
                head,
                "derived",
                "suite.derived must be a mapping",
                "suite.derived 须为映射",
                path="suite.derived",
            )
            return
        for name, spec in node.items():
            path = f"suite.derived.{name}"
            between = spec.get("days_between") if isinstance(spec, dict) else None
            label = text_or_none(spec.get("label")) if isinstance(spec, dict) else None
            if (
                not isinstance(spec, dict)
                or set(spec) != {"days_between", "label"}
                or not isinstance(between, dict)
                or set(between) != {"from", "to"}
                or label is None
            ):
                self.err(
                    node,
                    name,
                    f"{path} must be {{days_between: {{from: <field>, to: <field>}}, label: {{zh, en}}}}",
                    f"{path} 须为 {{days_between: {{from: 字段, to: 字段}}, label: {{zh, en}}}}",
                    path=path,
                )
                continue
            assert isinstance(between, dict)
            assert label is not None
            if not NAME.match(str(name)) or name in self.rt.fields:
                self.err(
                    node,
                    name,
                    f"{path}: the name must be snake_case and not a field of {self.rt.name}",
                    f"{path}：名称须为小写下划线形式，且不能与 {self.rt.name} 的字段同名",
                    path=path,
                )
                continue
            bad = False
            for end in ("from", "to"):
                f = between[end]
                spec_f = self.rt.fields.get(str(f))
                if spec_f is None or not spec_f.type.is_time:
                    self.err(
                        between,
                        end,
                        f"{path}.days_between.{end}: {f!r} is not a timestamp or date field of {self.rt.name}",
                        f"{path}.days_between.{end}：{f!r} 不是 {self.rt.name} 的时间或日期字段",
                        path=f"{path}.days_between.{end}",
                    )
                    bad = True
            if not bad:
                self.derived[str(name)] = Derived(
                    str(name), "days_between", str(between["from"]), str(between["to"]), label
                )

    # --- tiers 2 and 3 for one expectation --------------------------------------------------------
    def _expectation(self, spec: Any, index: int, items: list[Any]) -> Expectation | None:
        assert self.rt is not None
        rt = self.rt
        line = line_of(items, index)
        if not isinstance(spec, dict):
            self.problems.add(
                self.doc.name,
                f"expectations[{index}] must be a mapping",
                f"expectations[{index}] 须为映射",
                line=line,
                key=f"expectations[{index}]",
            )
            return None
        eid = spec.get("id")
        policy = str(eid) if eid is not None else f"expectations[{index}]"
        start = len(self.problems)

        def err(node: Any, key: Any, en: str, zh: str, path: str | None = None) -> None:
            where = line_of(node, key) if key is not None else line
            self.problems.add(
                self.doc.name,
                en,
                zh,
                line=where,
                key=path or (str(key) if key is not None else None),
                policy=policy,
            )

        # schema
        for extra in sorted(set(spec) - _EXPECTATION_KEYS):
            err(
                spec,
                extra,
                f"unknown key {extra!r}; allowed: {sorted(_EXPECTATION_KEYS)}",
                f"未知键 {extra!r}；允许：{sorted(_EXPECTATION_KEYS)}",
            )
        for required in _REQUIRED_KEYS:
            if required not in spec:
                err(spec, None, f"missing required key {required!r}", f"缺少必填键 {required!r}", required)
        if not isinstance(eid, str) or not EXPECTATION_ID.match(eid):
            err(
                spec,
                "id" if "id" in spec else None,
                f"id {eid!r} must look like DQ-EXP-001",
                f"编号 {eid!r} 格式应如 DQ-EXP-001",
                "id",
            )
        severity = spec.get("severity")
        if "severity" in spec and severity not in SEVERITIES:
            err(
                spec,
                "severity",
                f"severity must be one of {list(SEVERITIES)}",
                f"severity 须为 {list(SEVERITIES)} 之一",
            )
        message = text_or_none(spec.get("message"))
        if "message" in spec and message is None:
            err(spec, "message", "message must be {zh: ..., en: ...}", "message 须为 {zh: ..., en: ...}")
        clauses = self._id_list(spec, "clauses", err)
        rules = self._id_list(spec, "rules", err)
        unverifiable = spec.get("unverifiable", True)
        if not isinstance(unverifiable, bool):
            err(spec, "unverifiable", "unverifiable must be true or false", "unverifiable 须为 true 或 false")
        kwargs_node = spec.get("kwargs")
        if "kwargs" in spec and not isinstance(kwargs_node, dict):
            err(
                spec,
                "kwargs",
                "kwargs must be a mapping of the expectation's arguments",
                "kwargs 须为检查参数的映射",
            )
            kwargs_node = None

        # meaning
        for c in clauses:
            if self.clause_ids is not None and c not in self.clause_ids:
                err(
                    spec,
                    "clauses",
                    f"clause {c} does not exist in the policy library",
                    f"条款 {c} 在制度库中不存在",
                )
        for r in rules:
            if self.rule_ids is not None and r not in self.rule_ids:
                err(
                    spec,
                    "rules",
                    f"rule {r} does not exist in the policy library",
                    f"规则 {r} 在制度库中不存在",
                )
        etype = spec.get("type")
        kind = REGISTRY.get(str(etype)) if isinstance(etype, str) else None
        if "type" in spec and kind is None:
            err(
                spec,
                "type",
                f"unknown expectation type {etype!r}; zhidu runs: {', '.join(REGISTRY)}",
                f"未知的检查类型 {etype!r}；支持：{', '.join(REGISTRY)}",
            )
        kwargs: dict[str, Any] = {}
        if kind is not None and isinstance(kwargs_node, dict):
            kwargs = self._kwargs(kind, kwargs_node, spec, err)
        where = self._where(spec, err)
        fields = self._fields(spec, kind, kwargs, err)
        if message is not None:
            allowed = set(rt.fields) | set(self.params) | set(ROW_PLACEHOLDERS)
            for name in sorted({n for t in (message.zh, message.en) for n in _placeholders(t)}):
                if name not in allowed:
                    err(
                        spec,
                        "message",
                        f"message placeholder {{{name}}} is not a field of {rt.name}, a suite parameter or one of {list(ROW_PLACEHOLDERS)}",
                        f"消息占位符 {{{name}}} 不是 {rt.name} 的字段、检查集参数或 {list(ROW_PLACEHOLDERS)} 之一",
                    )
        if len(self.problems) > start:
            return None
        assert message is not None
        assert kind is not None
        return Expectation(
            id=str(eid),
            record_type=rt.name,
            type=kind.name,
            kwargs=kwargs,
            fields=fields,
            severity=str(severity),
            message=message,
            clauses=tuple(clauses),
            rules=tuple(rules),
            where=where,
            marks_unverifiable=bool(unverifiable),
            file=self.doc.name,
            line=line_of(spec, "id"),
            source=plain(spec),
        )

    def _id_list(self, spec: dict[str, Any], key: str, err: Any) -> list[str]:
        value = spec.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            err(spec, key, f"{key} must be a list of ids", f"{key} 须为编号列表")
            return []
        return [str(v) for v in value]

    def _column_spec(self, name: Any) -> FieldSpec | Derived | None:
        assert self.rt is not None
        if not isinstance(name, str):
            return None
        return self.rt.fields.get(name) or self.derived.get(name)

    def _kwargs(self, kind: ExpectationType, node: dict[str, Any], spec: Any, err: Any) -> dict[str, Any]:
        assert self.rt is not None
        rt = self.rt
        out: dict[str, Any] = {}
        for extra in sorted(set(node) - set(kind.kwargs)):
            err(
                node,
                extra,
                f"kwargs: {extra!r} is not an argument of {kind.name}; allowed: {sorted(kind.kwargs)}",
                f"kwargs：{extra!r} 不是 {kind.name} 的参数；允许：{sorted(kind.kwargs)}",
                f"kwargs.{extra}",
            )
        for key in kind.required:
            if key not in node:
                err(
                    spec,
                    "kwargs",
                    f"kwargs: {kind.name} needs {key!r}",
                    f"kwargs：{kind.name} 需要 {key!r}",
                    f"kwargs.{key}",
                )
        if kind.one_of and not any(k in node for k in kind.one_of):
            err(
                spec,
                "kwargs",
                f"kwargs: {kind.name} needs one of {list(kind.one_of)}",
                f"kwargs：{kind.name} 需要 {list(kind.one_of)} 之一",
                "kwargs",
            )

        # columns first: the other kwargs are checked against the column's type
        column_types: list[FieldSpec | Derived] = []
        for key, kk in kind.kwargs.items():
            if key not in node or kk not in ("column", "columns"):
                continue
            names = node[key] if kk == "columns" else [node[key]]
            if kk == "columns" and (not isinstance(names, list) or len(names) < 2):
                err(
                    node,
                    key,
                    f"kwargs.{key} must list at least two fields",
                    f"kwargs.{key} 须列出至少两个字段",
                    f"kwargs.{key}",
                )
                continue
            for name in names:
                col = self._column_spec(name)
                if col is None:
                    err(
                        node,
                        key,
                        f"kwargs.{key}: {name!r} is not a field of {rt.name}"
                        + (f" or a derived column ({', '.join(self.derived)})" if self.derived else ""),
                        f"kwargs.{key}：{name!r} 不是 {rt.name} 的字段",
                        f"kwargs.{key}",
                    )
                    continue
                if isinstance(col, Derived) and not kind.derived_ok:
                    err(
                        node,
                        key,
                        f"kwargs.{key}: {kind.name} cannot check the derived column {name!r}",
                        f"kwargs.{key}：{kind.name} 不能检查派生列 {name!r}",
                        f"kwargs.{key}",
                    )
                    continue
                if (
                    isinstance(col, FieldSpec)
                    and kind.column_types is not None
                    and col.type not in kind.column_types
                ):
                    err(
                        node,
                        key,
                        f"kwargs.{key}: {kind.name} cannot check {name!r} of type {col.type.value}; it checks {sorted(t.value for t in kind.column_types)}",
                        f"kwargs.{key}：{kind.name} 不能检查 {col.type.value} 类型的字段 {name!r}",
                        f"kwargs.{key}",
                    )
                    continue
                column_types.append(col)
            out[key] = [str(n) for n in names] if kk == "columns" else str(names[0])
        if kind.name == "expect_column_pair_values_a_to_be_greater_than_b" and len(column_types) == 2:
            a, b = (c.type if isinstance(c, FieldSpec) else "days" for c in column_types)
            if {a, b} - {FieldType.TIMESTAMP, FieldType.DATE} and a != b:
                err(
                    node,
                    "column_B",
                    f"kwargs: column_A ({a}) and column_B ({b}) cannot be compared",
                    f"kwargs：column_A（{a}）与 column_B（{b}）不可比较",
                    "kwargs.column_B",
                )
        target = column_types[0] if len(column_types) == 1 else None

        for key, kk in kind.kwargs.items():
            if key not in node or kk in ("column", "columns"):
                continue
            value = node[key]
            path = f"kwargs.{key}"
            if kk == "mostly":
                if not _is_number(value) or not 0 < value <= 1:
                    err(node, key, f"{path} must be a number in (0, 1]", f"{path} 须为 (0, 1] 之间的数", path)
                    continue
                out[key] = float(value)
            elif kk == "flag":
                if not isinstance(value, bool):
                    err(node, key, f"{path} must be true or false", f"{path} 须为 true 或 false", path)
                    continue
                out[key] = value
            elif kk.startswith("choice:"):
                choices = kk.removeprefix("choice:").split("|")
                if value not in choices:
                    err(node, key, f"{path} must be one of {choices}", f"{path} 须为 {choices} 之一", path)
                    continue
                out[key] = str(value)
            elif kk == "length":
                resolved = self._number(value, node, key, path, err)
                if resolved is not None and (not isinstance(resolved, int) or resolved < 0):
                    err(node, key, f"{path} must be a non-negative integer", f"{path} 须为非负整数", path)
                elif resolved is not None:
                    out[key] = resolved
            elif kk == "regex":
                try:
                    re.compile(str(value))
                except re.error as exc:
                    err(
                        node,
                        key,
                        f"{path} is not a valid regular expression: {exc}",
                        f"{path} 不是有效的正则表达式：{exc}",
                        path,
                    )
                    continue
                if not isinstance(value, str):
                    err(node, key, f"{path} must be a string", f"{path} 须为字符串", path)
                    continue
                out[key] = value
            elif kk == "bound":
                bound = self._bound(value, target, node, key, path, err)
                if bound is not None:
                    out[key] = bound
            elif kk == "value_set":
                values = self._value_set(value, target, node, key, path, err)
                if values is not None:
                    out[key] = values
        return out

    def _number(self, value: Any, node: Any, key: Any, path: str, err: Any) -> int | float | None:
        if isinstance(value, dict) and set(value) == {"param"}:
            name = value["param"]
            if not isinstance(name, str) or name not in self.params:
                err(
                    node,
                    key,
                    f"{path}: unknown parameter {name!r}; the suite defines: {sorted(self.params)}",
                    f"{path}：参数 {name!r} 不存在",
                    path,
                )
                return None
            return self.params[name].value
        if _is_number(value):
            return plain(value)  # type: ignore[no-any-return]
        err(
            node,
            key,
            f"{path} must be a number or {{param: <name>}}",
            f"{path} 须为数字或 {{param: 参数名}}",
            path,
        )
        return None

    def _bound(
        self, value: Any, target: FieldSpec | Derived | None, node: Any, key: Any, path: str, err: Any
    ) -> Any:
        if target is None:
            return None  # the column was already reported
        is_time = isinstance(target, FieldSpec) and target.type.is_time
        if isinstance(value, dict) and set(value) == {"as_of"}:
            if not is_time:
                err(
                    node,
                    key,
                    f"{path}: an as-of bound needs a timestamp or date column",
                    f"{path}：as_of 界限只能用于时间或日期字段",
                    path,
                )
                return None
            offset = value["as_of"]
            if offset is None or offset == {}:
                return AsOf(0.0)
            if (
                not isinstance(offset, dict)
                or len(offset) != 1
                or next(iter(offset)) not in ("days_after", "days_before")
            ):
                err(
                    node,
                    key,
                    f"{path}: as_of takes {{days_after: N}} or {{days_before: N}}",
                    f"{path}：as_of 取 {{days_after: N}} 或 {{days_before: N}}",
                    path,
                )
                return None
            direction, amount = next(iter(offset.items()))
            days = self._number(amount, offset, direction, f"{path}.as_of.{direction}", err)
            if days is None:
                return None
            return AsOf(float(days) if direction == "days_after" else -float(days))
        if is_time:
            if isinstance(value, str | datetime):
                text = value.isoformat() if isinstance(value, datetime) else value
                try:
                    datetime.fromisoformat(text)
                except ValueError:
                    pass
                else:
                    return TimeLiteral(text)
            err(
                node,
                key,
                f"{path} must be an ISO 8601 timestamp or {{as_of: ...}}",
                f"{path} 须为 ISO 8601 时间或 {{as_of: ...}}",
                path,
            )
            return None
        number = self._number(value, node, key, path, err)
        if number is None:
            return None
        if isinstance(target, FieldSpec) and target.type is FieldType.DECIMAL:
            return self._hundredths(number, node, key, path, err)
        if isinstance(target, FieldSpec) and target.type is FieldType.INT and not isinstance(number, int):
            err(
                node,
                key,
                f"{path} must be an integer for the int field {target.name}",
                f"{path} 须为整数（{target.name} 为整数字段）",
                path,
            )
            return None
        return number

    def _hundredths(self, number: float, node: Any, key: Any, path: str, err: Any) -> int | None:
        try:
            scaled = Decimal(str(number)) * DECIMAL_SCALE
        except InvalidOperation:
            scaled = Decimal("NaN")
        if not scaled.is_finite() or scaled != scaled.to_integral_value():
            err(node, key, f"{path}: an amount has at most 2 decimals", f"{path}：金额最多两位小数", path)
            return None
        return int(scaled)

    def _value_set(
        self, value: Any, target: FieldSpec | Derived | None, node: Any, key: Any, path: str, err: Any
    ) -> Any:
        if target is None:
            return None
        if isinstance(target, Derived):
            err(
                node,
                key,
                f"{path}: a value set cannot apply to a derived column",
                f"{path}：派生列不能使用取值集合",
                path,
            )
            return None
        if isinstance(value, dict) and set(value) == {"ref"}:
            ref = value["ref"]
            if not isinstance(ref, dict) or set(ref) != {"type", "field"}:
                err(
                    node,
                    key,
                    f"{path}: ref takes {{type: <record type>, field: <field>}}",
                    f"{path}：ref 取 {{type: 记录类型, field: 字段}}",
                    path,
                )
                return None
            other = self.model.types.get(str(ref["type"]))
            if other is None:
                err(
                    ref,
                    "type",
                    f"{path}: unknown referenced record type {ref['type']!r}",
                    f"{path}：引用的记录类型 {ref['type']!r} 不存在",
                    f"{path}.ref.type",
                )
                return None
            ofield = other.fields.get(str(ref["field"]))
            if ofield is None:
                err(
                    ref,
                    "field",
                    f"{path}: {ref['field']!r} is not a field of {other.name}",
                    f"{path}：{ref['field']!r} 不是 {other.name} 的字段",
                    f"{path}.ref.field",
                )
                return None
            if ofield.type != target.type:
                err(
                    ref,
                    "field",
                    f"{path}: {other.name}.{ofield.name} ({ofield.type.value}) cannot hold values of {target.name} ({target.type.value})",
                    f"{path}：{other.name}.{ofield.name} 与 {target.name} 类型不同",
                    f"{path}.ref.field",
                )
                return None
            return ValuesOf(other.name, ofield.name)
        if not isinstance(value, list) or not value:
            err(
                node,
                key,
                f"{path} must be a non-empty list of values or {{ref: {{type, field}}}}",
                f"{path} 须为非空取值列表或 {{ref: {{type, field}}}}",
                path,
            )
            return None
        out: list[Any] = []
        for v in value:
            converted = self._literal(v, target)
            if converted is None:
                err(
                    node,
                    key,
                    f"{path}: {v!r} is not a {target.type.value} value of {target.name}",
                    f"{path}：{v!r} 不是 {target.name} 的 {target.type.value} 值",
                    path,
                )
                return None
            out.append(converted)
        return out

    def _literal(self, value: Any, target: FieldSpec) -> Any:
        if target.type is FieldType.STRING:
            return str(value) if isinstance(value, str) else None
        if target.type is FieldType.BOOL:
            return value if isinstance(value, bool) else None
        if target.type is FieldType.INT:
            return int(value) if isinstance(value, int) and not isinstance(value, bool) else None
        if target.type is FieldType.DECIMAL and _is_number(value):
            scaled = Decimal(str(value)) * DECIMAL_SCALE
            return int(scaled) if scaled == scaled.to_integral_value() else None
        return None

    def _where(self, spec: dict[str, Any], err: Any) -> tuple[tuple[str, Any], ...]:
        assert self.rt is not None
        node = spec.get("where")
        if node is None:
            return ()
        if not isinstance(node, dict) or not node:
            err(spec, "where", "where must be a mapping of field: value", "where 须为“字段: 值”的映射")
            return ()
        out: list[tuple[str, Any]] = []
        for name, value in node.items():
            fspec = self.rt.fields.get(str(name))
            if fspec is None or fspec.type not in (FieldType.STRING, FieldType.BOOL, FieldType.INT):
                err(
                    node,
                    name,
                    f"where: {name!r} is not a string, bool or int field of {self.rt.name}",
                    f"where：{name!r} 不是 {self.rt.name} 的字符串、布尔或整数字段",
                    f"where.{name}",
                )
                continue
            converted = self._literal(value, fspec)
            if converted is None or (fspec.values is not None and converted not in fspec.values):
                err(
                    node,
                    name,
                    f"where.{name}: {value!r} is not a value {name} can take",
                    f"where.{name}：{value!r} 不是 {name} 的允许值",
                    f"where.{name}",
                )
                continue
            out.append((str(name), converted))
        return tuple(out)

    def _fields(
        self, spec: dict[str, Any], kind: ExpectationType | None, kwargs: dict[str, Any], err: Any
    ) -> tuple[str, ...]:
        """The record fields an expectation concerns: given, or its columns (a derived column
        stands for the fields it is computed from)."""
        assert self.rt is not None
        node = spec.get("fields")
        if node is not None:
            if not isinstance(node, list) or not node or not all(isinstance(f, str) for f in node):
                err(
                    spec,
                    "fields",
                    "fields must be a non-empty list of field names",
                    "fields 须为非空字段名列表",
                )
                return ()
            for f in node:
                if f not in self.rt.fields:
                    err(
                        spec,
                        "fields",
                        f"fields: {f!r} is not a field of {self.rt.name}",
                        f"fields：{f!r} 不是 {self.rt.name} 的字段",
                    )
            return tuple(str(f) for f in node)
        if kind is None:
            return ()
        out: list[str] = []
        for key, kk in kind.kwargs.items():
            value = kwargs.get(key)
            names = (
                value
                if kk == "columns" and isinstance(value, list)
                else [value]
                if kk == "column" and isinstance(value, str)
                else []
            )
            for name in names:
                derived = self.derived.get(name)
                out.extend(derived.sources if derived else [name])
        return tuple(dict.fromkeys(out))


def suites_for_library(library: Library) -> Suites:
    """The suites of a loaded policy library (`rules.library.Library`): `<root>/checks/`,
    citing its clauses and rules."""
    return load_suites(
        library.root / "checks",
        library.model,
        clause_ids=set(library.clauses),
        rule_ids={r.id for r in library.all_rules},
    )
