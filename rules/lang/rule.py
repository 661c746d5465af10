"""Rules as data: loading `policies/rules/*.yaml`, validated in three tiers.

1. shape: the file is a mapping with a `rules` list of mappings;
2. schema: each rule has exactly the keys it may have, with values of the right kind;
3. meaning: record types, fields, parameters and clauses exist, types agree, message
   placeholders name real values, and the condition compiles for both engines.
Every problem is collected with file, line, rule id and key; nothing stops at the first.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rules.engine.verdict import SEVERITY_RANK
from rules.lang.conditions import compile_condition
from rules.lang.context import CompileContext, Parameter
from rules.lang.ir import RECORD, Aggregate, And, CompiledLevel, CompiledRule, Node, Not, simplify
from rules.problems import Problems
from rules.records import RecordModel, Text, text_or_none
from rules.yamlsource import YamlDoc, line_of, load_yaml, plain

RULE_ID = re.compile(r"^[A-Z]{2,5}-\d{3}$")
_RULE_KEYS = {
    "id",
    "title",
    "clauses",
    "record_type",
    "severity",
    "responsible",
    "rectify_days",
    "when",
    "require",
    "violation",
    "levels",
    "message",
    "examples",
    "description",
    "enabled",
}


@dataclass(frozen=True)
class Example:
    expect: str  # "pass" | "fail"
    record: dict[str, Any]
    related: dict[str, list[dict[str, Any]]]
    as_of: str | None
    severity: str | None
    line: int | None


@dataclass(frozen=True)
class Rule:
    id: str
    title: Text
    clauses: tuple[str, ...]
    record_type: str
    severity: str  # the highest severity the rule can give
    responsible: str  # a field of the record naming who answers for it
    rectify_days: int
    message: Text
    compiled: CompiledRule
    examples: tuple[Example, ...]
    file: str
    line: int | None
    description: Text | None = None
    source: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def message_names(self) -> list[str]:
        return sorted({n for t in (self.message.zh, self.message.en) for n in _placeholders(t)})


def _placeholders(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


# A hook that checks a compiled rule runs on the streaming engine; set by the library loader so
# that this module does not import the engine that imports durable-rules.
StreamCheck = Callable[[CompiledRule], str | None]


def load_rule_files(
    paths: list[Path],
    *,
    model: RecordModel,
    params: Mapping[str, Parameter],
    clause_ids: set[str],
    problems: Problems,
    stream_check: StreamCheck | None = None,
) -> list[Rule]:
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    for path in paths:
        doc = load_yaml(path, problems)
        if doc is None:
            continue
        if not isinstance(doc.data, dict) or not isinstance(doc.data.get("rules"), list):
            problems.add(
                doc.name,
                "a rule file is a mapping with a `rules` list",
                "规则文件须为含 rules 列表的映射",
                line=1,
            )
            continue
        for index, spec in enumerate(doc.data["rules"]):
            rule = _load_rule(
                doc,
                spec,
                index,
                model=model,
                params=params,
                clause_ids=clause_ids,
                problems=problems,
                stream_check=stream_check,
            )
            if rule is None:
                continue
            if rule.id in seen:
                problems.add(
                    doc.name,
                    f"rule id {rule.id} is already defined in {seen[rule.id]}",
                    f"规则编号 {rule.id} 已在 {seen[rule.id]} 中定义",
                    line=rule.line,
                    policy=rule.id,
                )
                continue
            seen[rule.id] = f"{doc.name}:{rule.line}"
            rules.append(rule)
    return rules


def _load_rule(
    doc: YamlDoc,
    spec: Any,
    index: int,
    *,
    model: RecordModel,
    params: Mapping[str, Parameter],
    clause_ids: set[str],
    problems: Problems,
    stream_check: StreamCheck | None,
) -> Rule | None:
    rules_list = doc.data["rules"]
    line = line_of(rules_list, index)
    if not isinstance(spec, dict):
        problems.add(doc.name, f"rules[{index}] must be a mapping", f"rules[{index}] 必须是映射", line=line)
        return None
    rid = spec.get("id")
    policy = str(rid) if rid is not None else f"rules[{index}]"
    start = len(problems)

    def err(key: str | None, en: str, zh: str) -> None:
        problems.add(doc.name, en, zh, line=line_of(spec, key) if key else line, key=key, policy=policy)

    # --- schema ---------------------------------------------------------------------------
    for extra in sorted(set(spec) - _RULE_KEYS):
        err(
            extra,
            f"unknown key {extra!r}; allowed: {sorted(_RULE_KEYS)}",
            f"未知键 {extra!r}；允许：{sorted(_RULE_KEYS)}",
        )
    for required in ("id", "title", "clauses", "record_type", "responsible", "rectify_days", "message"):
        if required not in spec:
            err(None, f"missing required key {required!r}", f"缺少必填键 {required!r}")
    if not isinstance(rid, str) or not RULE_ID.match(rid):
        err("id", f"id {rid!r} must look like EXP-001", f"编号 {rid!r} 格式应如 EXP-001")
    title = text_or_none(spec.get("title"))
    if "title" in spec and title is None:
        err("title", "title must be {zh: ..., en: ...}", "title 须为 {zh: ..., en: ...}")
    message = text_or_none(spec.get("message"))
    if "message" in spec and message is None:
        err("message", "message must be {zh: ..., en: ...}", "message 须为 {zh: ..., en: ...}")
    description = text_or_none(spec.get("description")) if "description" in spec else None
    clauses = spec.get("clauses")
    if "clauses" in spec and (
        not isinstance(clauses, list) or not clauses or not all(isinstance(c, str) for c in clauses)
    ):
        err("clauses", "clauses must be a non-empty list of clause ids", "clauses 须为非空的条款编号列表")
        clauses = []
    rectify = spec.get("rectify_days")
    rectify_days = 0
    if isinstance(rectify, dict) and set(rectify) == {"param"} and rectify["param"] in params:
        rectify_days = int(params[rectify["param"]].value)
    elif isinstance(rectify, int) and not isinstance(rectify, bool) and rectify > 0:
        rectify_days = rectify
    elif "rectify_days" in spec:
        err(
            "rectify_days",
            "rectify_days must be a positive integer or {param: <days parameter>}",
            "rectify_days 须为正整数或 {param: ...}",
        )
    forms = [k for k in ("require", "violation", "levels") if k in spec]
    if len(forms) != 1:
        err(
            None,
            "give exactly one of require / violation / levels",
            "require / violation / levels 必须且只能给出一个",
        )
    severity = spec.get("severity")
    if "levels" not in spec and severity not in SEVERITY_RANK:
        err(
            "severity",
            f"severity must be one of {list(SEVERITY_RANK)}",
            f"severity 须为 {list(SEVERITY_RANK)} 之一",
        )

    # --- meaning --------------------------------------------------------------------------
    record_type = spec.get("record_type")
    if record_type not in model.types:
        err(
            "record_type",
            f"unknown record type {record_type!r}; known: {', '.join(model.names)}",
            f"未知记录类型 {record_type!r}",
        )
        return None
    rt = model.types[record_type]
    for c in clauses or []:
        if c not in clause_ids:
            err("clauses", f"clause {c} does not exist in the policy library", f"条款 {c} 在制度库中不存在")
    responsible = spec.get("responsible")
    if responsible not in rt.fields:
        err(
            "responsible",
            f"responsible must be a field of {record_type} (e.g. applicant, dept); got {responsible!r}",
            f"responsible 须为 {record_type} 的字段；实际为 {responsible!r}",
        )

    ctx = CompileContext(
        model=model,
        params=dict(params),
        problems=problems,
        file=doc.name,
        rule_id=policy,
        scopes=[(RECORD, str(record_type))],
    )
    when: Node | None = compile_condition(spec["when"], ctx, spec, "when", "when") if "when" in spec else None

    def violation_of(node: Any, parent: Any, key: str, path: str, kind: str) -> Node:
        cond = compile_condition(node, ctx, parent, key, path)
        bad = Not(cond) if kind == "require" else cond
        return simplify(And((when, bad)) if when is not None else bad)

    levels: list[CompiledLevel] = []
    if "levels" in spec:
        lv = spec["levels"]
        if not isinstance(lv, list) or not lv:
            err(
                "levels",
                "levels must be a non-empty list of {severity, violation|require}",
                "levels 须为非空列表",
            )
        else:
            for i, level in enumerate(lv):
                kinds = [k for k in ("require", "violation") if isinstance(level, dict) and k in level]
                if (
                    not isinstance(level, dict)
                    or level.get("severity") not in SEVERITY_RANK
                    or len(kinds) != 1
                    or set(level) - {"severity", "require", "violation"}
                ):
                    problems.add(
                        doc.name,
                        f"levels[{i}] needs severity ({'/'.join(SEVERITY_RANK)}) and one of require/violation",
                        f"levels[{i}] 需要 severity 与 require/violation 之一",
                        line=line_of(lv, i),
                        key=f"levels[{i}]",
                        policy=policy,
                    )
                    continue
                levels.append(
                    CompiledLevel(
                        level["severity"],
                        violation_of(level[kinds[0]], level, kinds[0], f"levels[{i}].{kinds[0]}", kinds[0]),
                    )
                )
            levels.sort(key=lambda lvl: SEVERITY_RANK[lvl.severity])
    elif forms:
        levels.append(
            CompiledLevel(str(severity), violation_of(spec[forms[0]], spec, forms[0], forms[0], forms[0]))
        )

    aggregate_names = {
        d.name.removeprefix("agg_").removesuffix("__") for d in ctx.derivations if isinstance(d, Aggregate)
    }
    for t in (message.zh, message.en) if message else ():
        for name in _placeholders(t):
            if name.startswith("param."):
                if name[6:] not in params:
                    err(
                        "message",
                        f"message placeholder {{{name}}}: no such parameter",
                        f"消息占位符 {{{name}}}：参数不存在",
                    )
            elif name not in rt.fields and name not in aggregate_names and name != "as_of":
                err(
                    "message",
                    f"message placeholder {{{name}}} is not a field of {record_type}, a parameter or an aggregate",
                    f"消息占位符 {{{name}}} 不是 {record_type} 的字段、参数或汇总值",
                )

    compiled = CompiledRule(str(rid), str(record_type), tuple(levels), tuple(ctx.derivations))
    if stream_check is not None and len(problems) == start:
        reason = stream_check(compiled)
        if reason:
            err(
                forms[0] if forms else None,
                f"condition cannot run on the streaming engine: {reason}",
                f"条件无法在流式引擎上运行：{reason}",
            )
    examples = _examples(doc, spec, err)
    if len(problems) > start:
        return None
    assert title is not None
    assert message is not None
    top = max((lvl.severity for lvl in levels), key=SEVERITY_RANK.__getitem__) if levels else "minor"
    return Rule(
        id=str(rid),
        title=title,
        clauses=tuple(clauses or ()),
        record_type=str(record_type),
        severity=top,
        responsible=str(responsible),
        rectify_days=rectify_days,
        message=message,
        compiled=compiled,
        examples=examples,
        file=doc.name,
        line=line,
        description=description,
        source=plain(spec),
    )


def _examples(
    doc: YamlDoc, spec: dict[str, Any], err: Callable[[str | None, str, str], None]
) -> tuple[Example, ...]:
    ex = spec.get("examples")
    if ex is None:
        err(
            None,
            "examples are required: at least one record that must pass and one that must fail",
            "必须提供示例：至少一条合规记录与一条违规记录",
        )
        return ()
    if not isinstance(ex, dict) or set(ex) - {"pass", "fail"} or not ex.get("pass") or not ex.get("fail"):
        err(
            "examples",
            "examples needs non-empty `pass` and `fail` lists",
            "examples 需要非空的 pass 与 fail 列表",
        )
        return ()
    out: list[Example] = []
    for expect in ("pass", "fail"):
        items = ex[expect]
        if not isinstance(items, list):
            err("examples", f"examples.{expect} must be a list", f"examples.{expect} 须为列表")
            continue
        for i, item in enumerate(items):
            if (
                not isinstance(item, dict)
                or not isinstance(item.get("record"), dict)
                or set(item) - {"record", "related", "as_of", "severity", "note"}
            ):
                err(
                    "examples",
                    f"examples.{expect}[{i}] needs `record` (optional related, as_of, severity, note)",
                    f"examples.{expect}[{i}] 需要 record（可选 related、as_of、severity、note）",
                )
                continue
            related = plain(item.get("related") or {})
            if not isinstance(related, dict) or not all(isinstance(v, list) for v in related.values()):
                err(
                    "examples",
                    f"examples.{expect}[{i}].related must map record types to lists of records",
                    f"examples.{expect}[{i}].related 须将记录类型映射到记录列表",
                )
                continue
            out.append(
                Example(
                    expect,
                    plain(item["record"]),
                    related,
                    item.get("as_of"),
                    item.get("severity"),
                    line_of(items, i),
                )
            )
    return tuple(out)
