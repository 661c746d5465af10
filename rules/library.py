"""The policy library: manuals, clauses, parameters, penalties, the company's choices, the
record model and the rules — loaded and validated together through one loader that reports
every problem (file, line, key, policy) before anything runs."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rules.lang.context import PARAM_TYPES, PERIODS, Parameter
from rules.lang.rule import Rule, StreamCheck, load_rule_files
from rules.problems import Problems
from rules.records import RecordModel, Text, load_record_model
from rules.yamlsource import YamlDoc, line_of, load_yaml, plain

CATEGORIES = ("business", "management", "support", "approval")
PENALTY_KINDS = ("warning", "fine", "performance_points", "demotion")
SEVERITIES = ("minor", "major", "critical")


@dataclass(frozen=True)
class Clause:
    id: str
    manual: str
    section: Text
    title: Text
    text: Text
    category: str
    owner: Text
    checkable: bool
    why_not_checkable: Text | None


@dataclass(frozen=True)
class Manual:
    id: str
    source: str
    title: Text
    truncated: bool
    principles: tuple[Clause, ...]
    clauses: tuple[Clause, ...]
    penalty_clauses: tuple[tuple[str, tuple[str, ...]], ...]  # (clause id, kinds it names)


@dataclass(frozen=True)
class PenaltyStep:
    kind: str
    amount: Decimal | None = None  # fine, CNY
    points: int | None = None  # performance points


@dataclass(frozen=True)
class PenaltyLadder:
    repeat_window_days: int
    steps: dict[str, tuple[PenaltyStep, ...]]  # severity -> the n-th occurrence's step

    def step_for(self, severity: str, occurrence: int) -> PenaltyStep:
        """The penalty for the `occurrence`-th (1-based) finding within the window; the last
        step repeats for any further occurrence."""
        steps = self.steps[severity]
        return steps[min(occurrence, len(steps)) - 1]


@dataclass(frozen=True)
class Company:
    name: Text
    timezone: str
    manuals: tuple[str, ...]

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class Library:
    root: Path
    model: RecordModel
    manuals: dict[str, Manual]
    clauses: dict[str, Clause]
    parameters: dict[str, Parameter]
    penalties: PenaltyLadder
    company: Company
    all_rules: tuple[Rule, ...]
    version: str  # digest of every policy file and the effective parameter values
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def rules(self) -> tuple[Rule, ...]:
        """Rules in force: those citing at least one clause of a manual the company applies."""
        applied = set(self.company.manuals)
        return tuple(r for r in self.all_rules if any(self.clauses[c].manual in applied for c in r.clauses))

    def rule(self, rule_id: str) -> Rule:
        for r in self.all_rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)


def load_library(
    root: Path,
    *,
    company_file: Path | None = None,
    params_file: Path | None = None,
    stream_check: StreamCheck | None = None,
    timezone: str = "Asia/Shanghai",
) -> Library:
    """Load and validate everything under `root` (the `policies/` folder). Raises InputError
    listing every problem found in any file. `timezone` is the company's (from the settings)."""
    problems = Problems()
    model = load_record_model(root / "record_types.yaml", problems)
    manuals = _load_manuals(root / "manuals", problems)
    clauses = {c.id: c for m in manuals.values() for c in (*m.principles, *m.clauses)}
    params = _load_parameters(root / "parameters.yaml", clauses, problems)
    company_path = company_file or root / "company.yaml"
    company, overrides = _load_company(company_path, manuals, params, problems, timezone)
    if params_file is not None:
        doc = load_yaml(params_file, problems)
        if doc is not None:
            if isinstance(doc.data, dict) and isinstance(doc.data.get("overrides", doc.data), dict):
                overrides.update(_apply_overrides(doc, doc.data.get("overrides", doc.data), params, problems))
            else:
                problems.add(
                    doc.name,
                    "a parameters file is a mapping of parameter id to value",
                    "参数文件须为“参数编号: 值”的映射",
                    line=1,
                )
    params = {
        k: (
            Parameter(p.id, p.type, overrides[k], p.default, p.unit, p.label, p.clauses)
            if k in overrides
            else p
        )
        for k, p in params.items()
    }
    penalties = _load_penalties(root / "penalties.yaml", problems)
    rule_files = sorted((root / "rules").glob("*.yaml"))
    rules = load_rule_files(
        rule_files,
        model=model,
        params=params,
        clause_ids=set(clauses),
        problems=problems,
        stream_check=stream_check,
    )
    problems.raise_if_any("the policy library has problems / 制度库存在问题")

    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.yaml")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    digest.update(company_path.read_bytes())
    digest.update(json.dumps({k: str(p.value) for k, p in sorted(params.items())}).encode())
    return Library(
        root=root,
        model=model,
        manuals=manuals,
        clauses=clauses,
        parameters=params,
        penalties=penalties,
        company=company,
        all_rules=tuple(rules),
        version=digest.hexdigest()[:16],
        overrides=overrides,
    )


# --- manuals -------------------------------------------------------------------------------------


def _text(
    doc: YamlDoc, node: Any, key: str, problems: Problems, where: str, policy: str | None = None
) -> Text:
    value = node.get(key) if isinstance(node, dict) else None
    if (
        isinstance(value, dict)
        and isinstance(value.get("zh"), str)
        and isinstance(value.get("en"), str)
        and value["zh"].strip()
        and value["en"].strip()
    ):
        return Text(value["zh"].strip(), value["en"].strip())
    problems.add(
        doc.name,
        f"{where}.{key} must be {{zh: ..., en: ...}} with both texts",
        f"{where}.{key} 须同时提供中英文",
        line=line_of(node, key if isinstance(node, dict) and key in node else None),
        key=f"{where}.{key}",
        policy=policy,
    )
    return Text("?", "?")


def _load_manuals(folder: Path, problems: Problems) -> dict[str, Manual]:
    manuals: dict[str, Manual] = {}
    seen: dict[str, str] = {}
    for path in sorted(folder.glob("*.yaml")):
        doc = load_yaml(path, problems)
        if doc is None:
            continue
        data = doc.data
        if not isinstance(data, dict) or not isinstance(data.get("manual"), dict):
            problems.add(
                doc.name, "a manual file needs a `manual` mapping", "制度文件需要 manual 映射", line=1
            )
            continue
        head = data["manual"]
        mid = str(head.get("id", ""))
        if mid != path.stem:
            problems.add(
                doc.name,
                f"manual.id {mid!r} must match the file name {path.stem!r}",
                f"manual.id {mid!r} 须与文件名 {path.stem!r} 一致",
                line=line_of(head, "id"),
                key="manual.id",
            )
        title = _text(doc, head, "title", problems, "manual")
        lists: dict[str, list[Clause]] = {"principles": [], "clauses": []}
        for section in ("principles", "clauses"):
            items = data.get(section) or []
            if not isinstance(items, list):
                problems.add(
                    doc.name,
                    f"{section} must be a list",
                    f"{section} 须为列表",
                    line=line_of(data, section),
                    key=section,
                )
                continue
            for i, item in enumerate(items):
                clause = _load_clause(doc, mid, section, i, item, items, problems)
                if clause is None:
                    continue
                if clause.id in seen:
                    problems.add(
                        doc.name,
                        f"clause id {clause.id} already used in {seen[clause.id]}",
                        f"条款编号 {clause.id} 已在 {seen[clause.id]} 使用",
                        line=line_of(items, i),
                        policy=clause.id,
                    )
                    continue
                seen[clause.id] = doc.name
                lists[section].append(clause)
        penalty_clauses: list[tuple[str, tuple[str, ...]]] = []
        for i, p in enumerate(data.get("penalties") or []):
            kinds = p.get("kinds") if isinstance(p, dict) else None
            if (
                not isinstance(p, dict)
                or p.get("clause") not in seen
                or not isinstance(kinds, list)
                or set(kinds) - set(PENALTY_KINDS)
            ):
                problems.add(
                    doc.name,
                    f"penalties[{i}] needs an existing clause and kinds from {list(PENALTY_KINDS)}",
                    f"penalties[{i}] 需要已存在的条款及 {list(PENALTY_KINDS)} 中的处罚种类",
                    line=line_of(data["penalties"], i),
                    key=f"penalties[{i}]",
                )
                continue
            penalty_clauses.append((str(p["clause"]), tuple(kinds)))
        manuals[mid] = Manual(
            mid,
            str(head.get("source", "")),
            title,
            bool(head.get("truncated", False)),
            tuple(lists["principles"]),
            tuple(lists["clauses"]),
            tuple(penalty_clauses),
        )
    if not manuals:
        problems.add(
            str(folder), "no manual files (manuals/mNNN.yaml) found", "未找到制度文件（manuals/mNNN.yaml）"
        )
    return manuals


def _load_clause(
    doc: YamlDoc, mid: str, section: str, i: int, item: Any, items: list[Any], problems: Problems
) -> Clause | None:
    where = f"{section}[{i}]"
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        problems.add(doc.name, f"{where} needs an id", f"{where} 需要 id", line=line_of(items, i), key=where)
        return None
    cid = item["id"]
    if not cid.startswith(mid + "."):
        problems.add(
            doc.name,
            f"clause id {cid} must start with {mid}.",
            f"条款编号 {cid} 须以 {mid}. 开头",
            line=line_of(item, "id"),
            policy=cid,
        )
    title = _text(doc, item, "title", problems, where, cid)
    text = _text(doc, item, "text", problems, where, cid)
    if section == "principles":
        return Clause(
            cid,
            mid,
            Text("基本原则", "Principles"),
            title,
            text,
            "management",
            Text("全体", "All"),
            False,
            Text("原则性要求", "A principle"),
        )
    section_text = _text(doc, item, "section", problems, where, cid)
    owner = _text(doc, item, "owner", problems, where, cid)
    category = item.get("category")
    if category not in CATEGORIES:
        problems.add(
            doc.name,
            f"category must be one of {list(CATEGORIES)}",
            f"category 须为 {list(CATEGORIES)} 之一",
            line=line_of(item, "category"),
            policy=cid,
            key="category",
        )
    checkable = item.get("checkable")
    if not isinstance(checkable, bool):
        problems.add(
            doc.name,
            "checkable must be true or false",
            "checkable 须为 true 或 false",
            line=line_of(item, "id"),
            policy=cid,
            key="checkable",
        )
    why = None
    if checkable is False:
        why = _text(doc, item, "why_not_checkable", problems, where, cid)
    return Clause(cid, mid, section_text, title, text, str(category), owner, bool(checkable), why)


# --- parameters, company, penalties ---------------------------------------------------------------


def coerce_param(ptype: str, value: Any) -> Any:
    """A parameter value of `ptype`, or ValueError saying why not."""
    if ptype in ("int", "days"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError("expected a non-negative integer")
        return value
    if ptype == "decimal":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError("expected an amount")
        try:
            d = Decimal(str(value))
        except InvalidOperation as exc:
            raise ValueError("expected an amount") from exc
        if d < 0 or d != d.quantize(Decimal("0.01")):
            raise ValueError("expected a non-negative amount with at most 2 decimals")
        return d
    if ptype == "ratio":
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError("expected a non-negative number")
        return float(value)
    if ptype == "bool":
        if not isinstance(value, bool):
            raise ValueError("expected true or false")
        return value
    if ptype == "period":
        if value not in PERIODS:
            raise ValueError(f"expected one of {list(PERIODS)}")
        return value
    if not isinstance(value, str):
        raise ValueError("expected text")
    return value


def _load_parameters(path: Path, clauses: dict[str, Clause], problems: Problems) -> dict[str, Parameter]:
    doc = load_yaml(path, problems)
    if doc is None:
        return {}
    data = doc.data.get("parameters") if isinstance(doc.data, dict) else None
    if not isinstance(data, dict):
        problems.add(
            doc.name, "top level must be a mapping with `parameters`", "顶层须为含 parameters 的映射", line=1
        )
        return {}
    out: dict[str, Parameter] = {}
    for pid, spec in data.items():
        where = f"parameters.{pid}"
        if not isinstance(spec, dict) or spec.get("type") not in PARAM_TYPES:
            problems.add(
                doc.name,
                f"{where}.type must be one of {list(PARAM_TYPES)}",
                f"{where}.type 须为 {list(PARAM_TYPES)} 之一",
                line=line_of(data, pid),
                key=where,
                policy=str(pid),
            )
            continue
        try:
            default = coerce_param(spec["type"], spec.get("default"))
        except ValueError as exc:
            problems.add(
                doc.name,
                f"{where}.default: {exc}",
                f"{where}.default：取值无效（{exc}）",
                line=line_of(spec, "default"),
                key=where,
                policy=str(pid),
            )
            continue
        label = _text(doc, spec, "label", problems, where, str(pid))
        cited = spec.get("clauses") or []
        for c in cited:
            if c not in clauses:
                problems.add(
                    doc.name,
                    f"{where}: clause {c} does not exist",
                    f"{where}：条款 {c} 不存在",
                    line=line_of(spec, "clauses"),
                    key=where,
                    policy=str(pid),
                )
        unit = plain(spec.get("unit") or {"zh": "", "en": ""})
        out[str(pid)] = Parameter(
            str(pid), spec["type"], default, default, unit, label.as_dict(), tuple(cited)
        )
    return out


def _apply_overrides(
    doc: YamlDoc, node: Any, params: dict[str, Parameter], problems: Problems
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pid, value in node.items():
        if pid not in params:
            problems.add(
                doc.name,
                f"override of unknown parameter {pid!r}",
                f"覆盖了不存在的参数 {pid!r}",
                line=line_of(node, pid),
                key=str(pid),
                policy=str(pid),
            )
            continue
        try:
            out[str(pid)] = coerce_param(params[pid].type, value)
        except ValueError as exc:
            problems.add(
                doc.name,
                f"override {pid}={value!r}: {exc} (type {params[pid].type})",
                f"参数覆盖 {pid}={value!r} 无效：类型应为 {params[pid].type}",
                line=line_of(node, pid),
                key=str(pid),
                policy=str(pid),
            )
    return out


def _load_company(
    path: Path, manuals: dict[str, Manual], params: dict[str, Parameter], problems: Problems, tz: str
) -> tuple[Company, dict[str, Any]]:
    fallback = Company(Text("?", "?"), tz, tuple(manuals))
    doc = load_yaml(path, problems)
    if doc is None:
        return fallback, {}
    data = doc.data.get("company") if isinstance(doc.data, dict) else None
    if not isinstance(data, dict):
        problems.add(
            doc.name, "top level must be a mapping with `company`", "顶层须为含 company 的映射", line=1
        )
        return fallback, {}
    name = _text(doc, data, "name", problems, "company")
    if "timezone" in data:
        problems.add(
            doc.name,
            "the time zone is a setting (ZHIDU_TIMEZONE), not part of company.yaml",
            "时区是系统设置（ZHIDU_TIMEZONE），不在 company.yaml 中配置",
            line=line_of(data, "timezone"),
            key="company.timezone",
        )
    selected = data.get("manuals", list(manuals))
    if not isinstance(selected, list) or not selected:
        problems.add(
            doc.name,
            "company.manuals must list the manuals that apply",
            "company.manuals 须列出适用的制度",
            line=line_of(data, "manuals"),
            key="company.manuals",
        )
        selected = list(manuals)
    for m in selected:
        if m not in manuals:
            problems.add(
                doc.name,
                f"company.manuals: unknown manual {m!r}; known: {', '.join(manuals)}",
                f"company.manuals：未知制度 {m!r}",
                line=line_of(data, "manuals"),
                key="company.manuals",
            )
    overrides = data.get("overrides") or {}
    applied = _apply_overrides(doc, overrides, params, problems) if isinstance(overrides, dict) else {}
    return Company(name, tz, tuple(str(m) for m in selected)), applied


def _load_penalties(path: Path, problems: Problems) -> PenaltyLadder:
    doc = load_yaml(path, problems)
    empty = PenaltyLadder(365, {s: (PenaltyStep("warning"),) for s in SEVERITIES})
    if doc is None:
        return empty
    data = doc.data
    if not isinstance(data, dict) or not isinstance(data.get("ladder"), dict):
        problems.add(
            doc.name,
            "penalties.yaml needs `repeat_window_days` and a `ladder`",
            "penalties.yaml 需要 repeat_window_days 与 ladder",
            line=1,
        )
        return empty
    window = data.get("repeat_window_days")
    if isinstance(window, bool) or not isinstance(window, int) or window <= 0:
        problems.add(
            doc.name,
            "repeat_window_days must be a positive integer",
            "repeat_window_days 须为正整数",
            line=line_of(data, "repeat_window_days"),
            key="repeat_window_days",
        )
        window = 365
    steps: dict[str, tuple[PenaltyStep, ...]] = {}
    for severity in SEVERITIES:
        items = data["ladder"].get(severity)
        if not isinstance(items, list) or not items:
            problems.add(
                doc.name,
                f"ladder.{severity} must list at least one step",
                f"ladder.{severity} 至少需要一级",
                line=line_of(data["ladder"], severity if severity in data["ladder"] else None),
                key=f"ladder.{severity}",
            )
            continue
        parsed: list[PenaltyStep] = []
        for i, step in enumerate(items):
            where = f"ladder.{severity}[{i}]"
            kind = step.get("kind") if isinstance(step, dict) else None
            if kind not in PENALTY_KINDS:
                problems.add(
                    doc.name,
                    f"{where}.kind must be one of {list(PENALTY_KINDS)}",
                    f"{where}.kind 须为 {list(PENALTY_KINDS)} 之一",
                    line=line_of(items, i),
                    key=where,
                )
                continue
            amount = step.get("amount")
            points = step.get("points")
            if kind == "fine" and (
                isinstance(amount, bool) or not isinstance(amount, int | float) or amount <= 0
            ):
                problems.add(
                    doc.name,
                    f"{where}: a fine needs a positive amount (CNY)",
                    f"{where}：罚款须有正数金额（元）",
                    line=line_of(items, i),
                    key=where,
                )
                continue
            if kind == "performance_points" and (
                isinstance(points, bool) or not isinstance(points, int) or points <= 0
            ):
                problems.add(
                    doc.name,
                    f"{where}: performance_points needs positive points",
                    f"{where}：绩效扣分须有正整数分值",
                    line=line_of(items, i),
                    key=where,
                )
                continue
            parsed.append(PenaltyStep(kind, Decimal(str(amount)) if amount is not None else None, points))
        steps[severity] = tuple(parsed)
    return PenaltyLadder(window, steps)
