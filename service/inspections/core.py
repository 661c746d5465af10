"""The judging part of an inspection or a self-check, without the database: typed frames in,
findings of a scope (a period and departments) out.

    scope = judge_scope(library, config, typed, period=..., depts=..., as_of=...)

Every record is judged (the rules join across departments and periods: an approval, a supplier),
then only the records in scope are kept: of the departments asked for (records without a
department only when every department is) and placed in the period by the record type's period
field (`policies/inspections.yaml`; types without one are standing records, in every period).
Data quality (great-expectations) runs first; a verdict whose rule reads a field that failed it
becomes a data-quality finding ("unverifiable"), not a violation (`checks.split_verdicts`).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from checks import Suites, UnverifiableVerdict, run_checks, split_verdicts, suites_for_library
from rules.engine.encode import timestamp_ms
from rules.findings import Finding, describe
from rules.library import Library
from rules.records import FieldType, RecordType
from service.evaluation.service import encode_all, evaluate_encoded
from service.inspections.config import InspectionConfig
from service.inspections.periods import Period

NO_DEPT = None

_SUITES: dict[tuple[str, str], Suites] = {}
_SUITES_LOCK = threading.Lock()


def suites_of(library: Library) -> Suites:
    """The data-quality suites of `library`, parsed once per library version."""
    key = (str(library.root), library.version)
    with _SUITES_LOCK:
        suites = _SUITES.get(key)
        if suites is None:
            suites = _SUITES[key] = suites_for_library(library)
    return suites


@dataclass(frozen=True)
class QualityFinding:
    """A data-quality finding of a record in scope: an expectation it fails (`kind`
    expectation, `code` the expectation id) or a rule that cannot judge it (`kind` unverifiable,
    `code` the rule id)."""

    kind: str
    code: str
    record_type: str
    record_id: str
    dept: str | None
    severity: str
    fields: tuple[str, ...]
    clauses: tuple[str, ...]
    message_zh: str
    message_en: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.kind, self.code, self.record_type, self.record_id)


@dataclass
class ScopeResult:
    """What judging a scope found. `scope_ids` are the ids of the records in scope per type;
    `findings` the violations among them (described), `unverifiable` the (rule, record) pairs the
    rules could not judge (left as they are), `quality` the data-quality findings."""

    period: Period
    depts: frozenset[str] | None
    as_of: datetime
    scope_ids: dict[str, list[str]]
    records_by_dept: Counter[str | None]
    findings: list[Finding]
    unverifiable: list[UnverifiableVerdict]
    quality: list[QualityFinding]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def records_checked(self) -> int:
        return sum(self.records_by_dept.values())

    def judged_rules(self, library: Library) -> dict[str, list[str]]:
        """Record type -> ids of the rules in force judging it."""
        out: dict[str, list[str]] = {}
        for rule in library.rules:
            out.setdefault(rule.record_type, []).append(rule.id)
        return out


def scope_mask(
    rt: RecordType,
    frame: pd.DataFrame,
    *,
    period: Period,
    depts: Collection[str] | None,
    config: InspectionConfig,
    tz: Any,
) -> np.ndarray:
    """Which rows of `frame` (a typed frame of `rt`) are in scope."""
    n = len(frame)
    mask = np.ones(n, dtype=bool)
    if depts is not None:
        if not rt.has_dept:
            return np.zeros(n, dtype=bool)
        mask &= frame["dept"].isin(sorted(depts)).fillna(False).to_numpy(dtype=bool)
    name = config.period_fields.get(rt.name)
    if name is None or name not in frame.columns:
        return mask
    column = frame[name]
    if rt.fields[name].type is FieldType.INT:
        mask &= (column == period.year).fillna(False).to_numpy(dtype=bool)
    else:
        start, end = pd.Timestamp(period.start(tz)), pd.Timestamp(period.end(tz))
        mask &= ((column >= start) & (column < end)).fillna(False).to_numpy(dtype=bool)
    return mask


def judge_scope(
    library: Library,
    config: InspectionConfig,
    typed: Mapping[str, pd.DataFrame],
    *,
    period: Period,
    depts: Collection[str] | None,
    as_of: datetime,
    suites: Suites | None = None,
) -> ScopeResult:
    """Run the data-quality checks and every rule in force over `typed` (every current record,
    by type) as of `as_of`, and keep what concerns the records in scope."""
    tz = library.company.tz
    timings: dict[str, float] = {}
    started = time.perf_counter()
    frames = {t: f for t, f in typed.items() if t in library.model}
    masks: dict[str, np.ndarray] = {}
    scope_ids: dict[str, list[str]] = {}
    records_by_dept: Counter[str | None] = Counter()
    for name, frame in frames.items():
        rt = library.model[name]
        mask = scope_mask(rt, frame, period=period, depts=depts, config=config, tz=tz)
        masks[name] = mask
        if not mask.any():
            continue
        ids = frame["id"].to_numpy(dtype=object)[mask]
        scope_ids[name] = [str(i) for i in ids if not pd.isna(i)]
        if rt.has_dept:
            dept_values = frame["dept"].to_numpy(dtype=object)[mask]
            records_by_dept.update(None if pd.isna(d) else str(d) for d in dept_values)
        else:
            records_by_dept[NO_DEPT] += int(mask.sum())
    timings["scope_seconds"] = time.perf_counter() - started

    as_of_ts = pd.Timestamp(as_of)
    started = time.perf_counter()
    run = run_checks(suites or suites_of(library), frames, as_of=as_of_ts, tz=tz)
    timings["checks_seconds"] = time.perf_counter() - started

    started = time.perf_counter()
    encoded = encode_all(library, frames)
    as_of_ms = timestamp_ms(as_of_ts)
    verdicts = evaluate_encoded(library, encoded, as_of_ms=as_of_ms, engine="batch")
    timings["rules_seconds"] = time.perf_counter() - started

    started = time.perf_counter()
    in_scope = {t: set(ids) for t, ids in scope_ids.items()}
    kept = sorted(v for v in verdicts if v.record_id in in_scope.get(v.record_type, ()))
    violations, unverifiable = split_verdicts(kept, library.rules, run.unverifiable)
    findings = describe(
        violations,
        library.rules,
        frames,
        encoded,
        library.model.types,
        library.parameters,
        as_of_ms=as_of_ms,
        tz=tz,
    )
    quality = _quality(library, frames, masks, run, unverifiable)
    timings["describe_seconds"] = time.perf_counter() - started
    return ScopeResult(
        period=period,
        depts=None if depts is None else frozenset(depts),
        as_of=as_of,
        scope_ids=scope_ids,
        records_by_dept=records_by_dept,
        findings=findings,
        unverifiable=unverifiable,
        quality=quality,
        timings=timings,
    )


def _dept_at(library: Library, frames: Mapping[str, pd.DataFrame], record_type: str, row: int) -> str | None:
    if not library.model[record_type].has_dept:
        return None
    value: Any = frames[record_type]["dept"].iat[row]
    return None if value is None or pd.isna(value) else str(value)


def _quality(
    library: Library,
    frames: Mapping[str, pd.DataFrame],
    masks: Mapping[str, np.ndarray],
    run: Any,
    unverifiable: list[UnverifiableVerdict],
) -> list[QualityFinding]:
    out: dict[tuple[str, str, str, str], QualityFinding] = {}
    for f in run.findings():
        mask = masks.get(f.record_type)
        if mask is None or not mask[f.row]:
            continue
        record_id = f.record_id if f.record_id is not None else f"#row{f.row + 1}"
        q = QualityFinding(
            kind="expectation",
            code=f.expectation,
            record_type=f.record_type,
            record_id=record_id,
            dept=_dept_at(library, frames, f.record_type, f.row),
            severity=f.severity,
            fields=tuple(f.fields),
            clauses=tuple(f.clauses),
            message_zh=f.message.zh,
            message_en=f.message.en,
        )
        out.setdefault(q.key, q)
    if unverifiable:
        rules = {r.id: r for r in library.rules}
        positions: dict[str, dict[str, int]] = {}
        for u in unverifiable:
            if u.record_type not in positions:
                ids = frames[u.record_type]["id"].to_numpy(dtype=object)
                positions[u.record_type] = {str(i): n for n, i in enumerate(ids) if not pd.isna(i)}
            row = positions[u.record_type].get(u.record_id)
            rule = rules[u.rule]
            fields = ", ".join(u.fields)
            q = QualityFinding(
                kind="unverifiable",
                code=u.rule,
                record_type=u.record_type,
                record_id=u.record_id,
                dept=None if row is None else _dept_at(library, frames, u.record_type, row),
                severity=u.verdict.severity,
                fields=u.fields,
                clauses=rule.clauses,
                message_zh=f"规则 {u.rule} 无法判定 {u.record_type} {u.record_id}：其读取的字段 {fields} 未通过数据质量检查",
                message_en=f"Rule {u.rule} cannot judge {u.record_type} {u.record_id}: the field(s) it reads ({fields}) failed data quality",
            )
            out.setdefault(q.key, q)
    return list(out.values())


def score(
    config: InspectionConfig,
    *,
    records_checked: int,
    severities: Mapping[str, int],
    quality_severities: Mapping[str, int],
) -> float | None:
    """100 × (1 − (Σ weight(finding) + data_quality_weight × Σ weight(data-quality finding)) /
    records checked), at least 0, one decimal; None when no record was checked."""
    if records_checked <= 0:
        return None
    weighted = sum(config.weight(s) * n for s, n in severities.items())
    weighted += config.data_quality_weight * sum(config.weight(s) * n for s, n in quality_severities.items())
    return round(max(0.0, 100.0 * (1.0 - weighted / records_checked)), 1)
