"""Penalties in the database: the ladder's proposal for each confirmed finding, the supervisor's
decision, appeals and their decisions, ledgers. Keyword-only functions on a session; they flush but
never commit. Every change appends an audit event.

When is a finding confirmed? When the supervisor closes the notice listing it and the finding is
not waived: the inspection found it, the department answered, the supervision group verified the
rectification and closed the file. Rectifying a finding does not undo it: it still counts.

The occurrence of a confirmed finding is 1 + the penalties not overturned against the same person
for the same rule whose findings were confirmed within the ladder's window (`repeat_window_days`)
before it; the ladder's step for (severity, occurrence) is proposed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, func, select, text
from sqlalchemy.orm import Session

from rules.library import Library
from service.audit.service import append_event, lock_for_append
from service.notices.models import Notice, NoticeItem
from service.penalties.models import Penalty, PenaltyAppeal
from service.penalties.schemas import (
    IN_FORCE,
    KIND_RANK,
    LedgerTotals,
    PenaltyKind,
    PenaltyStatus,
    PenaltyTerms,
)

CENTS = 100
ADVISORY_LOCK = "SELECT pg_advisory_xact_lock(hashtext('zhidu.penalties'), hashtext(current_schema()))"


class PenaltyError(Exception):
    """A refused change (409 in the API)."""

    def __init__(self, message: str, message_zh: str, *, code: str = "invalid_transition") -> None:
        super().__init__(message)
        self.message = message
        self.message_zh = message_zh
        self.code = code


def lock_penalties(session: Session) -> None:
    """Serialise the counting of occurrences: PostgreSQL an advisory lock until the transaction
    ends, SQLite the database's write lock."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(ADVISORY_LOCK))
    else:
        lock_for_append(session)


def to_cents(amount: Decimal | None) -> int | None:
    return None if amount is None else int((amount * CENTS).to_integral_value())


def from_cents(cents: int | None) -> Decimal | None:
    return None if cents is None else (Decimal(cents) / CENTS).quantize(Decimal("0.01"))


def terms(kind: str, cents: int | None, points: int | None) -> PenaltyTerms:
    return PenaltyTerms(kind=PenaltyKind(kind), amount=from_cents(cents), points=points)


def state(p: Penalty) -> dict[str, Any]:
    return {
        "id": p.id,
        "rule": p.rule_id,
        "person": p.person,
        "dept": p.dept,
        "occurrence": p.occurrence,
        "kind": p.kind,
        "amount_cents": p.amount_cents,
        "points": p.points,
        "status": p.status,
    }


def _audit(
    session: Session, *, penalty: Penalty, action: str, actor: str, now: datetime, before: Any, detail: Any
) -> None:
    append_event(
        session,
        actor=actor,
        action=f"penalty.{action}",
        entity_type="penalty",
        entity_id=penalty.id,
        before=before,
        after=state(penalty),
        detail={"rule": penalty.rule_id, "person": penalty.person, "dept": penalty.dept, **detail},
        now=now,
    )


def occurrences_before(session: Session, *, person: str, rule_id: str, since: datetime) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Penalty)
            .where(
                Penalty.person == person,
                Penalty.rule_id == rule_id,
                Penalty.status != PenaltyStatus.OVERTURNED,
                Penalty.confirmed_finding_at > since,
            )
        )
        or 0
    )


def propose(
    session: Session,
    *,
    library: Library,
    notice: Notice,
    items: Sequence[NoticeItem],
    actor: str,
    now: datetime,
) -> list[Penalty]:
    """A proposed penalty per confirmed finding of `notice` (in item order), from the ladder."""
    lock_penalties(session)
    ladder = library.penalties
    since = now - timedelta(days=ladder.repeat_window_days)
    out: list[Penalty] = []
    for item in sorted(items, key=lambda i: i.id):
        person = item.responsible or notice.dept
        occurrence = occurrences_before(session, person=person, rule_id=item.rule_id, since=since) + 1
        step = ladder.step_for(item.severity, occurrence)
        cents = to_cents(step.amount)
        penalty = Penalty(
            violation_id=item.violation_id,
            notice_id=notice.id,
            notice_item_id=item.id,
            rule_id=item.rule_id,
            record_type=item.record_type,
            record_id=item.record_id,
            severity=item.severity,
            dept=notice.dept,
            person=person,
            occurrence=occurrence,
            window_days=ladder.repeat_window_days,
            confirmed_finding_at=now,
            proposed_kind=step.kind,
            proposed_amount_cents=cents,
            proposed_points=step.points,
            kind=step.kind,
            amount_cents=cents,
            points=step.points,
            status=PenaltyStatus.PROPOSED,
            adjusted=False,
        )
        session.add(penalty)
        session.flush()
        _audit(
            session,
            penalty=penalty,
            action="proposed",
            actor=actor,
            now=now,
            before=None,
            detail={
                "notice": notice.number,
                "record": f"{item.record_type}:{item.record_id}",
                "severity": item.severity,
                "occurrence": occurrence,
                "window_days": ladder.repeat_window_days,
                "step": {
                    "kind": step.kind,
                    "amount": None if step.amount is None else str(step.amount),
                    "points": step.points,
                },
            },
        )
        out.append(penalty)
    return out


def decide(
    session: Session,
    *,
    penalty: Penalty,
    action: str,
    adjusted: PenaltyTerms | None,
    reason: str | None,
    actor: str,
    now: datetime,
) -> Penalty:
    """The supervisor confirms the proposal, or adjusts it with a reason."""
    if penalty.status != PenaltyStatus.PROPOSED:
        raise PenaltyError(
            f"penalty {penalty.id} is {penalty.status}: only a proposed penalty is decided",
            f"处罚 {penalty.id} 当前状态为 {penalty.status}：只能对拟处罚作出决定",
        )
    before = state(penalty)
    if action == "adjust":
        assert adjusted is not None
        penalty.kind = adjusted.kind
        penalty.amount_cents = to_cents(adjusted.amount)
        penalty.points = adjusted.points
        penalty.adjusted = True
    penalty.status = PenaltyStatus.CONFIRMED
    penalty.decision_reason = reason
    penalty.decided_by = actor
    penalty.decided_at = now
    session.flush()
    _audit(
        session,
        penalty=penalty,
        action="adjusted" if action == "adjust" else "confirmed",
        actor=actor,
        now=now,
        before=before,
        detail={"reason": reason},
    )
    return penalty


def appeal_of(session: Session, *, penalty_id: int) -> PenaltyAppeal | None:
    return session.scalars(select(PenaltyAppeal).where(PenaltyAppeal.penalty_id == penalty_id)).one_or_none()


def appeal(
    session: Session, *, penalty: Penalty, reason: str, appeal_days: int, actor: str, now: datetime
) -> PenaltyAppeal:
    """The department appeals a confirmed penalty, once, within `appeal_days` of the decision."""
    if penalty.status != PenaltyStatus.CONFIRMED or appeal_of(session, penalty_id=penalty.id) is not None:
        raise PenaltyError(
            f"penalty {penalty.id} is {penalty.status}: only a confirmed penalty not appealed before can be appealed",
            f"处罚 {penalty.id} 当前状态为 {penalty.status}：只能对已确认且未申诉过的处罚申诉",
        )
    assert penalty.decided_at is not None
    deadline = penalty.decided_at + timedelta(days=appeal_days)
    if now > deadline:
        raise PenaltyError(
            f"the appeal period of penalty {penalty.id} ended at {deadline.isoformat(timespec='seconds')} ({appeal_days} days)",
            f"处罚 {penalty.id} 的申诉期已于 {deadline.isoformat(timespec='seconds')} 结束（{appeal_days} 天）",
            code="appeal_period_over",
        )
    before = state(penalty)
    item = PenaltyAppeal(penalty_id=penalty.id, filed_by=actor, filed_at=now, reason=reason, status="pending")
    session.add(item)
    penalty.status = PenaltyStatus.APPEALED
    session.flush()
    _audit(
        session,
        penalty=penalty,
        action="appealed",
        actor=actor,
        now=now,
        before=before,
        detail={"reason": reason},
    )
    return item


def _weight(t: PenaltyTerms) -> tuple[int, Decimal, int]:
    return (KIND_RANK[t.kind], t.amount or Decimal(0), t.points or 0)


def decide_appeal(
    session: Session,
    *,
    penalty: Penalty,
    outcome: str,
    reason: str,
    reduced: PenaltyTerms | None,
    actor: str,
    now: datetime,
) -> PenaltyAppeal:
    """The supervisor decides an appeal: upheld (the penalty stands), overturned (no penalty), or
    reduced (a strictly lighter penalty: a lower kind, or a smaller amount / fewer points)."""
    item = appeal_of(session, penalty_id=penalty.id)
    if penalty.status != PenaltyStatus.APPEALED or item is None or item.status != "pending":
        raise PenaltyError(
            f"penalty {penalty.id} has no pending appeal",
            f"处罚 {penalty.id} 没有待决定的申诉",
        )
    before = state(penalty)
    if outcome == "reduced":
        assert reduced is not None
        current = terms(penalty.kind, penalty.amount_cents, penalty.points)
        if _weight(reduced) >= _weight(current):
            raise PenaltyError(
                "a reduction must be lighter than the penalty in force (a lower kind, or a smaller amount or fewer points)",
                "减轻后的处罚须轻于现处罚（更轻的种类，或更少的金额、分值）",
                code="not_a_reduction",
            )
        penalty.kind = reduced.kind
        penalty.amount_cents = to_cents(reduced.amount)
        penalty.points = reduced.points
    penalty.status = PenaltyStatus(outcome)
    item.status = outcome
    item.decided_by = actor
    item.decided_at = now
    item.decision_reason = reason
    session.flush()
    _audit(
        session,
        penalty=penalty,
        action="appeal_decided",
        actor=actor,
        now=now,
        before=before,
        detail={"outcome": outcome, "reason": reason},
    )
    return item


# --- reads ------------------------------------------------------------------------------------------


def get(session: Session, *, penalty_id: int) -> Penalty | None:
    return session.get(Penalty, penalty_id)


def list_penalties(
    session: Session,
    *,
    scope: ColumnElement[bool],
    person: str | None = None,
    dept: str | None = None,
    rule: str | None = None,
    status: str | None = None,
    notice_id: int | None = None,
    limit: int | None = 50,
    offset: int = 0,
) -> tuple[list[Penalty], int]:
    conditions: list[ColumnElement[bool]] = [scope]
    for column, value in (
        (Penalty.person, person),
        (Penalty.dept, dept),
        (Penalty.rule_id, rule),
        (Penalty.status, status),
        (Penalty.notice_id, notice_id),
    ):
        if value is not None:
            conditions.append(column == value)
    total = session.scalar(select(func.count()).select_from(Penalty).where(*conditions)) or 0
    query = (
        select(Penalty).where(*conditions).order_by(Penalty.confirmed_finding_at.desc(), Penalty.id.desc())
    )
    if limit is not None:
        query = query.limit(limit).offset(offset)
    return list(session.scalars(query)), int(total)


def appeals_of(session: Session, *, penalty_ids: Sequence[int]) -> dict[int, PenaltyAppeal]:
    if not penalty_ids:
        return {}
    return {
        a.penalty_id: a
        for a in session.scalars(select(PenaltyAppeal).where(PenaltyAppeal.penalty_id.in_(list(penalty_ids))))
    }


def totals(penalties: Sequence[Penalty]) -> LedgerTotals:
    in_force = [p for p in penalties if p.status in IN_FORCE]
    kinds = Counter(p.kind for p in in_force)
    return LedgerTotals(
        penalties=len(in_force),
        by_kind=dict(sorted(kinds.items())),
        fines=from_cents(sum(p.amount_cents or 0 for p in in_force if p.kind == PenaltyKind.FINE))
        or Decimal("0.00"),
        points=sum(p.points or 0 for p in in_force if p.kind == PenaltyKind.PERFORMANCE_POINTS),
        demotions=kinds.get(PenaltyKind.DEMOTION, 0),
        proposed=sum(1 for p in penalties if p.status == PenaltyStatus.PROPOSED),
        overturned=sum(1 for p in penalties if p.status == PenaltyStatus.OVERTURNED),
    )
