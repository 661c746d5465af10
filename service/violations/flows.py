"""Use cases that own a transaction: a supervisor's decision on a violation."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from service.evaluation.arrival import evaluation_turn, lock_evaluation
from service.violations import service
from service.violations.models import Violation
from service.violations.schemas import Status


def change_status(
    session: Session,
    *,
    violation_id: int,
    to: Status,
    reason: str,
    actor: str,
    policy_version: str,
    now: datetime,
    visible: set[str] | None,
) -> Violation | None:
    """Waive or reopen a violation (audited). None if there is no such violation or it is in a
    department outside `visible` (None: all). Raises service.TransitionError.

    Takes the evaluation lock first, so a decision and an evaluation of the same violation do not
    overwrite each other."""
    with evaluation_turn(session):
        try:
            lock_evaluation(session)
            violation = service.get(session, violation_id=violation_id)
            if violation is None or (visible is not None and violation.dept not in visible):
                session.rollback()
                return None
            service.change_status(
                session,
                violation=violation,
                to=to,
                reason=reason,
                actor=actor,
                policy_version=policy_version,
                now=now,
            )
            session.commit()
        except BaseException:
            session.rollback()
            raise
    return violation
