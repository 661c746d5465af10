"""The self-check use case: judge a department's period against its declaration, in one
transaction (under the evaluation lock, so the records judged are those stored)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from checks import warm_up
from service.evaluation.arrival import evaluation_turn, lock_evaluation
from service.evaluation.runtime import Runtime
from service.inspections.config import InspectionConfig
from service.inspections.periods import Period
from service.inspections.tx import committed
from service.selfchecks import service
from service.selfchecks.models import SelfCheck
from service.selfchecks.schemas import Declaration


class SelfCheckRefusedError(Exception):
    def __init__(self, message: str, message_zh: str, *, code: str = "period_not_over") -> None:
        super().__init__(message)
        self.message = message
        self.message_zh = message_zh
        self.code = code


def submit(
    session: Session,
    *,
    runtime: Runtime,
    config: InspectionConfig,
    dept: str,
    period: Period,
    declaration: Declaration,
    actor: str,
    now: datetime,
) -> SelfCheck:
    """Store the self-check of `dept` for `period` (which must have ended) with zhidu's result."""
    library = runtime.library
    if now < period.end(library.company.tz):
        raise SelfCheckRefusedError(
            f"the period {period} has not ended: a self-check reports a completed period",
            f"期间 {period} 尚未结束：自查针对已结束的期间",
        )
    warm_up()
    with evaluation_turn(session), committed(session):
        lock_evaluation(session)
        return service.submit(
            session,
            library=library,
            config=config,
            dept=dept,
            period=period,
            declaration=declaration,
            actor=actor,
            now=now,
        )
