"""Use cases on penalties, each owning its transaction: the supervisor's decision, the department's
appeal and the supervisor's decision on it. Proposals are made when a notice is closed
(`service.notices.flows.close`)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy.orm import Session

from service.inspections.config import InspectionConfig
from service.inspections.tx import committed
from service.penalties import service
from service.penalties.models import Penalty, PenaltyAppeal
from service.penalties.schemas import AppealDecisionRequest, DecisionRequest, PenaltyTerms


class NotFoundError(LookupError):
    """No such penalty in the caller's departments."""


def _penalty(session: Session, penalty_id: int, visible: Collection[str] | None) -> Penalty:
    penalty = service.get(session, penalty_id=penalty_id)
    if penalty is None or (visible is not None and penalty.dept not in visible):
        raise NotFoundError(penalty_id)
    return penalty


def decide(
    session: Session,
    *,
    penalty_id: int,
    request: DecisionRequest,
    visible: Collection[str] | None,
    actor: str,
    now: datetime,
) -> Penalty:
    with committed(session):
        service.lock_penalties(session)
        penalty = _penalty(session, penalty_id, visible)
        adjusted = (
            PenaltyTerms(kind=request.kind, amount=request.amount, points=request.points)
            if request.action == "adjust" and request.kind is not None
            else None
        )
        return service.decide(
            session,
            penalty=penalty,
            action=request.action,
            adjusted=adjusted,
            reason=request.reason,
            actor=actor,
            now=now,
        )


def appeal(
    session: Session,
    *,
    config: InspectionConfig,
    penalty_id: int,
    reason: str,
    visible: Collection[str] | None,
    actor: str,
    now: datetime,
) -> tuple[Penalty, PenaltyAppeal]:
    with committed(session):
        service.lock_penalties(session)
        penalty = _penalty(session, penalty_id, visible)
        item = service.appeal(
            session, penalty=penalty, reason=reason, appeal_days=config.appeal_days, actor=actor, now=now
        )
        return penalty, item


def decide_appeal(
    session: Session,
    *,
    penalty_id: int,
    request: AppealDecisionRequest,
    visible: Collection[str] | None,
    actor: str,
    now: datetime,
) -> tuple[Penalty, PenaltyAppeal]:
    with committed(session):
        service.lock_penalties(session)
        penalty = _penalty(session, penalty_id, visible)
        reduced = (
            PenaltyTerms(kind=request.kind, amount=request.amount, points=request.points)
            if request.outcome == "reduced" and request.kind is not None
            else None
        )
        item = service.decide_appeal(
            session,
            penalty=penalty,
            outcome=request.outcome,
            reason=request.reason,
            reduced=reduced,
            actor=actor,
            now=now,
        )
        return penalty, item
