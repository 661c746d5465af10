"""Storing what evaluations find and reading it. Keyword-only functions on a session; they flush
but never commit (the caller's flow owns the transaction). Every status change appends a history
row and an audit event."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import ColumnElement, Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from rules.findings import Finding
from rules.lang.ir import RECORD, Aggregate, And, CompiledRule, Exists, Node, Not, Or
from service.audit.schemas import SYSTEM_ACTOR, AuditAction
from service.audit.service import PendingEvent, append_events
from service.evaluation.source import DbSource
from service.records.models import Record
from service.records.service import chunk_size
from service.violations.models import Violation, ViolationHistory
from service.violations.schemas import Changes, Status

_T = TypeVar("_T")


class TransitionError(Exception):
    def __init__(self, message: str, message_zh: str) -> None:
        super().__init__(message)
        self.message = message
        self.message_zh = message_zh


def _chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


_MUTABLE = (
    "dept",
    "severity",
    "responsible",
    "clauses",
    "message_zh",
    "message_en",
    "status",
    "policy_version",
    "last_evaluated_at",
    "status_changed_at",
    "closed_at",
)


def existing(session: Session, *, record_type: str, record_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The violations of any rule about `record_ids` of `record_type`, as column dicts."""
    out: list[dict[str, Any]] = []
    table = cast(Table, Violation.__table__)
    for chunk in _chunks(sorted(set(record_ids)), chunk_size(session)):
        rows = session.execute(
            select(table).where(table.c.record_type == record_type, table.c.record_id.in_(chunk))
        )
        out.extend(dict(r._mapping) for r in rows)
    return out


def state(row: Mapping[str, Any]) -> dict[str, Any]:
    """What the audit trail digests of a violation."""
    return {
        "id": row["id"],
        "rule": row["rule_id"],
        "record_type": row["record_type"],
        "record_id": row["record_id"],
        "dept": row["dept"],
        "severity": row["severity"],
        "status": row["status"],
        "policy_version": row["policy_version"],
        "message_zh": row["message_zh"],
        "message_en": row["message_en"],
    }


@dataclass
class _Transitions:
    """Status changes to record: (the violation's columns after, its status before, its state before)."""

    actor: str
    reason: str
    policy_version: str
    now: datetime
    items: list[tuple[dict[str, Any], str | None, dict[str, Any] | None]] = field(default_factory=list)

    def move(self, row: dict[str, Any], to: Status) -> None:
        """Set `row`'s status (and its times) and remember the change."""
        before = state(row) if "id" in row else None
        from_status = None if before is None else str(row["status"])
        row["status"] = to
        row["status_changed_at"] = self.now
        row["closed_at"] = self.now if to == Status.CLOSED else None
        self.items.append((row, from_status, before))

    def write(self, session: Session) -> None:
        """History rows and audit events (the rows must have their ids by now)."""
        if not self.items:
            return
        session.execute(
            insert(cast(Table, ViolationHistory.__table__)),
            [
                {
                    "violation_id": row["id"],
                    "at": self.now,
                    "actor": self.actor,
                    "from_status": from_status,
                    "to_status": row["status"],
                    "reason": self.reason,
                    "policy_version": self.policy_version,
                }
                for row, from_status, _ in self.items
            ],
        )
        append_events(
            session,
            events=[
                PendingEvent(
                    actor=self.actor,
                    action=AuditAction.VIOLATION_STATUS_CHANGED,
                    entity_type="violation",
                    entity_id=row["id"],
                    before=before,
                    after=state(row),
                    detail={
                        "rule": row["rule_id"],
                        "record": f"{row['record_type']}:{row['record_id']}",
                        "from": from_status,
                        "to": row["status"],
                        "reason": self.reason,
                    },
                )
                for row, from_status, before in self.items
            ],
            now=self.now,
        )


def reconcile(
    session: Session,
    *,
    record_type: str,
    record_ids: Sequence[str],
    rule_ids: Sequence[str],
    findings: Sequence[Finding],
    policy_version: str,
    now: datetime,
    reason: str,
    actor: str = SYSTEM_ACTOR,
) -> Changes:
    """Bring the violations of `rule_ids` about `record_ids` in line with a complete evaluation of
    them: a finding opens a violation (or reopens a closed one; an open or waived one is updated in
    place), and an open or waived violation without a finding is closed. Violations of rules not in
    `rule_ids` (no longer in force) are left as they are. Bulk statements: thousands of violations
    cost a handful of them."""
    changes = Changes()
    judged_rules = set(rule_ids)
    found = {(f.rule, f.record_id): f for f in findings}
    current = {
        (row["rule_id"], row["record_id"]): row
        for row in existing(session, record_type=record_type, record_ids=record_ids)
        if row["rule_id"] in judged_rules
    }
    transitions = _Transitions(actor, reason, policy_version, now)
    new_rows: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for key, finding in found.items():
        described = {
            "dept": finding.dept,
            "severity": finding.severity,
            "responsible": finding.responsible,
            "clauses": list(finding.clauses),
            "message_zh": finding.message_zh,
            "message_en": finding.message_en,
            "policy_version": policy_version,
            "last_evaluated_at": now,
        }
        row = current.get(key)
        if row is None:
            new_rows.append(
                {
                    "rule_id": finding.rule,
                    "record_type": record_type,
                    "record_id": finding.record_id,
                    "first_detected_at": now,
                    "status": Status.OPEN,
                    "status_changed_at": now,
                    "closed_at": None,
                    **described,
                }
            )
            continue
        if row["status"] == Status.CLOSED:
            transitions.move(row, Status.OPEN)
            changes.reopened.append(row)
        else:
            changes.updated.append(row)
        row.update(described)
        changed.append(row)
    for key, row in current.items():
        if key in found:
            continue
        row.update(last_evaluated_at=now, policy_version=policy_version)
        if row["status"] != Status.CLOSED:
            transitions.move(row, Status.CLOSED)
            changes.closed.append(row)
        changed.append(row)
    table = cast(Table, Violation.__table__)
    if new_rows:
        ids = session.scalars(
            insert(table).returning(table.c.id, sort_by_parameter_order=True), new_rows
        ).all()
        for row, new_id in zip(new_rows, ids, strict=True):
            row["id"] = new_id
            transitions.items.append((row, None, None))
            changes.opened.append(row)
    if changed:
        session.execute(
            update(table).where(table.c.id == bindparam("_id")).values({c: bindparam(c) for c in _MUTABLE}),
            [{"_id": row["id"], **{c: row[c] for c in _MUTABLE}} for row in changed],
        )
    transitions.write(session)
    return changes


def change_status(
    session: Session,
    *,
    violation: Violation,
    to: Status,
    reason: str,
    actor: str,
    policy_version: str,
    now: datetime,
) -> Violation:
    """A supervisor's decision: waive an open violation, or reopen a waived one. Raises
    TransitionError for anything else (a closed violation reopens only by evaluation)."""
    allowed = {(Status.OPEN, Status.WAIVED), (Status.WAIVED, Status.OPEN)}
    if (violation.status, to) not in allowed:
        raise TransitionError(
            f"violation {violation.id} is {violation.status}: it cannot become {to} "
            "(open -> waived and waived -> open are allowed; a closed violation is reopened by "
            "evaluation when its record violates the rule again)",
            f"违规 {violation.id} 当前状态为 {violation.status}，不能改为 {to}"
            "（仅允许 open -> waived 与 waived -> open；已关闭的违规在记录再次违规时由评估重新打开）",
        )
    transitions = _Transitions(actor, reason, policy_version, now)
    row = {c.key: getattr(violation, c.key) for c in cast(Table, Violation.__table__).columns}
    transitions.move(row, to)
    for name in ("status", "status_changed_at", "closed_at"):
        setattr(violation, name, row[name])
    session.flush()
    transitions.write(session)
    return violation


def get(session: Session, *, violation_id: int) -> Violation | None:
    return session.get(Violation, violation_id)


def history(session: Session, *, violation_id: int) -> list[ViolationHistory]:
    return list(
        session.scalars(
            select(ViolationHistory)
            .where(ViolationHistory.violation_id == violation_id)
            .order_by(ViolationHistory.id)
        )
    )


def list_violations(
    session: Session,
    *,
    scope: ColumnElement[bool],
    dept: str | None = None,
    rule: str | None = None,
    severity: str | None = None,
    status: str | None = None,
    detected_from: datetime | None = None,
    detected_to: datetime | None = None,
    record_type: str | None = None,
    record_id: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Violation], int]:
    """One page of violations matching every given filter and `scope` (a condition on
    Violation.dept), newest first, and how many match."""
    conditions: list[ColumnElement[bool]] = [scope]
    for column, value in (
        (Violation.dept, dept),
        (Violation.rule_id, rule),
        (Violation.severity, severity),
        (Violation.status, status),
        (Violation.record_type, record_type),
        (Violation.record_id, record_id),
    ):
        if value is not None:
            conditions.append(column == value)
    if detected_from is not None:
        conditions.append(Violation.first_detected_at >= detected_from)
    if detected_to is not None:
        conditions.append(Violation.first_detected_at < detected_to)
    total = session.scalar(select(func.count()).select_from(Violation).where(*conditions)) or 0
    rows = session.scalars(
        select(Violation)
        .where(*conditions)
        .order_by(Violation.first_detected_at.desc(), Violation.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows), int(total)


def open_keys(session: Session) -> set[tuple[str, str, str]]:
    """(rule, record type, record id) of every open violation (tests, reports)."""
    return {
        (r, t, i)
        for r, t, i in session.execute(
            select(Violation.rule_id, Violation.record_type, Violation.record_id).where(
                Violation.status == Status.OPEN
            )
        )
    }


# --- what decided a violation ------------------------------------------------------------------------

MAX_RELATED_PER_JOIN = 200


@dataclass(frozen=True)
class Related:
    record: Record
    via: str


def related_records(
    session: Session,
    *,
    rule: CompiledRule,
    payload: Mapping[str, Any],
    source: DbSource,
) -> list[Related]:
    """The current versions of the records `rule` reads for the record with `payload`, through its
    join keys (first key of each join, as the engines fetch them): related records of each `Exists`
    (nested ones from the records found for their outer join) and the records its aggregates sum.
    At most MAX_RELATED_PER_JOIN per join, by id."""
    found: dict[int, Related] = {}

    def add(record_type: str, field: str | None, values: set[Any] | None, via: str) -> list[Record]:
        refs = sorted(source.matching(record_type, field, values), key=lambda r: (r[1], r[0]))
        refs = refs[:MAX_RELATED_PER_JOIN]
        rows = (
            list(session.scalars(select(Record).where(Record.id.in_([r[0] for r in refs])))) if refs else []
        )
        rows.sort(key=lambda r: (r.record_id, r.id))
        for row in rows:
            found.setdefault(row.id, Related(row, via))
        return rows

    def walk(node: Exists, env: Mapping[str, list[Mapping[str, Any]]]) -> None:
        if node.keys:
            related_field, ref = node.keys[0]
            outer_rows = env[ref.scope]
            values = {p.get(ref.field) for p in outer_rows} - {None}
            via = f"{node.type}.{related_field} = {ref.scope}.{ref.field}"
            rows = add(node.type, related_field, values, via) if values else []
        else:
            rows = add(node.type, None, None, f"{node.type} (every record)")
        inner: dict[str, list[Mapping[str, Any]]] = {**env, node.alias: [r.payload for r in rows]}
        for child in _top_exists(node.body):
            walk(child, inner)

    env: dict[str, list[Mapping[str, Any]]] = {RECORD: [payload]}
    for level in rule.levels:
        for node in _top_exists(level.violation):
            walk(node, env)
    for derivation in rule.derivations:
        if isinstance(derivation, Aggregate):
            for part in derivation.parts:
                if part.keys:
                    related_field, record_field = part.keys[0]
                    value = payload.get(record_field)
                    if value is not None:
                        add(
                            part.type,
                            related_field,
                            {value},
                            f"{part.type}.{related_field} = record.{record_field}",
                        )
                else:
                    add(part.type, None, None, f"{part.type} (every record)")
    return list(found.values())


def _top_exists(node: Node) -> Iterator[Exists]:
    if isinstance(node, Exists):
        yield node
    elif isinstance(node, And | Or):
        for item in node.items:
            yield from _top_exists(item)
    elif isinstance(node, Not):
        yield from _top_exists(node.item)


__all__ = [
    "TransitionError",
    "change_status",
    "existing",
    "get",
    "history",
    "list_violations",
    "open_keys",
    "reconcile",
    "related_records",
]
