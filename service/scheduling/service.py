"""The run ledger, the leader lease and the job store, on a session. Keyword-only functions that
flush but never commit: the caller's flow owns the transaction."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, func, select, text, update
from sqlalchemy.orm import Session

from service.scheduling.models import JobRun, SchedulerLease, apscheduler_jobs
from service.scheduling.schemas import RunStatus, RunTrigger

_NO_SYNC = {"synchronize_session": False}


def _aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"`{name}` must be a timezone-aware datetime")


def _rowcount(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount)


# --- the run ledger ------------------------------------------------------------------------------


def insert_run(
    session: Session,
    *,
    job_id: str,
    kind: str,
    trigger: RunTrigger,
    fire_time: datetime,
    runner: str,
    now: datetime,
    status: RunStatus = RunStatus.STARTED,
    params: Mapping[str, Any] | None = None,
    requested_by: str | None = None,
    error: str | None = None,
) -> JobRun:
    """Insert a ledger row and flush: raises IntegrityError if (job_id, fire_time, trigger) exists."""
    _aware(fire_time, "fire_time")
    _aware(now, "now")
    run = JobRun(
        job_id=job_id,
        kind=kind,
        trigger=str(trigger),
        fire_time=fire_time.astimezone(UTC),
        status=str(status),
        attempt=1,
        runner=runner,
        requested_by=requested_by,
        params=dict(params or {}),
        started_at=now,
        heartbeat_at=now,
        finished_at=None if status == RunStatus.STARTED else now,
        result=None,
        error=error,
    )
    session.add(run)
    session.flush()
    return run


def find_run(session: Session, *, job_id: str, fire_time: datetime, trigger: RunTrigger) -> JobRun | None:
    _aware(fire_time, "fire_time")
    return session.scalar(
        select(JobRun).where(
            JobRun.job_id == job_id, JobRun.fire_time == fire_time, JobRun.trigger == str(trigger)
        )
    )


def get_run(session: Session, *, run_id: int) -> JobRun | None:
    return session.get(JobRun, run_id)


def finish_run(
    session: Session,
    *,
    run_id: int,
    attempt: int,
    runner: str,
    status: RunStatus,
    now: datetime,
    result: Mapping[str, Any] | None = None,
    error: str | None = None,
) -> bool:
    """Record the end of a run this runner claimed. False if the claim is no longer ours (the run
    was declared abandoned and retried elsewhere): the retry's outcome stands."""
    _aware(now, "now")
    values: dict[str, Any] = {"status": str(status), "finished_at": now, "heartbeat_at": now}
    if result is not None:
        values["result"] = dict(result)
    if error is not None:
        values["error"] = error
    updated = session.execute(
        update(JobRun)
        .where(
            JobRun.id == run_id,
            JobRun.attempt == attempt,
            JobRun.runner == runner,
            JobRun.status == str(RunStatus.STARTED),
        )
        .values(**values)
        .execution_options(**_NO_SYNC)
    )
    return _rowcount(updated) == 1


def touch_runs(session: Session, *, claims: Iterable[tuple[int, int]], runner: str, now: datetime) -> int:
    """Renew the heartbeat of runs (id, attempt) this runner is executing; the number renewed."""
    total = 0
    for run_id, attempt in claims:
        updated = session.execute(
            update(JobRun)
            .where(
                JobRun.id == run_id,
                JobRun.attempt == attempt,
                JobRun.runner == runner,
                JobRun.status == str(RunStatus.STARTED),
            )
            .values(heartbeat_at=now)
            .execution_options(**_NO_SYNC)
        )
        total += _rowcount(updated)
    return total


def stale_runs(session: Session, *, cutoff: datetime, limit: int = 100) -> list[JobRun]:
    """Runs still `started` whose heartbeat is older than `cutoff`: their process died."""
    _aware(cutoff, "cutoff")
    return list(
        session.scalars(
            select(JobRun)
            .where(JobRun.status == str(RunStatus.STARTED), JobRun.heartbeat_at < cutoff)
            .order_by(JobRun.id)
            .limit(limit)
        )
    )


def reclaim_run(
    session: Session, *, run_id: int, attempt: int, runner: str, cutoff: datetime, note: str, now: datetime
) -> bool:
    """Take over a stale run for a retry (attempt + 1). Conditional on the row being exactly as
    seen (same attempt, still stale), so of several processes trying, one wins."""
    updated = session.execute(
        update(JobRun)
        .where(
            JobRun.id == run_id,
            JobRun.attempt == attempt,
            JobRun.status == str(RunStatus.STARTED),
            JobRun.heartbeat_at < cutoff,
        )
        .values(attempt=attempt + 1, runner=runner, started_at=now, heartbeat_at=now, error=note)
        .execution_options(**_NO_SYNC)
    )
    return _rowcount(updated) == 1


def abandon_run(
    session: Session, *, run_id: int, attempt: int, cutoff: datetime, note: str, now: datetime
) -> bool:
    updated = session.execute(
        update(JobRun)
        .where(
            JobRun.id == run_id,
            JobRun.attempt == attempt,
            JobRun.status == str(RunStatus.STARTED),
            JobRun.heartbeat_at < cutoff,
        )
        .values(status=str(RunStatus.ABANDONED), finished_at=now, error=note)
        .execution_options(**_NO_SYNC)
    )
    return _rowcount(updated) == 1


def list_runs(
    session: Session,
    *,
    job_id: str | None = None,
    kind: str | None = None,
    status: RunStatus | None = None,
    trigger: RunTrigger | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[JobRun], int]:
    """Runs matching every filter (fire time `since` inclusive, `until` exclusive), newest fire
    time first, one page of them and the number of matches."""
    conditions: list[ColumnElement[bool]] = []
    if job_id is not None:
        conditions.append(JobRun.job_id == job_id)
    if kind is not None:
        conditions.append(JobRun.kind == kind)
    if status is not None:
        conditions.append(JobRun.status == str(status))
    if trigger is not None:
        conditions.append(JobRun.trigger == str(trigger))
    if since is not None:
        conditions.append(JobRun.fire_time >= since)
    if until is not None:
        conditions.append(JobRun.fire_time < until)
    total = session.scalar(select(func.count()).select_from(JobRun).where(*conditions)) or 0
    runs = session.scalars(
        select(JobRun)
        .where(*conditions)
        .order_by(JobRun.fire_time.desc(), JobRun.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(runs), int(total)


def last_runs(session: Session, *, job_ids: Sequence[str]) -> dict[str, JobRun]:
    """The latest run (by fire time) of each job id."""
    if not job_ids:
        return {}
    latest = (
        select(JobRun.job_id, func.max(JobRun.fire_time).label("fire_time"))
        .where(JobRun.job_id.in_(list(job_ids)))
        .group_by(JobRun.job_id)
        .subquery()
    )
    rows = session.scalars(
        select(JobRun)
        .join(latest, (JobRun.job_id == latest.c.job_id) & (JobRun.fire_time == latest.c.fire_time))
        .order_by(JobRun.id)
    )
    return {run.job_id: run for run in rows}


# --- the leader lease ----------------------------------------------------------------------------


def get_lease(session: Session, *, name: str) -> SchedulerLease | None:
    return session.scalar(select(SchedulerLease).where(SchedulerLease.name == name))


def insert_lease(
    session: Session, *, name: str, holder: str, mechanism: str, now: datetime, expires_at: datetime
) -> SchedulerLease:
    """Flush a new lease row: raises IntegrityError if another process inserted it first."""
    lease = SchedulerLease(
        name=name, holder=holder, mechanism=mechanism, acquired_at=now, renewed_at=now, expires_at=expires_at
    )
    session.add(lease)
    session.flush()
    return lease


def renew_lease(session: Session, *, name: str, holder: str, now: datetime, expires_at: datetime) -> bool:
    """Extend `holder`'s lease; False if the lease is someone else's now."""
    updated = session.execute(
        update(SchedulerLease)
        .where(SchedulerLease.name == name, SchedulerLease.holder == holder)
        .values(renewed_at=now, expires_at=expires_at)
        .execution_options(**_NO_SYNC)
    )
    return _rowcount(updated) == 1


def take_expired_lease(
    session: Session,
    *,
    name: str,
    previous_holder: str,
    holder: str,
    mechanism: str,
    now: datetime,
    expires_at: datetime,
) -> bool:
    """Take the lease if it is still `previous_holder`'s and expired (or released): of several
    takers, one wins."""
    updated = session.execute(
        update(SchedulerLease)
        .where(
            SchedulerLease.name == name,
            SchedulerLease.holder == previous_holder,
            SchedulerLease.expires_at <= now,
        )
        .values(holder=holder, mechanism=mechanism, acquired_at=now, renewed_at=now, expires_at=expires_at)
        .execution_options(**_NO_SYNC)
    )
    return _rowcount(updated) == 1


def claim_lease_row(
    session: Session, *, name: str, holder: str, mechanism: str, now: datetime, expires_at: datetime
) -> bool:
    """Make the row say `holder` leads (advisory mode: the lock decides, the row informs). False
    if there is no row yet (insert it then)."""
    updated = session.execute(
        update(SchedulerLease)
        .where(SchedulerLease.name == name)
        .values(holder=holder, mechanism=mechanism, acquired_at=now, renewed_at=now, expires_at=expires_at)
        .execution_options(**_NO_SYNC)
    )
    return _rowcount(updated) == 1


def release_lease(session: Session, *, name: str, holder: str, now: datetime) -> bool:
    """Expire `holder`'s lease now, so a follower need not wait for it to run out."""
    updated = session.execute(
        update(SchedulerLease)
        .where(SchedulerLease.name == name, SchedulerLease.holder == holder)
        .values(expires_at=now, renewed_at=now)
        .execution_options(**_NO_SYNC)
    )
    return _rowcount(updated) == 1


def advisory_lock_held(session: Session, *, key: int) -> bool:
    """PostgreSQL: does any session hold the advisory lock `key` (a signed 64-bit key) now?"""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    held = session.scalar(
        text(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND classid::bigint = :hi AND objid::bigint = :lo AND objsubid = 1)"
        ),
        {"hi": unsigned >> 32, "lo": unsigned & 0xFFFFFFFF},
    )
    return bool(held)


# --- the job store -------------------------------------------------------------------------------


def next_run_times(session: Session, *, job_ids: Sequence[str]) -> dict[str, datetime | None]:
    """Next fire time of each job in APScheduler's store (absent: not scheduled; None: paused)."""
    if not job_ids:
        return {}
    rows = session.execute(
        select(apscheduler_jobs.c.id, apscheduler_jobs.c.next_run_time).where(
            apscheduler_jobs.c.id.in_(list(job_ids))
        )
    )
    return {
        str(job_id): None if value is None else datetime.fromtimestamp(float(value), UTC)
        for job_id, value in rows
    }
