"""Use cases of the scheduler that own a transaction: claiming and finishing runs in the ledger,
sweeping abandoned runs, the leader lease, and reading schedules and runs."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.audit import service as audit
from service.scheduling import service
from service.scheduling.config import ScheduleConfig
from service.scheduling.models import JobRun
from service.scheduling.registry import is_registered
from service.scheduling.schemas import (
    LastRunRead,
    LeaderRead,
    RunStatus,
    RunTrigger,
    ScheduleRead,
    SchedulesRead,
)

SessionFactory = Callable[[], Session]
LEASE_NAME = "scheduler"


def claim_run(
    session_factory: SessionFactory,
    *,
    job_id: str,
    kind: str,
    trigger: RunTrigger,
    fire_time: datetime,
    runner: str,
    params: Mapping[str, Any] | None = None,
    requested_by: str | None = None,
    now: datetime | None = None,
) -> JobRun | None:
    """Insert the ledger row of (job_id, fire_time, trigger) as `started`, committed in a
    transaction of its own BEFORE the job runs. None if the row exists: another scheduler ran, or
    is running, that fire time (or an earlier incarnation of this one did), so skip it.

    A manual run also appends `job.run_requested` to the audit trail, in the same transaction."""
    now = now or datetime.now(UTC)
    try:
        with session_factory() as session, session.begin():
            run = service.insert_run(
                session,
                job_id=job_id,
                kind=kind,
                trigger=trigger,
                fire_time=fire_time,
                runner=runner,
                params=params,
                requested_by=requested_by,
                now=now,
            )
            if trigger == RunTrigger.MANUAL:
                audit.append_event(
                    session,
                    actor=requested_by or "system",
                    action="job.run_requested",
                    entity_type="job",
                    entity_id=job_id,
                    after={"run_id": run.id, "kind": kind, "params": dict(params or {})},
                    detail={"run_id": run.id, "kind": kind, "runner": runner},
                    now=now,
                )
            return run
    except IntegrityError:
        with session_factory() as session:
            if service.find_run(session, job_id=job_id, fire_time=fire_time, trigger=trigger) is None:
                raise  # not the ledger key: a real error
        return None


def record_missed(
    session_factory: SessionFactory,
    *,
    job_id: str,
    kind: str,
    fire_time: datetime,
    runner: str,
    reason: str,
    params: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> JobRun | None:
    """Record that a fire time was not run (later than its misfire grace, or its previous run
    was still going) as `missed`, with `reason`. None if the fire time is in the ledger already
    (someone ran it)."""
    now = now or datetime.now(UTC)
    try:
        with session_factory() as session, session.begin():
            return service.insert_run(
                session,
                job_id=job_id,
                kind=kind,
                trigger=RunTrigger.SCHEDULE,
                fire_time=fire_time,
                runner=runner,
                params=params,
                status=RunStatus.MISSED,
                error=reason,
                now=now,
            )
    except IntegrityError:
        with session_factory() as session:
            if (
                service.find_run(session, job_id=job_id, fire_time=fire_time, trigger=RunTrigger.SCHEDULE)
                is None
            ):
                raise
        return None


def finish_run(
    session_factory: SessionFactory,
    *,
    run_id: int,
    attempt: int,
    runner: str,
    status: RunStatus,
    result: Mapping[str, Any] | None = None,
    error: str | None = None,
    now: datetime | None = None,
) -> JobRun | None:
    """Record a run's outcome; returns the row as it now is (None: unknown id)."""
    with session_factory() as session, session.begin():
        service.finish_run(
            session,
            run_id=run_id,
            attempt=attempt,
            runner=runner,
            status=status,
            result=result,
            error=error,
            now=now or datetime.now(UTC),
        )
    with session_factory() as session:
        return service.get_run(session, run_id=run_id)


def heartbeat(
    session_factory: SessionFactory,
    *,
    claims: Iterable[tuple[int, int]],
    runner: str,
    now: datetime | None = None,
) -> int:
    with session_factory() as session, session.begin():
        return service.touch_runs(session, claims=claims, runner=runner, now=now or datetime.now(UTC))


def sweep_stale_runs(
    session_factory: SessionFactory,
    *,
    runner: str,
    stale_after: timedelta,
    retries: int,
    now: datetime | None = None,
) -> list[JobRun]:
    """Runs left `started` by a process that stopped heartbeating (it died mid-run): each is
    taken over for another attempt while attempts <= `retries`, else marked `abandoned`.
    Returns the runs taken over (now `started` by `runner`); the caller runs them."""
    now = now or datetime.now(UTC)
    cutoff = now - stale_after
    with session_factory() as session:
        stale = [
            (r.id, r.attempt, r.runner, r.heartbeat_at) for r in service.stale_runs(session, cutoff=cutoff)
        ]
    retried: list[JobRun] = []
    for run_id, attempt, previous, last_beat in stale:
        note = (
            f"attempt {attempt} by {previous} abandoned: no heartbeat since {last_beat.isoformat()} "
            f"(stale after {stale_after.total_seconds():g} s)"
        )
        with session_factory() as session, session.begin():
            if attempt <= retries:
                if service.reclaim_run(
                    session,
                    run_id=run_id,
                    attempt=attempt,
                    runner=runner,
                    cutoff=cutoff,
                    note=note + f"; retried as attempt {attempt + 1} by {runner}",
                    now=now,
                ):
                    run = service.get_run(session, run_id=run_id)
                    if run is not None:
                        retried.append(run)
            else:
                service.abandon_run(
                    session, run_id=run_id, attempt=attempt, cutoff=cutoff, note=note, now=now
                )
    return retried


def get_run(session_factory: SessionFactory, *, run_id: int) -> JobRun | None:
    with session_factory() as session:
        return service.get_run(session, run_id=run_id)


def browse_runs(
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
    """One page of the ledger, newest fire time first, and the number matching (read only)."""
    return service.list_runs(
        session,
        job_id=job_id,
        kind=kind,
        status=status,
        trigger=trigger,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )


# --- leadership ----------------------------------------------------------------------------------


def acquire_lease(
    session_factory: SessionFactory, *, holder: str, ttl: timedelta, now: datetime | None = None
) -> bool:
    """Lease leadership: become (or stay) the leader if the lease is free, expired or ours."""
    now = now or datetime.now(UTC)
    expires_at = now + ttl
    with session_factory() as session, session.begin():
        lease = service.get_lease(session, name=LEASE_NAME)
        if lease is not None:
            if lease.holder == holder:
                return service.renew_lease(
                    session, name=LEASE_NAME, holder=holder, now=now, expires_at=expires_at
                )
            if lease.expires_at > now:
                return False
            return service.take_expired_lease(
                session,
                name=LEASE_NAME,
                previous_holder=lease.holder,
                holder=holder,
                mechanism="lease",
                now=now,
                expires_at=expires_at,
            )
    try:
        with session_factory() as session, session.begin():
            service.insert_lease(
                session, name=LEASE_NAME, holder=holder, mechanism="lease", now=now, expires_at=expires_at
            )
            return True
    except IntegrityError:
        return False  # another process inserted it first


def renew_lease(
    session_factory: SessionFactory, *, holder: str, ttl: timedelta, now: datetime | None = None
) -> bool:
    now = now or datetime.now(UTC)
    with session_factory() as session, session.begin():
        return service.renew_lease(session, name=LEASE_NAME, holder=holder, now=now, expires_at=now + ttl)


def release_lease(session_factory: SessionFactory, *, holder: str, now: datetime | None = None) -> bool:
    with session_factory() as session, session.begin():
        return service.release_lease(session, name=LEASE_NAME, holder=holder, now=now or datetime.now(UTC))


def record_leader(
    session_factory: SessionFactory,
    *,
    holder: str,
    mechanism: str,
    ttl: timedelta,
    now: datetime | None = None,
) -> None:
    """Advisory-lock leadership: write who holds the lock into the lease row (for display)."""
    now = now or datetime.now(UTC)
    with session_factory() as session, session.begin():
        if service.claim_lease_row(
            session, name=LEASE_NAME, holder=holder, mechanism=mechanism, now=now, expires_at=now + ttl
        ):
            return
    try:
        with session_factory() as session, session.begin():
            service.insert_lease(
                session, name=LEASE_NAME, holder=holder, mechanism=mechanism, now=now, expires_at=now + ttl
            )
    except IntegrityError:
        with session_factory() as session, session.begin():
            service.claim_lease_row(
                session, name=LEASE_NAME, holder=holder, mechanism=mechanism, now=now, expires_at=now + ttl
            )


# --- reading schedules ---------------------------------------------------------------------------


def leader(
    session: Session, *, now: datetime, advisory_key: Callable[[Session], int] | None = None
) -> LeaderRead | None:
    """Who leads, from the lease row; `active` from the advisory lock itself on PostgreSQL."""
    lease = service.get_lease(session, name=LEASE_NAME)
    if lease is None:
        return None
    if (
        lease.mechanism == "advisory"
        and advisory_key is not None
        and session.get_bind().dialect.name == "postgresql"
    ):
        active = service.advisory_lock_held(session, key=advisory_key(session))
    else:
        active = lease.expires_at > now
    return LeaderRead(
        holder=lease.holder,
        mechanism=lease.mechanism,
        acquired_at=lease.acquired_at,
        renewed_at=lease.renewed_at,
        expires_at=lease.expires_at,
        active=active,
    )


def overview(
    session: Session,
    *,
    config: ScheduleConfig,
    now: datetime | None = None,
    advisory_key: Callable[[Session], int] | None = None,
) -> SchedulesRead:
    """Every configured schedule with its next fire time (from the job store) and last run, and
    the leader (read only)."""
    now = now or datetime.now(UTC)
    ids = [s.id for s in config.schedules]
    next_times = service.next_run_times(session, job_ids=ids)
    last = service.last_runs(session, job_ids=ids)
    schedules = [
        ScheduleRead(
            job_id=s.id,
            kind=s.kind,
            kind_registered=is_registered(s.kind),
            cron=dict(s.cron),
            timezone=s.timezone,
            misfire_grace_seconds=s.misfire_grace_seconds,
            enabled=s.enabled,
            params=dict(s.params),
            description_zh=s.description_zh,
            description_en=s.description_en,
            next_fire_time=next_times.get(s.id),
            last_run=LastRunRead.model_validate(last[s.id]) if s.id in last else None,
        )
        for s in config.schedules
    ]
    return SchedulesRead(
        source=config.source, leader=leader(session, now=now, advisory_key=advisory_key), schedules=schedules
    )
