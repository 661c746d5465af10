"""Rectification notices in the database: numbering, issuing, transitions, verification (the rules
re-run on the current records), reminders and escalation, waivers. Keyword-only functions on a
session; they flush but never commit (the flows own the transactions). Every change appends a
notice event and an audit event."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, cast

import pandas as pd
from sqlalchemy import ColumnElement, Table, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from rules.engine import batch
from rules.engine.encode import timestamp_ms
from rules.findings import describe
from rules.library import Library
from rules.validate import from_payloads
from service.audit.service import append_event
from service.evaluation.runtime import Runtime
from service.evaluation.service import encode_all
from service.evaluation.source import DbSource
from service.inspections.config import InspectionConfig
from service.notices.models import (
    Notice,
    NoticeEvent,
    NoticeEvidence,
    NoticeItem,
    NoticeReminder,
    NoticeResponse,
    NoticeSequence,
    Waiver,
)
from service.notices.schemas import (
    ACTIVE,
    DEPARTMENT_TO_ACT,
    ItemCheck,
    ItemOutcome,
    NoticeStatus,
    Verification,
)
from service.records import service as records
from service.violations import service as violations
from service.violations.models import Violation
from service.violations.schemas import Status

NUMBER_PREFIX = "ZG"


class NoticeError(Exception):
    """A refused change (409 in the API)."""

    def __init__(self, message: str, message_zh: str, *, code: str = "invalid_transition") -> None:
        super().__init__(message)
        self.message = message
        self.message_zh = message_zh
        self.code = code


def notice_state(notice: Notice) -> dict[str, Any]:
    """What the audit trail digests of a notice."""
    return {
        "id": notice.id,
        "number": notice.number,
        "dept": notice.dept,
        "status": notice.status,
        "escalation_level": notice.escalation_level,
        "due_date": notice.due_date,
    }


def _audit(
    session: Session,
    *,
    notice: Notice,
    action: str,
    actor: str,
    now: datetime,
    before: dict[str, Any] | None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    append_event(
        session,
        actor=actor,
        action=f"notice.{action}",
        entity_type="notice",
        entity_id=notice.id,
        before=before,
        after=notice_state(notice),
        detail={"number": notice.number, "dept": notice.dept, **(detail or {})},
        now=now,
    )


def add_event(
    session: Session,
    *,
    notice: Notice,
    action: str,
    actor: str,
    now: datetime,
    note: str = "",
    from_status: str | None = None,
    to_status: str | None = None,
) -> NoticeEvent:
    event = NoticeEvent(
        notice_id=notice.id,
        at=now,
        actor=actor,
        action=action,
        from_status=from_status,
        to_status=to_status,
        note=note,
    )
    session.add(event)
    return event


# --- numbering -------------------------------------------------------------------------------------


def month_of(now: datetime, library: Library) -> str:
    local = now.astimezone(library.company.tz)
    return f"{local.year:04d}-{local.month:02d}"


def format_number(month: str, seq: int) -> str:
    return f"{NUMBER_PREFIX}-{month}-{seq:04d}"


def allocate_numbers(session: Session, *, month: str, count: int) -> list[int]:
    """`count` consecutive sequence numbers of `month`, taken in the session's transaction: the
    month's counter row is created if needed and incremented, which locks it until the
    transaction ends (PostgreSQL: row lock; SQLite: the database's write lock). Concurrent
    issuers wait for each other; a rolled-back transaction gives its numbers back: gap-free."""
    if count <= 0:
        return []
    table = cast(Table, NoticeSequence.__table__)
    dialect = session.get_bind().dialect.name
    maker = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(
        maker(table).values(month=month, last_seq=0).on_conflict_do_nothing(index_elements=["month"])
    )
    last = session.execute(
        update(NoticeSequence)
        .where(NoticeSequence.month == month)
        .values(last_seq=NoticeSequence.last_seq + count)
        .returning(NoticeSequence.last_seq)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    return list(range(int(last) - count + 1, int(last) + 1))


# --- issuing ---------------------------------------------------------------------------------------


def department_head(session: Session, *, dept: str) -> str | None:
    """The head of `dept` from its current `department` record (None when there is none)."""
    record = records.current_record(session, record_type="department", record_id=dept)
    if record is None:
        return None
    head = record.payload.get("head")
    return str(head) if head else None


def on_active_notices(session: Session, *, violation_ids: Iterable[int]) -> set[int]:
    """Which of `violation_ids` are listed on a notice that is not closed."""
    ids = sorted(set(violation_ids))
    found: set[int] = set()
    for start in range(0, len(ids), 900):
        chunk = ids[start : start + 900]
        found.update(
            int(v)
            for v in session.scalars(
                select(NoticeItem.violation_id)
                .join(Notice, Notice.id == NoticeItem.notice_id)
                .where(NoticeItem.violation_id.in_(chunk), Notice.status != NoticeStatus.CLOSED)
            )
        )
    return found


def due_of(issued_at: datetime, days: int, library: Library) -> tuple[Any, datetime]:
    """(due date, due instant): the issue date (company time zone) + `days`; due at the end of
    that day (the next local midnight)."""
    tz = library.company.tz
    due_date = issued_at.astimezone(tz).date() + timedelta(days=days)
    due_at = datetime.combine(due_date + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return due_date, due_at


def issue_notices(
    session: Session,
    *,
    library: Library,
    config: InspectionConfig,
    by_dept: Mapping[str, Sequence[Mapping[str, Any]]],
    inspection_id: int | None,
    actor: str,
    now: datetime,
) -> list[Notice]:
    """A notice per department of `by_dept` (department -> open violations as column dicts),
    listing those of its violations that are on no active notice yet; none for a department
    with nothing new to list. Deadline: issue date + the shortest rectify_days of its findings."""
    rules = {r.id: r for r in library.all_rules}
    all_ids = [int(v["id"]) for rows in by_dept.values() for v in rows]
    listed = on_active_notices(session, violation_ids=all_ids)
    plans: list[tuple[str, list[Mapping[str, Any]]]] = []
    for dept in sorted(by_dept):
        rows = [
            v
            for v in by_dept[dept]
            if int(v["id"]) not in listed and v["status"] == Status.OPEN and v["dept"] == dept
        ]
        if rows:
            plans.append((dept, sorted(rows, key=lambda v: int(v["id"]))))
    if not plans:
        return []
    month = month_of(now, library)
    numbers = allocate_numbers(session, month=month, count=len(plans))
    notices: list[Notice] = []
    for (dept, rows), seq in zip(plans, numbers, strict=True):
        days = {
            int(v["id"]): rules[v["rule_id"]].rectify_days
            if v["rule_id"] in rules
            else config.default_rectify_days
            for v in rows
        }
        due_date, due_at = due_of(now, min(days.values()), library)
        notice = Notice(
            number=format_number(month, seq),
            month=month,
            seq=seq,
            dept=dept,
            inspection_id=inspection_id,
            status=NoticeStatus.ISSUED,
            escalation_level=0,
            issued_at=now,
            issued_by=actor,
            due_date=due_date,
            due_at=due_at,
            department_head=department_head(session, dept=dept),
            status_changed_at=now,
        )
        session.add(notice)
        session.flush()
        for v in rows:
            session.add(
                NoticeItem(
                    notice_id=notice.id,
                    violation_id=int(v["id"]),
                    rule_id=v["rule_id"],
                    record_type=v["record_type"],
                    record_id=v["record_id"],
                    severity=v["severity"],
                    responsible=v["responsible"],
                    clauses=list(v["clauses"]),
                    message_zh=v["message_zh"],
                    message_en=v["message_en"],
                    rectify_days=days[int(v["id"])],
                    outcome=ItemOutcome.PENDING,
                    verification=None,
                )
            )
        add_event(
            session,
            notice=notice,
            action="issued",
            actor=actor,
            now=now,
            to_status=NoticeStatus.ISSUED,
            note=f"{len(rows)} finding(s); due {due_date.isoformat()}",
        )
        _audit(
            session,
            notice=notice,
            action="issued",
            actor=actor,
            now=now,
            before=None,
            detail={
                "inspection_id": inspection_id,
                "violations": [int(v["id"]) for v in rows],
                "due_date": due_date.isoformat(),
            },
        )
        notices.append(notice)
    session.flush()
    return notices


# --- transitions ----------------------------------------------------------------------------------

_TRANSITIONS: dict[str, tuple[tuple[NoticeStatus, ...], NoticeStatus]] = {
    "acknowledged": ((NoticeStatus.ISSUED,), NoticeStatus.ACKNOWLEDGED),
    "response_submitted": (
        (NoticeStatus.ACKNOWLEDGED, NoticeStatus.RETURNED),
        NoticeStatus.RESPONSE_SUBMITTED,
    ),
    "verified": ((NoticeStatus.RESPONSE_SUBMITTED,), NoticeStatus.VERIFIED),
    "returned": ((NoticeStatus.RESPONSE_SUBMITTED,), NoticeStatus.RETURNED),
    "closed": ((NoticeStatus.VERIFIED,), NoticeStatus.CLOSED),
}


def transition(
    session: Session,
    *,
    notice: Notice,
    action: str,
    actor: str,
    now: datetime,
    note: str = "",
    allow_from: Sequence[NoticeStatus] = (),
    detail: Mapping[str, Any] | None = None,
) -> Notice:
    """Move `notice` by `action` (acknowledged, response_submitted, verified, returned, closed);
    NoticeError when its status does not allow it."""
    sources, target = _TRANSITIONS[action]
    if notice.status not in (*sources, *allow_from):
        allowed = ", ".join(s.value for s in (*sources, *allow_from))
        raise NoticeError(
            f"notice {notice.number} is {notice.status}: it cannot become {target} (only from {allowed})",
            f"整改通知 {notice.number} 当前状态为 {notice.status}，不能变为 {target}（仅允许从 {allowed}）",
        )
    before = notice_state(notice)
    previous = notice.status
    notice.status = target
    notice.status_changed_at = now
    if target == NoticeStatus.ACKNOWLEDGED:
        notice.acknowledged_at, notice.acknowledged_by = now, actor
    elif target == NoticeStatus.VERIFIED:
        notice.verified_at, notice.verified_by = now, actor
    elif target == NoticeStatus.CLOSED:
        notice.closed_at, notice.closed_by = now, actor
    session.flush()
    add_event(
        session,
        notice=notice,
        action=action,
        actor=actor,
        now=now,
        note=note,
        from_status=previous,
        to_status=target,
    )
    _audit(
        session,
        notice=notice,
        action=action,
        actor=actor,
        now=now,
        before=before,
        detail={"from": previous, "to": target, "note": note, **(detail or {})},
    )
    return notice


def is_overdue(notice: Notice, now: datetime) -> bool:
    return notice.status in DEPARTMENT_TO_ACT and now >= notice.due_at


# --- verification: the rules re-run on the current records -------------------------------------------


def recheck(
    session: Session, *, runtime: Runtime, items: Sequence[NoticeItem], now: datetime
) -> Verification:
    """Re-run each finding's rule (batch engine) on the current version of its record and the
    current records the rule reads (through its joins), as of `now`. Waived findings are not
    judged. The caller keeps the key index up to date first (`service.evaluation.arrival.prepare`)."""
    library = runtime.library
    tz = library.company.tz
    in_force = {r.id: r for r in library.rules}
    source = DbSource(session, runtime.codec, runtime.key_fields)
    payloads: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    versions: dict[tuple[str, str], int] = {}
    checks: dict[int, ItemCheck] = {}
    judged: list[NoticeItem] = []
    for item in items:
        base = {
            "item_id": item.id,
            "violation_id": item.violation_id,
            "rule": item.rule_id,
            "record_type": item.record_type,
            "record_id": item.record_id,
        }
        if item.outcome == ItemOutcome.WAIVED:
            checks[item.id] = ItemCheck(**base, record_version=None, violated=None, note="waived / 已豁免")
            continue
        record = records.current_record(session, record_type=item.record_type, record_id=item.record_id)
        if record is None:
            checks[item.id] = ItemCheck(
                **base, record_version=None, violated=True, note="the record no longer exists / 记录不存在"
            )
            continue
        versions[(item.record_type, item.record_id)] = record.version
        rule = in_force.get(item.rule_id)
        if rule is None:
            checks[item.id] = ItemCheck(
                **base,
                record_version=record.version,
                violated=False,
                note="the rule is no longer in force / 规则已不再适用",
            )
            continue
        payloads[item.record_type][item.record_id] = record.payload
        for related in violations.related_records(
            session, rule=rule.compiled, payload=record.payload, source=source
        ):
            payloads[related.record.record_type][related.record.record_id] = related.record.payload
        judged.append(item)
    if judged:
        typed = {
            name: from_payloads(rt, list(payloads.get(name, {}).values()), tz)
            for name, rt in library.model.types.items()
        }
        encoded = encode_all(library, typed)
        as_of_ms = timestamp_ms(pd.Timestamp(now))
        rules = [in_force[i.rule_id] for i in judged]
        compiled = list({r.id: r.compiled for r in rules}.values())
        wanted = {(i.rule_id, i.record_id) for i in judged}
        verdicts = sorted(
            v for v in batch.evaluate(compiled, encoded, as_of_ms=as_of_ms, tz=tz) if v.key in wanted
        )
        found = {
            (f.rule, f.record_id): f
            for f in describe(
                verdicts,
                list({r.id: r for r in rules}.values()),
                typed,
                encoded,
                library.model.types,
                library.parameters,
                as_of_ms=as_of_ms,
                tz=tz,
            )
        }
        for item in judged:
            finding = found.get((item.rule_id, item.record_id))
            checks[item.id] = ItemCheck(
                item_id=item.id,
                violation_id=item.violation_id,
                rule=item.rule_id,
                record_type=item.record_type,
                record_id=item.record_id,
                record_version=versions[(item.record_type, item.record_id)],
                violated=finding is not None,
                severity=None if finding is None else finding.severity,
                message_zh=None if finding is None else finding.message_zh,
                message_en=None if finding is None else finding.message_en,
                note="still violated / 仍违规" if finding is not None else "complies / 已符合",
            )
    ordered = [checks[i.id] for i in items]
    return Verification(
        as_of=now,
        policy_version=library.version,
        all_rectified=not any(c.violated for c in ordered),
        items=ordered,
    )


def store_checks(items: Sequence[NoticeItem], verification: Verification) -> None:
    by_id = {c.item_id: c for c in verification.items}
    for item in items:
        check = by_id.get(item.id)
        if check is not None:
            item.verification = check.model_dump(mode="json")


# --- responses and evidence -------------------------------------------------------------------------


@dataclass(frozen=True)
class EvidenceFile:
    filename: str
    content_type: str
    content: bytes


def add_response(
    session: Session,
    *,
    notice: Notice,
    description: str,
    item_ids: Sequence[int] | None,
    record_refs: Sequence[str],
    files: Sequence[EvidenceFile],
    verification: Verification,
    actor: str,
    now: datetime,
) -> NoticeResponse:
    response = NoticeResponse(
        notice_id=notice.id,
        submitted_by=actor,
        submitted_at=now,
        description=description,
        item_ids=None if item_ids is None else sorted(set(item_ids)),
        records=list(record_refs),
        verification=verification.model_dump(mode="json"),
        decision=None,
    )
    session.add(response)
    session.flush()
    for f in files:
        session.add(
            NoticeEvidence(
                response_id=response.id,
                filename=f.filename,
                content_type=f.content_type,
                size=len(f.content),
                sha256=hashlib.sha256(f.content).hexdigest(),
                content=f.content,
            )
        )
    session.flush()
    return response


def latest_response(session: Session, *, notice_id: int) -> NoticeResponse | None:
    return session.scalars(
        select(NoticeResponse)
        .where(NoticeResponse.notice_id == notice_id)
        .order_by(NoticeResponse.id.desc())
        .limit(1)
    ).one_or_none()


# --- reminders and escalation ------------------------------------------------------------------------


def _reminder(
    session: Session,
    *,
    notice: Notice,
    key: str,
    kind: str,
    level: int | None,
    recipients: list[dict[str, Any]],
    subject_zh: str,
    subject_en: str,
    now: datetime,
) -> NoticeReminder | None:
    exists = session.scalar(
        select(func.count())
        .select_from(NoticeReminder)
        .where(NoticeReminder.notice_id == notice.id, NoticeReminder.key == key)
    )
    if exists:
        return None
    reminder = NoticeReminder(
        notice_id=notice.id,
        key=key,
        kind=kind,
        level=level,
        recipients=recipients,
        subject_zh=subject_zh,
        subject_en=subject_en,
        created_at=now,
        sent_at=None,
    )
    session.add(reminder)
    add_event(session, notice=notice, action="reminded", actor="system", now=now, note=f"{key}: {subject_en}")
    append_event(
        session,
        actor="system",
        action="notice.reminded",
        entity_type="notice",
        entity_id=notice.id,
        detail={"number": notice.number, "dept": notice.dept, "key": key, "recipients": recipients},
        now=now,
    )
    return reminder


def _recipients(notice: Notice, config: InspectionConfig, level: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"role": "department", "dept": notice.dept}]
    targets = {s.to for s in config.escalation if s.level <= level}
    if "department_head" in targets:
        out.append({"role": "department_head", "dept": notice.dept, "name": notice.department_head})
    if "general_manager" in targets:
        out.append({"role": "general_manager", "title": config.general_manager.as_dict()})
    return out


@dataclass
class ReminderCounts:
    reminders: int = 0
    escalations: int = 0


def remind_and_escalate(
    session: Session, *, config: InspectionConfig, now: datetime, actor: str = "system"
) -> ReminderCounts:
    """For every notice the department still has to act on: the most urgent reminder due before
    the deadline; when overdue, a reminder at the deadline and every `overdue_reminder_every_days`
    after, and the escalation steps reached (each level once, in order, with its reminder)."""
    counts = ReminderCounts()
    notices = session.scalars(
        select(Notice).where(Notice.status.in_([s.value for s in DEPARTMENT_TO_ACT])).order_by(Notice.id)
    ).all()
    for notice in notices:
        due = f"{notice.number}（{notice.due_date.isoformat()} 到期）"
        due_en = f"{notice.number} (due {notice.due_date.isoformat()})"
        if now < notice.due_at:
            reached = [d for d in config.reminder_days_before if now >= notice.due_at - timedelta(days=d)]
            if reached:
                days = min(reached)
                made = _reminder(
                    session,
                    notice=notice,
                    key=f"due:{days}",
                    kind="due",
                    level=None,
                    recipients=_recipients(notice, config, notice.escalation_level),
                    subject_zh=f"整改通知 {due} 还有 {days} 天到期",
                    subject_en=f"Rectification notice {due_en}: {days} day(s) left",
                    now=now,
                )
                counts.reminders += made is not None
            continue
        overdue_days = (now - notice.due_at) // timedelta(days=1)
        for step in config.escalation:
            if overdue_days >= step.after_overdue_days and notice.escalation_level < step.level:
                before = notice_state(notice)
                notice.escalation_level = step.level
                notice.escalated_at = now
                session.flush()
                target = "部门负责人" if step.to == "department_head" else config.general_manager.zh
                add_event(
                    session,
                    notice=notice,
                    action="escalated",
                    actor=actor,
                    now=now,
                    note=f"level {step.level}: {step.to}",
                )
                _audit(
                    session,
                    notice=notice,
                    action="escalated",
                    actor=actor,
                    now=now,
                    before=before,
                    detail={"level": step.level, "to": step.to, "overdue_days": int(overdue_days)},
                )
                _reminder(
                    session,
                    notice=notice,
                    key=f"escalation:{step.level}",
                    kind="escalation",
                    level=step.level,
                    recipients=_recipients(notice, config, step.level),
                    subject_zh=f"整改通知 {due} 逾期未整改，已升级至{target}",
                    subject_en=f"Rectification notice {due_en} is overdue: escalated to the {step.to.replace('_', ' ')}",
                    now=now,
                )
                counts.escalations += 1
        period = int(overdue_days) // config.overdue_reminder_every_days
        made = _reminder(
            session,
            notice=notice,
            key=f"overdue:{period}",
            kind="overdue",
            level=notice.escalation_level,
            recipients=_recipients(notice, config, notice.escalation_level),
            subject_zh=f"整改通知 {due} 已逾期 {int(overdue_days)} 天",
            subject_en=f"Rectification notice {due_en} is {int(overdue_days)} day(s) overdue",
            now=now,
        )
        counts.reminders += made is not None
    session.flush()
    return counts


# --- waivers ----------------------------------------------------------------------------------------


def waiver_state(waiver: Waiver) -> dict[str, Any]:
    return {
        "id": waiver.id,
        "violation_id": waiver.violation_id,
        "status": waiver.status,
        "expires_at": waiver.expires_at,
        "reason": waiver.reason,
    }


def _active_items(session: Session, *, violation_id: int) -> list[tuple[NoticeItem, Notice]]:
    rows = session.execute(
        select(NoticeItem, Notice)
        .join(Notice, Notice.id == NoticeItem.notice_id)
        .where(NoticeItem.violation_id == violation_id, Notice.status != NoticeStatus.CLOSED)
    ).all()
    return [(item, notice) for item, notice in rows]


def grant_waiver(
    session: Session,
    *,
    violation: Violation,
    reason: str,
    expires_at: datetime,
    actor: str,
    policy_version: str,
    now: datetime,
) -> Waiver:
    """Waive an open violation until `expires_at` (through the violations service: history and
    audit); its findings on active notices become waived. NoticeError if it is not open or the
    expiry is not in the future."""
    if expires_at <= now:
        raise NoticeError(
            "a waiver's expiry must be in the future", "豁免的到期时间须晚于当前时间", code="invalid_expiry"
        )
    if violation.status != Status.OPEN:
        raise NoticeError(
            f"violation {violation.id} is {violation.status}: only an open violation can be waived",
            f"违规 {violation.id} 当前状态为 {violation.status}：只有未关闭的违规可以豁免",
        )
    local = expires_at.astimezone(UTC).isoformat(timespec="seconds")
    violations.change_status(
        session,
        violation=violation,
        to=Status.WAIVED,
        reason=f"waived until {local}: {reason}",
        actor=actor,
        policy_version=policy_version,
        now=now,
    )
    waiver = Waiver(
        violation_id=violation.id,
        dept=violation.dept,
        reason=reason,
        expires_at=expires_at,
        created_by=actor,
        created_at=now,
        status="active",
        ended_at=None,
        ended_note=None,
    )
    session.add(waiver)
    session.flush()
    for item, notice in _active_items(session, violation_id=violation.id):
        if item.outcome == ItemOutcome.PENDING:
            item.outcome = ItemOutcome.WAIVED
            add_event(
                session,
                notice=notice,
                action="item_waived",
                actor=actor,
                now=now,
                note=f"{item.rule_id} {item.record_type}:{item.record_id} waived until {local}: {reason}",
            )
    append_event(
        session,
        actor=actor,
        action="waiver.granted",
        entity_type="waiver",
        entity_id=waiver.id,
        before=None,
        after=waiver_state(waiver),
        detail={
            "violation_id": violation.id,
            "rule": violation.rule_id,
            "expires_at": local,
            "reason": reason,
        },
        now=now,
    )
    session.flush()
    return waiver


def _end_waiver(
    session: Session,
    *,
    waiver: Waiver,
    status: str,
    note: str,
    actor: str,
    policy_version: str,
    now: datetime,
) -> bool:
    """End `waiver` (expired or revoked) and revive its finding if it is still waived; whether it
    was revived."""
    before = waiver_state(waiver)
    waiver.status = status
    waiver.ended_at = now
    waiver.ended_note = note
    violation = session.get(Violation, waiver.violation_id)
    revived = violation is not None and violation.status == Status.WAIVED
    if violation is not None and revived:
        violations.change_status(
            session,
            violation=violation,
            to=Status.OPEN,
            reason=f"waiver {waiver.id} {status}: {note}",
            actor=actor,
            policy_version=policy_version,
            now=now,
        )
        for item, notice in _active_items(session, violation_id=violation.id):
            if item.outcome == ItemOutcome.WAIVED:
                item.outcome = ItemOutcome.PENDING
                add_event(
                    session,
                    notice=notice,
                    action="item_revived",
                    actor=actor,
                    now=now,
                    note=f"{item.rule_id} {item.record_type}:{item.record_id}: waiver {waiver.id} {status}",
                )
    session.flush()
    append_event(
        session,
        actor=actor,
        action=f"waiver.{status}",
        entity_type="waiver",
        entity_id=waiver.id,
        before=before,
        after=waiver_state(waiver),
        detail={"violation_id": waiver.violation_id, "revived": revived, "note": note},
        now=now,
    )
    return revived


def expire_waivers(
    session: Session, *, now: datetime, policy_version: str, actor: str = "system"
) -> tuple[int, int]:
    """End every active waiver whose expiry has passed; revive the findings still waived (open
    again; on an active notice they are to rectify again). (waivers expired, findings revived)."""
    due = session.scalars(
        select(Waiver).where(Waiver.status == "active", Waiver.expires_at <= now).order_by(Waiver.id)
    ).all()
    revived = 0
    for waiver in due:
        revived += _end_waiver(
            session,
            waiver=waiver,
            status="expired",
            note=f"expired at {waiver.expires_at.isoformat(timespec='seconds')}",
            actor=actor,
            policy_version=policy_version,
            now=now,
        )
    return len(due), revived


def revoke_waiver(
    session: Session, *, waiver: Waiver, reason: str, actor: str, policy_version: str, now: datetime
) -> Waiver:
    if waiver.status != "active":
        raise NoticeError(
            f"waiver {waiver.id} is {waiver.status}: only an active waiver can be revoked",
            f"豁免 {waiver.id} 当前状态为 {waiver.status}：只有生效中的豁免可以撤销",
        )
    _end_waiver(
        session,
        waiver=waiver,
        status="revoked",
        note=reason,
        actor=actor,
        policy_version=policy_version,
        now=now,
    )
    return waiver


# --- reads -------------------------------------------------------------------------------------------


def get(session: Session, *, notice_id: int) -> Notice | None:
    return session.get(Notice, notice_id)


def by_number(session: Session, *, number: str) -> Notice | None:
    return session.scalars(select(Notice).where(Notice.number == number)).one_or_none()


def items_of(session: Session, *, notice_id: int) -> list[NoticeItem]:
    return list(
        session.scalars(select(NoticeItem).where(NoticeItem.notice_id == notice_id).order_by(NoticeItem.id))
    )


def item_counts(session: Session, *, notice_ids: Sequence[int]) -> dict[int, int]:
    if not notice_ids:
        return {}
    return {
        int(n): int(c)
        for n, c in session.execute(
            select(NoticeItem.notice_id, func.count())
            .where(NoticeItem.notice_id.in_(list(notice_ids)))
            .group_by(NoticeItem.notice_id)
        )
    }


def events_of(session: Session, *, notice_id: int) -> list[NoticeEvent]:
    return list(
        session.scalars(
            select(NoticeEvent).where(NoticeEvent.notice_id == notice_id).order_by(NoticeEvent.id)
        )
    )


def responses_of(session: Session, *, notice_id: int) -> list[NoticeResponse]:
    return list(
        session.scalars(
            select(NoticeResponse).where(NoticeResponse.notice_id == notice_id).order_by(NoticeResponse.id)
        )
    )


def evidence_of(session: Session, *, response_ids: Sequence[int]) -> list[NoticeEvidence]:
    if not response_ids:
        return []
    return list(
        session.scalars(
            select(NoticeEvidence)
            .where(NoticeEvidence.response_id.in_(list(response_ids)))
            .order_by(NoticeEvidence.id)
            .execution_options(populate_existing=False)
        )
    )


def evidence(session: Session, *, notice_id: int, evidence_id: int) -> NoticeEvidence | None:
    return session.scalars(
        select(NoticeEvidence)
        .join(NoticeResponse, NoticeResponse.id == NoticeEvidence.response_id)
        .where(NoticeEvidence.id == evidence_id, NoticeResponse.notice_id == notice_id)
    ).one_or_none()


def reminders_of(
    session: Session,
    *,
    scope: ColumnElement[bool],
    notice_id: int | None = None,
    unsent: bool | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[NoticeReminder], int]:
    conditions: list[ColumnElement[bool]] = [scope]
    if notice_id is not None:
        conditions.append(NoticeReminder.notice_id == notice_id)
    if unsent is True:
        conditions.append(NoticeReminder.sent_at.is_(None))
    elif unsent is False:
        conditions.append(NoticeReminder.sent_at.is_not(None))
    query = select(NoticeReminder).join(Notice, Notice.id == NoticeReminder.notice_id).where(*conditions)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(NoticeReminder.id.desc()).limit(limit).offset(offset))
    return list(rows), int(total)


def list_notices(
    session: Session,
    *,
    scope: ColumnElement[bool],
    dept: str | None = None,
    status: str | None = None,
    inspection_id: int | None = None,
    overdue_at: datetime | None = None,
    escalation_level: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Notice], int]:
    """Notices newest first matching every filter; `overdue_at`: only those overdue then."""
    conditions: list[ColumnElement[bool]] = [scope]
    for column, value in (
        (Notice.dept, dept),
        (Notice.status, status),
        (Notice.inspection_id, inspection_id),
        (Notice.escalation_level, escalation_level),
    ):
        if value is not None:
            conditions.append(column == value)
    if overdue_at is not None:
        conditions.append(Notice.status.in_([s.value for s in DEPARTMENT_TO_ACT]))
        conditions.append(Notice.due_at <= overdue_at)
    total = session.scalar(select(func.count()).select_from(Notice).where(*conditions)) or 0
    rows = session.scalars(
        select(Notice)
        .where(*conditions)
        .order_by(Notice.issued_at.desc(), Notice.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows), int(total)


def list_waivers(
    session: Session,
    *,
    scope: ColumnElement[bool],
    status: str | None = None,
    violation_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Waiver], int]:
    conditions: list[ColumnElement[bool]] = [scope]
    if status is not None:
        conditions.append(Waiver.status == status)
    if violation_id is not None:
        conditions.append(Waiver.violation_id == violation_id)
    total = session.scalar(select(func.count()).select_from(Waiver).where(*conditions)) or 0
    rows = session.scalars(
        select(Waiver).where(*conditions).order_by(Waiver.id.desc()).limit(limit).offset(offset)
    )
    return list(rows), int(total)


__all__ = [
    "ACTIVE",
    "EvidenceFile",
    "NoticeError",
    "add_event",
    "add_response",
    "allocate_numbers",
    "department_head",
    "due_of",
    "expire_waivers",
    "grant_waiver",
    "issue_notices",
    "recheck",
    "remind_and_escalate",
    "transition",
]
