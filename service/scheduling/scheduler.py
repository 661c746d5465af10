"""The scheduler of one process: leader election, then APScheduler 3 on the persisted job store.

Every process (each `zhidu serve`) runs a `SchedulerService`; a thread tries to become leader
(`service.scheduling.leadership`) every `poll_seconds`. The leader starts a BackgroundScheduler
with a SQLAlchemyJobStore on the app database (table `apscheduler_jobs`), `coalesce=True`,
`max_instances=1`, each job's bounded `misfire_grace_time`, the company time zone, and the
`LedgerExecutor`, which hands each due fire time to the run ledger (`Runner.run_scheduled`). The
leader also sweeps runs abandoned by dead processes. Losing leadership stops the scheduler.

APScheduler 3 does not coordinate several schedulers on one job store (its FAQ; agronholm/
apscheduler#231, #129): both would run every job. Hence one leader, and the ledger beneath it.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import sys
import threading
import time
import traceback as tb_module
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
)
from apscheduler.executors.pool import BasePoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.engine import make_url

from service.db.base import engine_for, session_factory
from service.scheduling import flows
from service.scheduling.config import DEFAULT_MISFIRE_GRACE_SECONDS, Schedule, ScheduleConfig
from service.scheduling.leadership import AdvisoryLockLeadership, Leadership, LeaseLeadership
from service.scheduling.registry import SessionFactory, is_registered
from service.scheduling.runner import Runner

log = logging.getLogger("zhidu.scheduling")

SCHEDULED_JOB_REF = "service.scheduling.scheduler:scheduled_job"


@dataclass(frozen=True)
class JobContext:
    """What the executor gives every scheduled job: the process's runner and database."""

    runner: Runner
    session_factory: SessionFactory


def scheduled_job(
    *,
    job_id: str,
    kind: str,
    params: dict[str, Any],
    fire_time: datetime | None = None,
    context: JobContext | None = None,
) -> dict[str, Any]:
    """The callable every persisted job names (by this module path, so the job store can pickle
    it): run `job_id` for `fire_time` through the ledger. `fire_time` and `context` come from the
    `LedgerExecutor` (defaults only so APScheduler's argument check accepts the stored kwargs)."""
    if fire_time is None or context is None:
        raise TypeError(f"job {job_id} must run through the LedgerExecutor (fire_time and context)")
    run = context.runner.run_scheduled(
        context.session_factory, job_id=job_id, kind=kind, fire_time=fire_time, params=params
    )
    return {"run_id": None, "status": "skipped"} if run is None else {"run_id": run.id, "status": run.status}


def _run_job(
    context: JobContext, job: Any, jobstore_alias: str, run_times: list[datetime], logger_name: str
) -> list[Any]:
    """APScheduler's `executors.base.run_job`, passing each fire time to the job and recording a
    fire time missed beyond its grace in the ledger. Returns the scheduler events."""
    events: list[Any] = []
    logger = logging.getLogger(logger_name)
    for run_time in run_times:
        if job.misfire_grace_time is not None:
            late = datetime.now(UTC) - run_time
            if late > timedelta(seconds=job.misfire_grace_time):
                try:
                    context.runner.record_missed(
                        context.session_factory,
                        job_id=job.kwargs.get("job_id", job.id),
                        kind=job.kwargs.get("kind", ""),
                        fire_time=run_time,
                        grace_seconds=job.misfire_grace_time,
                        params=job.kwargs.get("params"),
                    )
                except Exception:
                    logger.exception('recording the missed run of "%s" failed', job)
                events.append(JobExecutionEvent(EVENT_JOB_MISSED, job.id, jobstore_alias, run_time))
                continue
        logger.info('Running job "%s" (scheduled at %s)', job, run_time)
        try:
            retval = job.func(*job.args, **job.kwargs, fire_time=run_time, context=context)
        except BaseException:
            exc, tb = sys.exc_info()[1:]
            events.append(
                JobExecutionEvent(
                    EVENT_JOB_ERROR,
                    job.id,
                    jobstore_alias,
                    run_time,
                    exception=exc,
                    traceback="".join(tb_module.format_tb(tb)),
                )
            )
            logger.exception('Job "%s" raised an exception', job)
        else:
            events.append(
                JobExecutionEvent(EVENT_JOB_EXECUTED, job.id, jobstore_alias, run_time, retval=retval)
            )
    return events


class LedgerExecutor(BasePoolExecutor):  # type: ignore[misc]
    """A thread pool executor (APScheduler's extension point `_do_submit_job`) that runs jobs
    with their scheduled fire time and the ledger context."""

    def __init__(self, context: JobContext, max_workers: int) -> None:
        super().__init__(concurrent.futures.ThreadPoolExecutor(max_workers, thread_name_prefix="zhidu-job"))
        self._context = context

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        def callback(future: concurrent.futures.Future[list[Any]]) -> None:
            exc = future.exception()
            if exc is not None:
                self._run_job_error(job.id, exc, exc.__traceback__)
            else:
                self._run_job_success(job.id, future.result())

        future = self._pool.submit(
            _run_job, self._context, job, job._jobstore_alias, list(run_times), self._logger.name
        )
        future.add_done_callback(callback)


def make_leadership(
    mode: str, *, database_url: str, holder: str, session_factory: SessionFactory, lease_seconds: float
) -> Leadership:
    """`auto`: the advisory lock on PostgreSQL, the lease on SQLite."""
    backend = make_url(database_url).get_backend_name()
    if mode == "advisory" or (mode == "auto" and backend == "postgresql"):
        if backend != "postgresql":
            raise ValueError("scheduler.leadership: advisory needs PostgreSQL; use lease (or auto) on SQLite")
        return AdvisoryLockLeadership(
            database_url=database_url,
            holder=holder,
            session_factory=session_factory,
            lease_seconds=lease_seconds,
        )
    return LeaseLeadership(holder=holder, session_factory=session_factory, lease_seconds=lease_seconds)


class SchedulerService:
    """Leader election + the APScheduler scheduler + the abandoned-run sweeper, for one process."""

    def __init__(
        self,
        *,
        database_url: str,
        config: ScheduleConfig,
        timezone: str,
        runner: Runner | None = None,
        leadership: Leadership | None = None,
    ) -> None:
        """`leadership` defaults to the configured mechanism (`make_leadership`)."""
        self.database_url = database_url
        self.config = config
        self.timezone = ZoneInfo(timezone)
        options = config.options
        self.engine = engine_for(database_url)
        self.session_factory = session_factory(self.engine)
        self._own_runner = runner is None
        self.runner = runner or Runner(heartbeat_seconds=options.heartbeat_seconds)
        self.leadership = leadership or make_leadership(
            options.leadership,
            database_url=database_url,
            holder=self.runner.id,
            session_factory=self.session_factory,
            lease_seconds=options.lease_seconds,
        )
        self._context = JobContext(self.runner, self.session_factory)
        self._scheduler: Any = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._retry_pool = concurrent.futures.ThreadPoolExecutor(
            options.max_workers, thread_name_prefix="zhidu-retry"
        )
        self._next_sweep = 0.0
        self.elected_at: datetime | None = None

    # --- life cycle --------------------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        return self._scheduler is not None

    def start(self) -> None:
        """Start the election thread (returns at once; the first attempt is immediate)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="zhidu-scheduler-election", daemon=True)
        self._thread.start()

    def stop(self, *, wait: bool = True) -> None:
        """Stop scheduling; with `wait`, let running jobs finish first. Then release leadership."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()
        self._demote(wait=wait)
        self._retry_pool.shutdown(wait=wait)
        self.leadership.close()
        if self._own_runner:
            self.runner.close()
        self.engine.dispose()

    def _loop(self) -> None:
        options = self.config.options
        leader_interval = min(options.poll_seconds, options.lease_seconds / 3, options.heartbeat_seconds)
        while not self._stop.is_set():
            try:
                if self.is_leader:
                    if not self.leadership.confirm():
                        log.error("scheduler %s lost leadership: stopping its scheduler", self.runner.id)
                        self._demote(wait=False)
                    elif time.monotonic() >= self._next_sweep:
                        self.sweep()
                elif self.leadership.acquire():
                    self._elect()
            except Exception:
                log.exception("scheduler election loop error")
            self._stop.wait(leader_interval if self.is_leader else options.poll_seconds)

    def _elect(self) -> None:
        log.info("scheduler %s is the leader (%s)", self.runner.id, self.leadership.mechanism)
        options = self.config.options
        scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=engine_for(self.database_url))},
            executors={"default": LedgerExecutor(self._context, options.max_workers)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": DEFAULT_MISFIRE_GRACE_SECONDS,
            },
            timezone=self.timezone,
            daemon=True,
        )
        scheduler.add_listener(self._still_running, EVENT_JOB_MAX_INSTANCES)
        try:
            scheduler.start(paused=True)
            self.sync_jobs(scheduler)
            scheduler.resume()
        except Exception:
            log.exception("starting the scheduler failed; giving up leadership")
            with contextlib.suppress(SchedulerNotRunningError):
                scheduler.shutdown(wait=False)
            self.leadership.release()
            return
        with self._lock:
            self._scheduler = scheduler
            self.elected_at = datetime.now(UTC)
        self._next_sweep = 0.0
        self.sweep()

    def _still_running(self, event: Any) -> None:
        """A fire time skipped because the job's previous run had not finished (max_instances=1):
        record it as missed, so the ledger shows every fire time the scheduler saw."""
        schedule = self.config.get(event.job_id)
        for fire_time in event.scheduled_run_times:
            try:
                self.runner.record_missed(
                    self.session_factory,
                    job_id=event.job_id,
                    kind=schedule.kind if schedule else "",
                    fire_time=fire_time,
                    reason="not run: the previous run of this job was still running (max_instances=1)",
                    params=schedule.params if schedule else None,
                )
            except Exception:
                log.exception("recording the skipped run of %s failed", event.job_id)

    def _demote(self, *, wait: bool) -> None:
        with self._lock:
            scheduler, self._scheduler = self._scheduler, None
            self.elected_at = None
        if scheduler is not None:
            with contextlib.suppress(SchedulerNotRunningError):
                scheduler.shutdown(wait=wait)
        self.leadership.release()

    # --- jobs --------------------------------------------------------------------------------------

    def sync_jobs(self, scheduler: Any) -> None:
        """Make the job store match the configuration, keeping each unchanged job's persisted next
        fire time (so fire times missed while no process led are coalesced on start, not lost):
        new schedules are added, changed ones rescheduled (from now), disabled ones, ones whose
        kind no code registers, and ones no longer configured are removed."""
        wanted: dict[str, Schedule] = {}
        for schedule in self.config.schedules:
            if not schedule.enabled:
                continue
            if not is_registered(schedule.kind):
                log.warning(
                    "schedule %s: no job kind %r is registered; not scheduled", schedule.id, schedule.kind
                )
                continue
            wanted[schedule.id] = schedule
        for job in scheduler.get_jobs():
            if job.id not in wanted:
                log.info("schedule %s removed from the job store", job.id)
                scheduler.remove_job(job.id)
        for schedule in wanted.values():
            trigger = schedule.trigger()
            options: dict[str, Any] = {
                "func": SCHEDULED_JOB_REF,
                "kwargs": {"job_id": schedule.id, "kind": schedule.kind, "params": dict(schedule.params)},
                "misfire_grace_time": schedule.misfire_grace_seconds,
                "coalesce": True,
                "max_instances": 1,
                "name": schedule.id,
            }
            job = scheduler.get_job(schedule.id)
            if job is None:
                scheduler.add_job(trigger=trigger, id=schedule.id, **options)
                log.info("schedule %s added: %s", schedule.id, trigger)
                continue
            if repr(job.trigger) != repr(trigger):
                scheduler.reschedule_job(schedule.id, trigger=trigger)
                log.info("schedule %s changed: %s -> %s", schedule.id, job.trigger, trigger)
            current = {
                "func": job.func_ref,
                "kwargs": job.kwargs,
                "misfire_grace_time": job.misfire_grace_time,
                "coalesce": job.coalesce,
                "max_instances": job.max_instances,
                "name": job.name,
            }
            if current != options:
                scheduler.modify_job(schedule.id, **options)

    def next_fire_times(self) -> dict[str, datetime | None]:
        with self._lock:
            scheduler = self._scheduler
        if scheduler is None:
            return {}
        return {
            job.id: job.next_run_time.astimezone(UTC) if job.next_run_time else None
            for job in scheduler.get_jobs()
        }

    def sweep(self) -> int:
        """Take over runs abandoned by dead processes (retry) or mark them abandoned."""
        options = self.config.options
        self._next_sweep = time.monotonic() + options.heartbeat_seconds
        retried = flows.sweep_stale_runs(
            self.session_factory,
            runner=self.runner.id,
            stale_after=timedelta(seconds=options.stale_after_seconds),
            retries=options.retry_abandoned,
        )
        for run in retried:
            log.warning(
                "retrying run %s (%s at %s), attempt %s", run.id, run.job_id, run.fire_time, run.attempt
            )
            self._retry_pool.submit(self.runner.execute, self.session_factory, run)
        return len(retried)
