"""Turn verdicts into findings people read: who is responsible, which clauses, and a message in
zh-CN and en that shows the failing values."""

from __future__ import annotations

import string
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from rules.engine.batch import record_frame
from rules.engine.derive import derive_columns
from rules.engine.verdict import Verdict
from rules.lang.context import Parameter
from rules.lang.ir import AS_OF, RECORD, Aggregate
from rules.lang.rule import Rule
from rules.records import DECIMAL_SCALE, FieldType, RecordType

MISSING_TEXT = {"zh": "无", "en": "none"}


@dataclass(frozen=True)
class Finding:
    rule: str
    record_type: str
    record_id: str
    dept: str | None
    severity: str
    clauses: list[str]
    responsible: str | None
    message_zh: str
    message_en: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def format_value(value: Any, ftype: FieldType | None, tz: ZoneInfo, lang: str) -> str:
    """A typed value as people read it: amounts with 2 decimals, times in the company's zone."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return MISSING_TEXT["zh" if lang == "zh" else "en"]
    if ftype == FieldType.DECIMAL:
        return f"{Decimal(int(value)) / DECIMAL_SCALE:,.2f}"
    if ftype == FieldType.TIMESTAMP:
        return pd.Timestamp(value).tz_convert(tz).strftime("%Y-%m-%d %H:%M")
    if ftype == FieldType.DATE:
        return pd.Timestamp(value).tz_convert(tz).strftime("%Y-%m-%d")
    if ftype == FieldType.BOOL:
        return ("是" if value else "否") if lang == "zh" else ("yes" if value else "no")
    return str(value)


def format_param(p: Parameter) -> str:
    if p.type == "decimal":
        return f"{Decimal(str(p.value)):,.2f}"
    return str(p.value)


class _Values(string.Formatter):
    def __init__(self, values: Mapping[str, str]) -> None:
        super().__init__()
        self.values = values

    def get_value(self, key: int | str, args: Any, kwargs: Any) -> Any:
        return self.values.get(str(key), "?")

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> tuple[Any, str]:
        return self.values.get(field_name, "?"), field_name


def describe(
    verdicts: Iterable[Verdict],
    rules: Iterable[Rule],
    typed: Mapping[str, pd.DataFrame],
    encoded: Mapping[str, pd.DataFrame],
    types: Mapping[str, RecordType],
    params: Mapping[str, Parameter],
    *,
    as_of_ms: int,
    tz: ZoneInfo,
) -> list[Finding]:
    """Findings for `verdicts`, in the order given. Only flagged records are formatted."""
    by_rule: dict[str, list[Verdict]] = defaultdict(list)
    ordered = list(verdicts)
    for v in ordered:
        by_rule[v.rule].append(v)
    rule_of = {r.id: r for r in rules}
    param_text = {f"param.{k}": format_param(p) for k, p in params.items()}
    as_of_text = pd.Timestamp(as_of_ms, unit="ms", tz="UTC").tz_convert(tz).strftime("%Y-%m-%d %H:%M")
    made: dict[tuple[str, str], Finding] = {}
    for rule_id, items in by_rule.items():
        rule = rule_of[rule_id]
        rt = types[rule.record_type]
        frame = typed[rule.record_type]
        ids = {v.record_id for v in items}
        rows = frame[frame["id"].astype(str).isin(ids)]
        derived: dict[str, dict[str, float]] = {}
        aggregates = [d for d in rule.compiled.derivations if isinstance(d, Aggregate)]
        if aggregates:
            enc = encoded[rule.record_type]
            enc_rows = enc[enc["id"].astype(str).isin(ids)]
            full = derive_columns(
                record_frame(enc_rows), aggregates, as_of_ms=as_of_ms, tz=tz, related=encoded
            )
            for agg in aggregates:
                name = agg.name.removeprefix("agg_").removesuffix("__")
                derived[name] = dict(
                    zip(full[f"{RECORD}.id"].astype(str), full[f"{RECORD}.{agg.name}"], strict=True)
                )
        records = {str(r["id"]): r for r in rows.to_dict("records")}
        for v in items:
            record = records[v.record_id]
            texts: dict[str, str] = {}
            for lang in ("zh", "en"):
                values = {
                    name: format_value(record.get(name), spec.type, tz, lang)
                    for name, spec in rt.fields.items()
                }
                values.update(param_text)
                values[AS_OF] = values["as_of"] = as_of_text
                for name, per_id in derived.items():
                    values[name] = f"{Decimal(int(per_id[v.record_id])) / DECIMAL_SCALE:,.2f}"
                template = rule.message.zh if lang == "zh" else rule.message.en
                texts[lang] = _Values(values).format(template)
            dept = record.get("dept") if "dept" in rt.fields else None
            responsible = record.get(rule.responsible)
            made[v.key] = Finding(
                rule=v.rule,
                record_type=v.record_type,
                record_id=v.record_id,
                dept=None if dept is None or pd.isna(dept) else str(dept),
                severity=v.severity,
                clauses=list(rule.clauses),
                responsible=None if responsible is None or pd.isna(responsible) else str(responsible),
                message_zh=texts["zh"],
                message_en=texts["en"],
            )
    return [made[v.key] for v in ordered]
