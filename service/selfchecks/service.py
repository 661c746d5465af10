"""Self-checks in the database: judging a department's period against its declaration, and
finding the self-checks that were due and not submitted. Keyword-only functions on a session; they
flush but never commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select, true
from sqlalchemy.orm import Session

from rules.library import Library
from service.audit.service import append_event
from service.inspections import service as inspections
from service.inspections.config import InspectionConfig
from service.inspections.core import ScopeResult, judge_scope
from service.inspections.periods import Period
from service.records.models import Record
from service.selfchecks.models import MissingSelfCheck, SelfCheck
from service.selfchecks.schemas import (
    Comparison,
    Declaration,
    Disagreement,
    FoundItem,
    QualityItem,
    SelfCheckResult,
)


def due_at(period: Period, config: InspectionConfig, library: Library) -> datetime:
    return period.end(library.company.tz) + timedelta(days=config.selfcheck_due_days)


def judge(
    session: Session, *, library: Library, config: InspectionConfig, dept: str, period: Period, now: datetime
) -> ScopeResult:
    """Checks and rules over every current record, kept to `dept`'s records of `period`, as of the
    period's end plus grace (never after now)."""
    typed = inspections.load_frames(session, library=library)
    as_of = period.as_of(library.company.tz, grace_days=config.grace_days, now=now)
    return judge_scope(library, config, typed, period=period, depts=[dept], as_of=as_of)


def compare(declaration: Declaration, found: ScopeResult) -> tuple[SelfCheckResult, Comparison]:
    declared = {(d.rule, d.record_id) for d in declaration.deviations}
    items = [
        FoundItem(
            rule=f.rule,
            record_type=f.record_type,
            record_id=f.record_id,
            severity=f.severity,
            responsible=f.responsible,
            clauses=list(f.clauses),
            message_zh=f.message_zh,
            message_en=f.message_en,
            declared=(f.rule, f.record_id) in declared,
        )
        for f in found.findings
    ]
    quality = [
        QualityItem(
            kind=q.kind,
            code=q.code,
            record_type=q.record_type,
            record_id=q.record_id,
            severity=q.severity,
            message_zh=q.message_zh,
            message_en=q.message_en,
        )
        for q in found.quality
    ]
    undeclared = [
        Disagreement(rule=i.rule, record_type=i.record_type, record_id=i.record_id, severity=i.severity)
        for i in items
        if not i.declared
    ]
    found_keys = {(i.rule, i.record_id) for i in items}
    compliant = set(declaration.compliant_rules)
    comparison = Comparison(
        undeclared=undeclared,
        contradicted_rules=sorted({i.rule for i in items if i.rule in compliant}),
        declared_not_found=[
            Disagreement(rule=d.rule, record_id=d.record_id)
            for d in declaration.deviations
            if (d.rule, d.record_id) not in found_keys
        ],
        matched=sum(1 for i in items if i.declared),
    )
    result = SelfCheckResult(records_checked=found.records_checked, findings=items, data_quality=quality)
    return result, comparison


def submit(
    session: Session,
    *,
    library: Library,
    config: InspectionConfig,
    dept: str,
    period: Period,
    declaration: Declaration,
    actor: str,
    now: datetime,
) -> SelfCheck:
    """Store (or replace: a new revision) the self-check of `dept` for `period` with what zhidu
    finds; resolve a missing-self-check row of it as submitted late."""
    found = judge(session, library=library, config=config, dept=dept, period=period, now=now)
    result, comparison = compare(declaration, found)
    due = due_at(period, config, library)
    current = session.scalars(
        select(SelfCheck).where(SelfCheck.dept == dept, SelfCheck.period == period.label)
    ).one_or_none()
    values: dict[str, Any] = {
        "submitted_by": actor,
        "submitted_at": now,
        "due_at": due,
        "late": now > due,
        "as_of": found.as_of,
        "policy_version": library.version,
        "declaration": declaration.model_dump(mode="json"),
        "records_checked": found.records_checked,
        "result": result.model_dump(mode="json"),
        "comparison": comparison.model_dump(mode="json"),
        "under_reported": len(comparison.undeclared),
    }
    if current is None:
        current = SelfCheck(dept=dept, period=period.label, revision=1, **values)
        session.add(current)
    else:
        for key, value in values.items():
            setattr(current, key, value)
        current.revision += 1
    session.flush()
    missing = session.scalars(
        select(MissingSelfCheck).where(
            MissingSelfCheck.dept == dept,
            MissingSelfCheck.period == period.label,
            MissingSelfCheck.status == "open",
        )
    ).one_or_none()
    if missing is not None:
        missing.status = "submitted_late"
        missing.resolved_at = now
    append_event(
        session,
        actor=actor,
        action="selfcheck.submitted",
        entity_type="selfcheck",
        entity_id=current.id,
        after={
            "dept": dept,
            "period": period.label,
            "revision": current.revision,
            "declaration": values["declaration"],
        },
        detail={
            "dept": dept,
            "period": period.label,
            "revision": current.revision,
            "late": current.late,
            "findings": len(result.findings),
            "under_reported": current.under_reported,
        },
        now=now,
    )
    session.flush()
    return current


def departments(session: Session) -> list[str]:
    """The company's departments: ids of the current `department` records."""
    return sorted(
        str(i)
        for i in session.scalars(
            select(Record.record_id).where(Record.record_type == "department", Record.is_current == true())
        )
    )


def due_periods(config: InspectionConfig, library: Library, now: datetime) -> list[Period]:
    """The periods (of the configured kind) among the last `lookback_periods` whose self-check
    deadline has passed at `now`."""
    tz = library.company.tz
    current = Period.month_of(now, tz) if config.selfcheck_period == "month" else Period.quarter_of(now, tz)
    out: list[Period] = []
    period = current
    for _ in range(config.selfcheck_lookback_periods):
        period = period.previous()
        if due_at(period, config, library) <= now:
            out.append(period)
    return sorted(out)


def detect_missing(
    session: Session, *, library: Library, config: InspectionConfig, now: datetime, actor: str = "system"
) -> list[MissingSelfCheck]:
    """A missing-self-check row for each department without a self-check submitted by the
    deadline of each due period (once per department and period)."""
    made: list[MissingSelfCheck] = []
    depts = departments(session)
    if not depts:
        return made
    for period in due_periods(config, library, now):
        due = due_at(period, config, library)
        on_time = set(
            session.scalars(
                select(SelfCheck.dept).where(SelfCheck.period == period.label, SelfCheck.submitted_at <= due)
            )
        )
        known = set(
            session.scalars(select(MissingSelfCheck.dept).where(MissingSelfCheck.period == period.label))
        )
        for dept in depts:
            if dept in on_time or dept in known:
                continue
            row = MissingSelfCheck(
                dept=dept, period=period.label, due_at=due, detected_at=now, status="open", resolved_at=None
            )
            session.add(row)
            session.flush()
            append_event(
                session,
                actor=actor,
                action="selfcheck.missing",
                entity_type="selfcheck",
                entity_id=f"{dept}:{period.label}",
                detail={"dept": dept, "period": period.label, "due_at": due.isoformat()},
                now=now,
            )
            made.append(row)
    return made


# --- reads ------------------------------------------------------------------------------------------


def get(session: Session, *, selfcheck_id: int) -> SelfCheck | None:
    return session.get(SelfCheck, selfcheck_id)


def list_selfchecks(
    session: Session,
    *,
    scope: ColumnElement[bool],
    dept: str | None = None,
    period: str | None = None,
    flagged: bool | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[SelfCheck], int]:
    conditions: list[ColumnElement[bool]] = [scope]
    if dept is not None:
        conditions.append(SelfCheck.dept == dept)
    if period is not None:
        conditions.append(SelfCheck.period == period)
    if flagged is True:
        conditions.append(SelfCheck.under_reported > 0)
    elif flagged is False:
        conditions.append(SelfCheck.under_reported == 0)
    total = session.scalar(select(func.count()).select_from(SelfCheck).where(*conditions)) or 0
    rows = session.scalars(
        select(SelfCheck)
        .where(*conditions)
        .order_by(SelfCheck.submitted_at.desc(), SelfCheck.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows), int(total)


def list_missing(
    session: Session,
    *,
    scope: ColumnElement[bool],
    dept: str | None = None,
    period: str | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[Sequence[MissingSelfCheck], int]:
    conditions: list[ColumnElement[bool]] = [scope]
    for column, value in (
        (MissingSelfCheck.dept, dept),
        (MissingSelfCheck.period, period),
        (MissingSelfCheck.status, status),
    ):
        if value is not None:
            conditions.append(column == value)
    total = session.scalar(select(func.count()).select_from(MissingSelfCheck).where(*conditions)) or 0
    rows = session.scalars(
        select(MissingSelfCheck)
        .where(*conditions)
        .order_by(MissingSelfCheck.due_at.desc(), MissingSelfCheck.dept)
        .limit(limit)
        .offset(offset)
    )
    return list(rows), int(total)
