"""Running a job through the ledger: claim the (job, fire time) row first, run the kind's
function while heartbeating, record the outcome. Also on-demand runs (`run_now`)."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from service.scheduling import flows
from service.scheduling.models import JobRun
from service.scheduling.registry import SessionFactory, UnknownJobKindError, job_kind
from service.scheduling.schemas import RunStatus, RunTrigger

log = logging.getLogger("zhidu.scheduling")
MAX_ERROR_CHARS = 8000


def runner_identity() -> str:
    """host:pid, as the ledger's `runner` and the lease's `holder`."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _jsonable(value: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(json.dumps(dict(value), default=str, ensure_ascii=False))
    return result


class Heartbeat:
    """Renews `heartbeat_at` of the runs this process is executing, every `interval` seconds, from
    one daemon thread; a run whose heartbeat stops (its process died) is swept by the leader."""

    def __init__(self, runner: str, interval: float) -> None:
        self.runner = runner
        self.interval = interval
        self._active: dict[int, tuple[int, SessionFactory]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def track(self, run_id: int, attempt: int, session_factory: SessionFactory) -> None:
        with self._lock:
            self._active[run_id] = (attempt, session_factory)
            if self._thread is None and not self._stopped:
                self._thread = threading.Thread(target=self._loop, name="zhidu-heartbeat", daemon=True)
                self._thread.start()

    def untrack(self, run_id: int) -> None:
        with self._lock:
            self._active.pop(run_id, None)

    def active(self) -> list[int]:
        with self._lock:
            return sorted(self._active)

    def beat(self) -> int:
        with self._lock:
            groups: dict[int, tuple[SessionFactory, list[tuple[int, int]]]] = {}
            for run_id, (attempt, factory) in self._active.items():
                groups.setdefault(id(factory), (factory, []))[1].append((run_id, attempt))
        renewed = 0
        for factory, claims in groups.values():
            try:
                renewed += flows.heartbeat(factory, claims=claims, runner=self.runner)
            except Exception:
                log.warning("heartbeat of runs %s failed", [c[0] for c in claims], exc_info=True)
        return renewed

    def _loop(self) -> None:
        while not self._wake.wait(self.interval):
            with self._lock:
                if not self._active:  # idle: the thread ends; `track` starts another
                    self._thread = None
                    return
            self.beat()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            thread, self._thread = self._thread, None
        self._wake.set()
        if thread is not None:
            thread.join(timeout=5)


class Runner:
    """Executes runs for one process: `runner` is its identity in the ledger."""

    def __init__(self, *, runner: str | None = None, heartbeat_seconds: float = 10.0) -> None:
        self.id = runner or runner_identity()
        self.heartbeat = Heartbeat(self.id, heartbeat_seconds)

    def close(self) -> None:
        self.heartbeat.stop()

    def run_scheduled(
        self,
        session_factory: SessionFactory,
        *,
        job_id: str,
        kind: str,
        fire_time: datetime,
        params: Mapping[str, Any] | None = None,
    ) -> JobRun | None:
        """Run `job_id` for `fire_time` unless the ledger has it already (then None: skipped)."""
        run = flows.claim_run(
            session_factory,
            job_id=job_id,
            kind=kind,
            trigger=RunTrigger.SCHEDULE,
            fire_time=fire_time,
            runner=self.id,
            params=params,
        )
        if run is None:
            log.info("job %s at %s: already in the run ledger, skipped", job_id, fire_time.isoformat())
            return None
        return self.execute(session_factory, run)

    def record_missed(
        self,
        session_factory: SessionFactory,
        *,
        job_id: str,
        kind: str,
        fire_time: datetime,
        grace_seconds: int | None = None,
        reason: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> JobRun | None:
        """Record a fire time that was not run: too late for `grace_seconds`, or `reason`."""
        late_by = datetime.now(UTC) - fire_time
        reason = reason or f"not run: {late_by.total_seconds():.0f} s late, misfire grace {grace_seconds} s"
        log.warning("job %s at %s missed: %s", job_id, fire_time.isoformat(), reason)
        return flows.record_missed(
            session_factory,
            job_id=job_id,
            kind=kind,
            fire_time=fire_time,
            runner=self.id,
            reason=reason,
            params=params,
        )

    def execute(self, session_factory: SessionFactory, run: JobRun) -> JobRun:
        """Run a claimed ledger row (status started, runner = this runner) and record the outcome."""
        status, result, error = RunStatus.FAILED, None, None
        self.heartbeat.track(run.id, run.attempt, session_factory)
        try:
            func = job_kind(run.kind)
            value = func(session_factory, fire_time=run.fire_time, job_id=run.job_id, **run.params)
            if not isinstance(value, Mapping):
                raise TypeError(f"job kind {run.kind!r} returned {type(value).__name__}, expected a dict")
            result = _jsonable(value)
            status = RunStatus.SUCCEEDED
        except UnknownJobKindError as exc:
            error = str(exc)
        except Exception:
            error = traceback.format_exc()[-MAX_ERROR_CHARS:]
            log.exception("job %s (%s) at %s failed", run.job_id, run.kind, run.fire_time.isoformat())
        finally:
            self.heartbeat.untrack(run.id)
        final = flows.finish_run(
            session_factory,
            run_id=run.id,
            attempt=run.attempt,
            runner=self.id,
            status=status,
            result=result,
            error=error,
        )
        if final is None or final.runner != self.id or final.attempt != run.attempt:
            log.warning("run %s was taken over by another runner while running; its outcome stands", run.id)
        return final or run


def request_run(
    session_factory: SessionFactory,
    *,
    kind: str,
    runner: Runner,
    requested_by: str,
    job_id: str | None = None,
    params: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> JobRun:
    """Claim an on-demand run (ledger trigger `manual`, fire time = now) without running it; run it
    with `runner.execute(session_factory, run)`, e.g. in a background task. Raises
    UnknownJobKindError for an unregistered kind (nothing is recorded then)."""
    job_kind(kind)
    now = now or datetime.now(UTC)
    for step in range(1000):
        # The key includes the request time: two requests in the same microsecond get the next one.
        run = flows.claim_run(
            session_factory,
            job_id=job_id or kind,
            kind=kind,
            trigger=RunTrigger.MANUAL,
            fire_time=now + timedelta(microseconds=step),
            runner=runner.id,
            params=params,
            requested_by=requested_by,
            now=now,
        )
        if run is not None:
            return run
    raise RuntimeError(f"could not record an on-demand run of {job_id or kind}")  # pragma: no cover


def run_now(
    session_factory: SessionFactory,
    *,
    kind: str,
    requested_by: str,
    job_id: str | None = None,
    params: Mapping[str, Any] | None = None,
    runner: Runner | None = None,
) -> JobRun:
    """Run `kind` now, in this thread, recorded in the ledger as a manual run (the CLI's way, e.g.
    `zhidu inspect`); returns the finished ledger row (status succeeded or failed)."""
    own = runner is None
    active = runner or Runner()
    try:
        run = request_run(
            session_factory, kind=kind, runner=active, requested_by=requested_by, job_id=job_id, params=params
        )
        return active.execute(session_factory, run)
    finally:
        if own:
            active.close()
