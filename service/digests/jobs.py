"""Job kinds for the scheduler (found by `discover_job_kinds`, which imports this module):

- `digests.weekly` / `digests.monthly`: every active subscription of that cadence gets its digest
  of the last complete ISO week / calendar month before the fire date (company time zone) in the
  outbox, once per (subscription, period) however often the job runs; then the outbox is sent;
- `mail.send`: notice reminders into the outbox, then everything due is sent (retries included).

Params: none.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from service.digests import flows
from service.mail import flows as mail_flows
from service.scheduling.registry import register_job_kind
from service.settings import get_settings

SessionFactory = Callable[[], Session]


def _digests(session_factory: SessionFactory, *, fire_time: datetime, cadence: str) -> dict[str, Any]:
    settings = get_settings()
    today = fire_time.astimezone(settings.tz).date()
    with session_factory() as session:
        built = flows.build_digests(session, settings=settings, cadence=cadence, today=today)
        sent = mail_flows.send_pending(session, settings=settings, now=datetime.now(UTC))
    outcomes: dict[str, int] = {}
    for b in built:
        outcomes[b.outcome] = outcomes.get(b.outcome, 0) + 1
    return {
        "cadence": cadence,
        "period": built[0].period if built else None,
        "digests": outcomes,
        "messages": [b.message_id for b in built if b.message_id is not None],
        "mail": sent.as_dict(),
    }


def run_weekly_digests(
    session_factory: SessionFactory, *, fire_time: datetime, job_id: str, **_params: Any
) -> dict[str, Any]:
    """Weekly digests of the ISO week before the fire date's week."""
    return _digests(session_factory, fire_time=fire_time, cadence="weekly")


def run_monthly_digests(
    session_factory: SessionFactory, *, fire_time: datetime, job_id: str, **_params: Any
) -> dict[str, Any]:
    """Monthly digests of the month before the fire date's month."""
    return _digests(session_factory, fire_time=fire_time, cadence="monthly")


def run_mail_send(
    session_factory: SessionFactory, *, fire_time: datetime, job_id: str, **_params: Any
) -> dict[str, Any]:
    """Send what is due now (the run's time, not the fire time: it catches up on retries)."""
    with session_factory() as session:
        report = mail_flows.send_pending(session, settings=get_settings(), now=datetime.now(UTC))
    return report.as_dict()


def register_scheduled_jobs() -> list[str]:
    """Register this domain's job kinds (idempotent); their names."""
    kinds = {
        "digests.weekly": run_weekly_digests,
        "digests.monthly": run_monthly_digests,
        "mail.send": run_mail_send,
    }
    for name, func in kinds.items():
        register_job_kind(name, func)
    return sorted(kinds)


register_scheduled_jobs()
