"""The policy library as API reads (no database: the library is loaded once per process)."""

from __future__ import annotations

import string
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from rules.lang.rule import Rule
from rules.library import Clause, Library
from service.policies.schemas import (
    ClauseRead,
    CompanyRead,
    ManualRead,
    ParameterRead,
    ParamValue,
    PoliciesRead,
    RuleRead,
)
from service.violations.schemas import Severity, TextRead


def _value(value: Any) -> ParamValue:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _text(pair: Any) -> TextRead:
    if isinstance(pair, dict):
        return TextRead(zh=str(pair.get("zh", "")), en=str(pair.get("en", "")))
    return TextRead(**pair.as_dict())


def policies(library: Library) -> PoliciesRead:
    applied = set(library.company.manuals)
    return PoliciesRead(
        version=library.version,
        company=CompanyRead(
            name=_text(library.company.name),
            timezone=library.company.timezone,
            manuals=list(library.company.manuals),
        ),
        manuals=[
            ManualRead(
                id=m.id,
                title=_text(m.title),
                source=m.source,
                applies=m.id in applied,
                truncated=m.truncated,
                clauses=len(m.principles) + len(m.clauses),
                checkable_clauses=sum(1 for c in (*m.principles, *m.clauses) if c.checkable),
            )
            for m in library.manuals.values()
        ],
        parameters=[
            ParameterRead(
                id=p.id,
                type=p.type,
                value=_value(p.value),
                default=_value(p.default),
                overridden=p.id in library.overrides,
                unit=_text(p.unit) if p.unit else None,
                label=_text(p.label),
                clauses=list(p.clauses),
            )
            for p in library.parameters.values()
        ],
        rules_in_force=len(library.rules),
    )


def clauses(
    library: Library, *, manual: str | None = None, checkable: bool | None = None
) -> list[ClauseRead]:
    citing: dict[str, list[str]] = {}
    for rule in library.all_rules:
        for clause_id in rule.clauses:
            citing.setdefault(clause_id, []).append(rule.id)
    return [
        _clause(c, citing.get(c.id, []))
        for c in library.clauses.values()
        if (manual is None or c.manual == manual) and (checkable is None or c.checkable == checkable)
    ]


def _clause(c: Clause, rules: list[str]) -> ClauseRead:
    return ClauseRead(
        id=c.id,
        manual=c.manual,
        section=_text(c.section),
        title=_text(c.title),
        text=_text(c.text),
        category=c.category,
        owner=_text(c.owner),
        checkable=c.checkable,
        why_not_checkable=_text(c.why_not_checkable) if c.why_not_checkable else None,
        rules=sorted(rules),
    )


def _params_in(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "param" and isinstance(value, str):
                yield value
            else:
                yield from _params_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from _params_in(item)


def parameters_of(rule: Rule) -> list[str]:
    """The parameters a rule uses: in its condition, time limits and message placeholders."""
    source = {k: v for k, v in rule.source.items() if k not in ("examples", "message")}
    found = set(_params_in(source))
    for template in (rule.message.zh, rule.message.en):
        found.update(
            name.removeprefix("param.")
            for _, name, _, _ in string.Formatter().parse(template)
            if name and name.startswith("param.")
        )
    return sorted(found)


def rules(library: Library, *, record_type: str | None = None) -> list[RuleRead]:
    in_force = {r.id for r in library.rules}
    return [
        RuleRead(
            id=r.id,
            title=_text(r.title),
            description=_text(r.description) if r.description else None,
            clauses=list(r.clauses),
            record_type=r.record_type,
            severity=Severity(r.severity),
            responsible=r.responsible,
            rectify_days=r.rectify_days,
            parameters=parameters_of(r),
            in_force=r.id in in_force,
        )
        for r in library.all_rules
        if record_type is None or r.record_type == record_type
    ]
