"""Job kinds for the scheduler (`service.scheduling`): found by `discover_job_kinds`, which imports
this module; `register_scheduled_jobs()` registers them (again: a no-op).

- `inspection.monthly`: the month before the fire time's month (company time zone);
- `inspection.quarterly`: the quarter before the fire time's quarter;
- `notices.sweep`: expired waivers, reminders, escalation, missing self-checks (daily is enough).

Params (from the schedule): `depts` (a list; default every department), `issue_notices` (default
true). A retried run of the same (job, fire time) finds the first attempt's inspection through its
run key instead of inspecting again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from service.evaluation.runtime import runtime_for
from service.inspections import flows
from service.inspections.config import load_config
from service.inspections.periods import Period
from service.scheduling.registry import register_job_kind
from service.settings import get_settings

SessionFactory = Callable[[], Session]


def _inspect(
    session_factory: SessionFactory,
    *,
    fire_time: datetime,
    job_id: str,
    quarterly: bool,
    depts: Sequence[str] | None = None,
    issue_notices: bool = True,
) -> dict[str, Any]:
    settings = get_settings()
    runtime = runtime_for(settings)
    config = load_config(settings.policies_dir, runtime.library.model)
    tz = runtime.library.company.tz
    current = Period.quarter_of(fire_time, tz) if quarterly else Period.month_of(fire_time, tz)
    period = current.previous()
    with session_factory() as session:
        outcome = flows.run_inspection(
            session,
            runtime=runtime,
            config=config,
            period=period,
            depts=None if depts is None else list(depts),
            actor="system",
            trigger="scheduled",
            now=datetime.now(UTC),
            run_key=f"{job_id}@{fire_time.astimezone(UTC).isoformat()}",
            issue=issue_notices,
        )
    inspection = outcome.inspection
    return {
        "inspection_id": inspection.id,
        "period": inspection.period,
        "as_of": inspection.as_of.isoformat(),
        "replayed": outcome.replayed,
        "counts": dict(inspection.counts),
        "notices": [n.number for n in outcome.notices],
    }


def run_monthly_inspection(
    session_factory: SessionFactory, *, fire_time: datetime, job_id: str, **params: Any
) -> dict[str, Any]:
    """Inspect the month before the fire time's month."""
    return _inspect(session_factory, fire_time=fire_time, job_id=job_id, quarterly=False, **params)


def run_quarterly_inspection(
    session_factory: SessionFactory, *, fire_time: datetime, job_id: str, **params: Any
) -> dict[str, Any]:
    """Inspect the quarter before the fire time's quarter."""
    return _inspect(session_factory, fire_time=fire_time, job_id=job_id, quarterly=True, **params)


def run_sweep(
    session_factory: SessionFactory, *, fire_time: datetime, job_id: str, **_params: Any
) -> dict[str, Any]:
    """Expire waivers, send reminders, escalate overdue notices, record missing self-checks (the
    time is the run's, not the fire time: the sweep catches up on whatever is due)."""
    from service.notices import flows as notice_flows

    settings = get_settings()
    runtime = runtime_for(settings)
    config = load_config(settings.policies_dir, runtime.library.model)
    with session_factory() as session:
        report = notice_flows.sweep(session, runtime=runtime, config=config, now=datetime.now(UTC))
    return report.model_dump(mode="json")


def register_scheduled_jobs() -> list[str]:
    """Register this domain's job kinds (idempotent); their names."""
    kinds = {
        "inspection.monthly": run_monthly_inspection,
        "inspection.quarterly": run_quarterly_inspection,
        "notices.sweep": run_sweep,
    }
    for name, func in kinds.items():
        register_job_kind(name, func)
    return sorted(kinds)


register_scheduled_jobs()
