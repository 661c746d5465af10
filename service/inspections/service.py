"""Inspections in the database: loading the current records, bringing violations and data-quality
findings in line with what an inspection found, summaries, and reads. Keyword-only functions on a
session; they flush but never commit (the flows own the transactions)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, cast

import pandas as pd
from sqlalchemy import ColumnElement, Table, bindparam, func, insert, or_, select, true, update
from sqlalchemy.orm import Session

from rules.engine import batch
from rules.engine.encode import timestamp_ms
from rules.findings import Finding
from rules.library import Library
from rules.validate import from_payloads
from service.evaluation.service import encode_all
from service.inspections.config import InspectionConfig
from service.inspections.core import QualityFinding, ScopeResult, score
from service.inspections.models import DataQualityFinding, Inspection, InspectionFinding, InspectionSummary
from service.records.models import Record
from service.records.service import chunk_size
from service.violations import service as violations
from service.violations.models import Violation
from service.violations.schemas import Changes, Status

_T = TypeVar("_T")
_LOAD_BATCH = 5000


def _chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- loading --------------------------------------------------------------------------------------


def load_frames(session: Session, *, library: Library) -> dict[str, pd.DataFrame]:
    """Typed frames of the current version of every record, by type (empty frames for types
    without records), rebuilt from the stored canonical payloads."""
    tz = library.company.tz
    frames: dict[str, pd.DataFrame] = {}
    for name, rt in library.model.types.items():
        rows = session.execute(
            select(Record.payload)
            .where(Record.record_type == name, Record.is_current == true())
            .order_by(Record.record_id)
            .execution_options(yield_per=_LOAD_BATCH)
        )
        payloads = [payload for (payload,) in rows]
        frames[name] = from_payloads(rt, payloads, tz)
    return frames


# --- violations -----------------------------------------------------------------------------------


@dataclass
class Reconciled:
    """What an inspection did to the violations of its scope: per violation (column dicts after
    the change), the change: opened, reopened, still_open, waived or closed."""

    rows: list[tuple[dict[str, Any], str]] = field(default_factory=list)

    def add(self, changes: Changes) -> None:
        self.rows += [(r, "opened") for r in changes.opened]
        self.rows += [(r, "reopened") for r in changes.reopened]
        self.rows += [(r, "closed") for r in changes.closed]
        self.rows += [
            (r, "waived" if r["status"] == Status.WAIVED else "still_open") for r in changes.updated
        ]

    @property
    def open_rows(self) -> list[dict[str, Any]]:
        return [r for r, change in self.rows if change in ("opened", "reopened", "still_open")]

    def count(self, change: str) -> int:
        return sum(1 for _, c in self.rows if c == change)


def _not_closed(session: Session, *, record_type: str) -> list[tuple[str, str]]:
    """(rule, record id) of the violations of `record_type` that are open or waived."""
    return [
        (str(r), str(i))
        for r, i in session.execute(
            select(Violation.rule_id, Violation.record_id).where(
                Violation.record_type == record_type, Violation.status != Status.CLOSED
            )
        )
    ]


def violated_at(
    library: Library, encoded: Mapping[str, pd.DataFrame], *, rule_ids: Collection[str], when: datetime
) -> set[tuple[str, str]]:
    """(rule, record id) pairs the given rules find violated at `when` over the encoded frames."""
    compiled = [r.compiled for r in library.rules if r.id in set(rule_ids)]
    verdicts = batch.evaluate(
        compiled, encoded, as_of_ms=timestamp_ms(pd.Timestamp(when)), tz=library.company.tz
    )
    return {(v.rule, v.record_id) for v in verdicts}


def reconcile_scope(
    session: Session,
    *,
    library: Library,
    result: ScopeResult,
    typed: Mapping[str, pd.DataFrame],
    now: datetime,
    reason: str,
    actor: str,
) -> Reconciled:
    """Bring the violations of the records in scope in line with the inspection, through the
    violations service (`reconcile`: upserts, never a second row; history and audit):

    - a finding opens its violation (reopens a closed one; an open or waived one is updated);
    - an open or waived violation of a rule in force without a finding is closed, except
      (a) when the rule could not judge the record (a field it reads failed data quality): left
      as it is; (b) when the inspection judged as of a time before now and the rule finds the
      record violated now: the violation arose after the inspection's cut-off (evaluation on
      arrival found it), so it is not the inspection's to close.
    """
    out = Reconciled()
    rules_by_type: dict[str, list[str]] = defaultdict(list)
    for library_rule in library.rules:
        rules_by_type[library_rule.record_type].append(library_rule.id)
    findings_by_type: dict[str, list[Finding]] = defaultdict(list)
    for f in result.findings:
        findings_by_type[f.record_type].append(f)
    unverifiable: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for u in result.unverifiable:
        unverifiable[u.record_type][u.record_id].add(u.rule)

    # Candidates for closing, and whether they are violated now (only when judged in the past).
    closing: dict[str, set[tuple[str, str]]] = {}
    for record_type, rule_ids in rules_by_type.items():
        ids = set(result.scope_ids.get(record_type, ()))
        if not ids:
            continue
        found = {(f.rule, f.record_id) for f in findings_by_type[record_type]}
        in_force = set(rule_ids)
        closing[record_type] = {
            (rule_id, rid)
            for rule_id, rid in _not_closed(session, record_type=record_type)
            if rid in ids and rule_id in in_force and (rule_id, rid) not in found
        }
    still_now: set[tuple[str, str]] = set()
    pending = {r for pairs in closing.values() for r, _ in pairs}
    if pending and result.as_of < now:
        encoded = encode_all(library, typed)
        still_now = violated_at(library, encoded, rule_ids=pending, when=now)

    policy_version = library.version
    for record_type, rule_ids in rules_by_type.items():
        scope = result.scope_ids.get(record_type)
        if not scope:
            continue
        excluded: dict[str, set[str]] = defaultdict(set)
        for rid, unjudged in unverifiable[record_type].items():
            excluded[rid] |= unjudged
        for rule_id, rid in closing.get(record_type, ()):
            if (rule_id, rid) in still_now:
                excluded[rid].add(rule_id)
        groups: dict[frozenset[str], list[str]] = defaultdict(list)
        for rid in scope:
            groups[frozenset(excluded.get(rid, ()))].append(rid)
        for skip, rids in groups.items():
            judged = [r for r in rule_ids if r not in skip]
            if not judged:
                continue
            wanted = set(rids)
            out.add(
                violations.reconcile(
                    session,
                    record_type=record_type,
                    record_ids=rids,
                    rule_ids=judged,
                    findings=[
                        f for f in findings_by_type[record_type] if f.record_id in wanted and f.rule in judged
                    ],
                    policy_version=policy_version,
                    now=now,
                    reason=reason,
                    actor=actor,
                )
            )
    return out


def record_findings(session: Session, *, inspection_id: int, reconciled: Reconciled) -> None:
    """One `inspection_findings` row per violation the inspection touched."""
    rows = [
        {"inspection_id": inspection_id, "violation_id": r["id"], "dept": r["dept"], "change": change}
        for r, change in reconciled.rows
    ]
    for chunk in _chunks(rows, 5000):
        session.execute(insert(cast(Table, InspectionFinding.__table__)), list(chunk))


# --- data quality ---------------------------------------------------------------------------------

_DQ_MUTABLE = (
    "dept",
    "severity",
    "fields",
    "clauses",
    "message_zh",
    "message_en",
    "status",
    "last_inspection_id",
    "last_seen_at",
    "resolved_at",
)


@dataclass
class QualityChanges:
    opened: int = 0
    still_open: int = 0
    resolved: int = 0


def reconcile_quality(
    session: Session, *, inspection_id: int, result: ScopeResult, now: datetime
) -> QualityChanges:
    """Upsert the data-quality findings of the records in scope (one row per kind, code and
    record); resolve the open ones of records in scope that were not found again."""
    table = cast(Table, DataQualityFinding.__table__)
    changes = QualityChanges()
    existing: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    size = chunk_size(session)
    for record_type, ids in result.scope_ids.items():
        for chunk in _chunks(sorted(ids), size):
            for found_row in session.execute(
                select(table).where(table.c.record_type == record_type, table.c.record_id.in_(chunk))
            ):
                data = dict(found_row._mapping)
                existing[(data["kind"], data["code"], data["record_type"], data["record_id"])] = data
    new_rows: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    found: set[tuple[str, str, str, str]] = set()
    for q in result.quality:
        found.add(q.key)
        described = {
            "dept": q.dept,
            "severity": q.severity,
            "fields": list(q.fields),
            "clauses": list(q.clauses),
            "message_zh": q.message_zh,
            "message_en": q.message_en,
            "status": "open",
            "last_inspection_id": inspection_id,
            "last_seen_at": now,
            "resolved_at": None,
        }
        row = existing.get(q.key)
        if row is None:
            new_rows.append(
                {
                    "kind": q.kind,
                    "code": q.code,
                    "record_type": q.record_type,
                    "record_id": q.record_id,
                    "first_inspection_id": inspection_id,
                    "first_seen_at": now,
                    **described,
                }
            )
            changes.opened += 1
            continue
        if row["status"] == "open":
            changes.still_open += 1
        else:
            changes.opened += 1
        row.update(described)
        changed.append(row)
    for key, row in existing.items():
        if key in found or row["status"] != "open":
            continue
        row.update(status="resolved", resolved_at=now, last_inspection_id=inspection_id, last_seen_at=now)
        changed.append(row)
        changes.resolved += 1
    for batch_rows in _chunks(new_rows, 5000):
        session.execute(insert(table), list(batch_rows))
    if changed:
        session.execute(
            update(table)
            .where(table.c.id == bindparam("_id"))
            .values({c: bindparam(c) for c in _DQ_MUTABLE}),
            [{"_id": row["id"], **{c: row[c] for c in _DQ_MUTABLE}} for row in changed],
        )
    return changes


# --- summaries ------------------------------------------------------------------------------------


def summarise(
    session: Session,
    *,
    inspection: Inspection,
    config: InspectionConfig,
    result: ScopeResult,
    reconciled: Reconciled,
) -> list[InspectionSummary]:
    """One summary per department in scope: records checked, open findings by severity, waived,
    data-quality findings, opened and closed by this inspection, and the compliance score."""
    depts: set[str] = {d for d in result.records_by_dept if d is not None}
    if result.depts is not None:
        depts |= set(result.depts)
    severities: dict[str, Counter[str]] = defaultdict(Counter)
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for row, change in reconciled.rows:
        dept = row["dept"]
        if dept is None:
            continue
        counts[dept][change] += 1
        if change in ("opened", "reopened", "still_open"):
            severities[dept][str(row["severity"])] += 1
    quality: dict[str, Counter[str]] = defaultdict(Counter)
    for q in result.quality:
        if q.dept is not None:
            quality[q.dept][q.severity] += 1
    out: list[InspectionSummary] = []
    for dept in sorted(depts):
        checked = result.records_by_dept.get(dept, 0)
        by_severity = severities[dept]
        summary = InspectionSummary(
            inspection_id=inspection.id,
            dept=dept,
            records_checked=checked,
            findings_minor=by_severity["minor"],
            findings_major=by_severity["major"],
            findings_critical=by_severity["critical"],
            waived=counts[dept]["waived"],
            data_quality=sum(quality[dept].values()),
            opened=counts[dept]["opened"] + counts[dept]["reopened"],
            closed=counts[dept]["closed"],
            score=score(
                config,
                records_checked=checked,
                severities=by_severity,
                quality_severities=quality[dept],
            ),
        )
        session.add(summary)
        out.append(summary)
    session.flush()
    return out


# --- reads ----------------------------------------------------------------------------------------


def get(session: Session, *, inspection_id: int) -> Inspection | None:
    return session.get(Inspection, inspection_id)


def by_run_key(session: Session, *, run_key: str) -> Inspection | None:
    return session.scalars(select(Inspection).where(Inspection.run_key == run_key)).one_or_none()


def summaries(session: Session, *, inspection_id: int, scope: ColumnElement[bool]) -> list[InspectionSummary]:
    return list(
        session.scalars(
            select(InspectionSummary)
            .where(InspectionSummary.inspection_id == inspection_id, scope)
            .order_by(InspectionSummary.dept)
        )
    )


def list_inspections(
    session: Session,
    *,
    visible: Collection[str] | None,
    period: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Inspection], int]:
    """Inspections newest first; for a caller seeing only some departments, those covering every
    department or one of them."""
    conditions: list[ColumnElement[bool]] = []
    if period is not None:
        conditions.append(Inspection.period == period)
    if visible is not None:
        covering = select(InspectionSummary.inspection_id).where(InspectionSummary.dept.in_(sorted(visible)))
        conditions.append(or_(Inspection.depts.is_(None), Inspection.id.in_(covering)))
    total = session.scalar(select(func.count()).select_from(Inspection).where(*conditions)) or 0
    rows = session.scalars(
        select(Inspection)
        .where(*conditions)
        .order_by(Inspection.started_at.desc(), Inspection.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows), int(total)


def visible_to(session: Session, *, inspection: Inspection, visible: Collection[str] | None) -> bool:
    if visible is None or inspection.depts is None:
        return True
    return bool(set(inspection.depts) & set(visible))


def list_quality(
    session: Session,
    *,
    scope: ColumnElement[bool],
    dept: str | None = None,
    status: str | None = None,
    kind: str | None = None,
    record_type: str | None = None,
    inspection_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[DataQualityFinding], int]:
    conditions: list[ColumnElement[bool]] = [scope]
    for column, value in (
        (DataQualityFinding.dept, dept),
        (DataQualityFinding.status, status),
        (DataQualityFinding.kind, kind),
        (DataQualityFinding.record_type, record_type),
        (DataQualityFinding.last_inspection_id, inspection_id),
    ):
        if value is not None:
            conditions.append(column == value)
    total = session.scalar(select(func.count()).select_from(DataQualityFinding).where(*conditions)) or 0
    rows = session.scalars(
        select(DataQualityFinding)
        .where(*conditions)
        .order_by(DataQualityFinding.last_seen_at.desc(), DataQualityFinding.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows), int(total)


def findings_of(session: Session, *, inspection_id: int) -> list[InspectionFinding]:
    return list(
        session.scalars(
            select(InspectionFinding)
            .where(InspectionFinding.inspection_id == inspection_id)
            .order_by(InspectionFinding.id)
        )
    )


__all__ = [
    "QualityChanges",
    "QualityFinding",
    "Reconciled",
    "by_run_key",
    "findings_of",
    "get",
    "list_inspections",
    "list_quality",
    "load_frames",
    "reconcile_quality",
    "reconcile_scope",
    "record_findings",
    "summaries",
    "summarise",
    "violated_at",
    "visible_to",
]
