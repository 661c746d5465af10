"""Scheduling: schedules.yaml validation; the run ledger's exactly-once claims under concurrency;
leader election (lease row, PostgreSQL advisory lock); the sweeper of runs abandoned by dead
processes; misfire grace and coalescing with deterministic time; two real scheduler processes
with the leader killed; a restart mid-schedule; the API and the CLI.

Every database test runs on SQLite and, with ZHIDU_TEST_DATABASE_URL, on PostgreSQL, each on a
fresh database (`empty_db_url`): schedulers commit, and other processes must see their work.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool
from typer.testing import CliRunner

from rules.problems import InputError
from service.db.base import engine_for, session_factory
from service.db.migrate import upgrade
from service.scheduling import flows, lifecycle
from service.scheduling.config import Schedule, ScheduleConfig, SchedulerOptions, load_config
from service.scheduling.leadership import AdvisoryLockLeadership, Leadership, LeaseLeadership
from service.scheduling.models import JobRun, SchedulerLease
from service.scheduling.registry import (
    UnknownJobKindError,
    is_registered,
    register_job_kind,
    unregister_job_kind,
)
from service.scheduling.runner import Runner, run_now, runner_identity
from service.scheduling.scheduler import SchedulerService
from service.scheduling.schemas import RunStatus, RunTrigger
from service.settings import Settings, get_settings

pytest_plugins = ["tests.api_fixtures"]

if TYPE_CHECKING:
    from tests.api_fixtures import World

ROOT = Path(__file__).resolve().parents[1]
SHANGHAI = ZoneInfo("Asia/Shanghai")
HOST = socket.gethostname()
EFFECT = "test.effect"  # writes a row per execution into sched_effects (not the ledger)
ECHO = "test.echo"  # touches nothing; returns its arguments

SessionFactory = sessionmaker[Session]


def record_effect(
    session_factory: Callable[[], Session], *, fire_time: datetime, job_id: str, sleep: float = 0.0
) -> dict[str, Any]:
    time.sleep(sleep)
    with session_factory() as session, session.begin():
        session.execute(
            text("INSERT INTO sched_effects (job_id, fire_time, pid) VALUES (:job, :fire, :pid)"),
            {"job": job_id, "fire": fire_time.astimezone(UTC).isoformat(), "pid": os.getpid()},
        )
    return {"pid": os.getpid()}


def echo(
    _session_factory: Callable[[], Session], *, fire_time: datetime, job_id: str, **params: Any
) -> dict[str, Any]:
    return {"job_id": job_id, "fire_time": fire_time.isoformat(), "params": params}


register_job_kind(EFFECT, record_effect)
register_job_kind(ECHO, echo)


# --- fixtures and helpers ------------------------------------------------------------------------


@pytest.fixture
def url(empty_db_url: str) -> str:
    """A migrated, empty database of the test's backend, with a side-effect table for test jobs."""
    upgrade(empty_db_url)
    engine = engine_for(empty_db_url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "CREATE TABLE sched_effects (job_id VARCHAR(128) NOT NULL, fire_time VARCHAR(40) NOT NULL, "
                "pid INTEGER NOT NULL)"
            )
    finally:
        engine.dispose()
    return empty_db_url


@pytest.fixture
def factory(url: str) -> Iterator[SessionFactory]:
    engine = engine_for(url)
    yield session_factory(engine)
    engine.dispose()


def backend(url: str) -> str:
    return make_url(url).get_backend_name()


@dataclass(frozen=True)
class Effect:
    job_id: str
    fire_time: datetime
    pid: int


def effects(factory: SessionFactory) -> list[Effect]:
    with factory() as session:
        rows = session.execute(text("SELECT job_id, fire_time, pid FROM sched_effects")).all()
    return sorted(
        (Effect(job, datetime.fromisoformat(fire), int(pid)) for job, fire, pid in rows),
        key=lambda e: (e.fire_time, e.pid),
    )


def ledger(factory: SessionFactory, job_id: str | None = None) -> list[JobRun]:
    with factory() as session:
        query = select(JobRun).order_by(JobRun.fire_time, JobRun.id)
        if job_id is not None:
            query = query.where(JobRun.job_id == job_id)
        return list(session.scalars(query))


def lease(factory: SessionFactory) -> SchedulerLease | None:
    with factory() as session:
        return session.get(SchedulerLease, flows.LEASE_NAME)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for: {what}")
        time.sleep(0.05)


def config(*schedules: Schedule, **options: Any) -> ScheduleConfig:
    fast = {
        "poll_seconds": 0.2,
        "lease_seconds": 1.0,
        "heartbeat_seconds": 0.2,
        "stale_after_seconds": 2.0,
        **options,
    }
    return ScheduleConfig(source="test", options=SchedulerOptions(**fast), schedules=schedules)


def schedule(job_id: str, kind: str = EFFECT, grace: int = 30, **cron: str) -> Schedule:
    return Schedule(
        id=job_id,
        kind=kind,
        cron=cron or {"second": "*"},
        timezone="Asia/Shanghai",
        misfire_grace_seconds=grace,
    )


def consecutive(times: list[datetime], step: timedelta) -> bool:
    return all(b - a == step for a, b in itertools.pairwise(times))


# --- schedules.yaml ------------------------------------------------------------------------------


def test_default_schedules_are_monthly_and_quarterly_in_shanghai() -> None:
    cfg = load_config(ROOT / "policies" / "schedules.yaml", default_timezone="Asia/Shanghai")
    monthly, quarterly = (cfg.get("inspection.monthly"), cfg.get("inspection.quarterly"))
    assert monthly is not None
    assert quarterly is not None
    assert (monthly.kind, quarterly.kind) == ("inspection.monthly", "inspection.quarterly")
    assert monthly.timezone == quarterly.timezone == "Asia/Shanghai"
    assert 0 < monthly.misfire_grace_seconds <= 7 * 24 * 3600
    mid_october = datetime(2026, 10, 15, 12, 0, tzinfo=SHANGHAI)
    # On the 6th: after the inspections' grace days (policies/inspections.yaml), so late records count.
    assert monthly.next_fire_time(mid_october) == datetime(2026, 11, 6, 2, 0, tzinfo=SHANGHAI)
    assert quarterly.next_fire_time(mid_october) == datetime(2027, 1, 6, 3, 0, tzinfo=SHANGHAI)
    sweep = cfg.get("notices.sweep")
    assert sweep is not None
    assert sweep.next_fire_time(mid_october) == datetime(2026, 10, 16, 8, 0, tzinfo=SHANGHAI)
    assert cfg.options.leadership == "auto"


def test_timezone_defaults_to_the_setting_and_crontab_strings_work(tmp_path: Path) -> None:
    path = tmp_path / "schedules.yaml"
    path.write_text(
        "schedules:\n"
        "  - {id: weekdays, kind: digest.weekly, cron: '30 8 * * mon-fri', misfire_grace_seconds: 600}\n"
        "  - {id: utc, kind: digest.weekly, cron: {hour: 1}, timezone: UTC}\n",
        encoding="utf-8",
    )
    cfg = load_config(path, default_timezone="Europe/Berlin")
    weekdays, utc = cfg.schedules
    assert weekdays.timezone == "Europe/Berlin"
    assert weekdays.cron == {"minute": "30", "hour": "8", "day": "*", "month": "*", "day_of_week": "mon-fri"}
    saturday = datetime(2026, 3, 7, 12, 0, tzinfo=UTC)
    assert weekdays.next_fire_time(saturday) == datetime(2026, 3, 9, 8, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    assert utc.misfire_grace_seconds == 3600  # the bounded default
    assert utc.next_fire_time(saturday) == datetime(2026, 3, 8, 1, 0, tzinfo=UTC)
    assert load_config(tmp_path / "absent.yaml", default_timezone="UTC").schedules == ()


BAD_SCHEDULES = """\
scheduler:
  leadership: sometimes
  poll_seconds: -1
  heartbeat_seconds: 10
  stale_after_seconds: 5
  colour: blue
extra: 1
schedules:
  - id: ok.one
    kind: test.effect
    cron: {second: "*/10"}
  - id: ok.one
    kind: test.effect
    cron: "0 2 1 * *"
  - id: Bad Id
    kind: Inspection
    cron: {minute: 61, hours: 2}
    misfire_grace_seconds: 0
    timezone: Mars/Olympus
    enabled: "yes"
  - id: weekly
    kind: digest.weekly
    cron: "0 8 * * 1"
    misfire_grace_seconds: 99999999
  - id: never
    kind: test.effect
    cron: {month: 2, day: 30}
  - id: short
    kind: test.effect
    cron: "0 8 *"
  - just a string
  - id: nocron
    kind: test.effect
"""


def test_every_problem_of_a_schedules_file_is_named_with_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "schedules.yaml"
    path.write_text(BAD_SCHEDULES, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_config(path, default_timezone="Asia/Shanghai")
    found = {(p.line, p.key) for p in caught.value.problems}
    assert found == {
        (2, "scheduler.leadership"),
        (3, "scheduler.poll_seconds"),
        (5, "scheduler.stale_after_seconds"),
        (6, "scheduler.colour"),
        (7, "extra"),
        (12, "schedules[1].id"),
        (15, "schedules[2].id"),
        (16, "schedules[2].kind"),
        (17, "schedules[2].cron.minute"),
        (17, "schedules[2].cron.hours"),
        (18, "schedules[2].misfire_grace_seconds"),
        (19, "schedules[2].timezone"),
        (20, "schedules[2].enabled"),
        (23, "schedules[3].cron"),
        (24, "schedules[3].misfire_grace_seconds"),
        (27, "schedules[4].cron"),
        (30, "schedules[5].cron"),
        (31, "schedules[6]"),
        (32, "schedules[7].cron"),
    }, "\n".join(map(str, caught.value.problems))
    assert all(p.file.endswith("schedules.yaml") for p in caught.value.problems)
    assert all(p.message_en and p.message_zh for p in caught.value.problems)
    weekday = next(p for p in caught.value.problems if p.key == "schedules[3].cron")
    assert "Monday 0" in weekday.message_en  # APScheduler 3 vs crontab weekday numbering
    never = next(p for p in caught.value.problems if p.key == "schedules[4].cron")
    assert "never fires" in never.message_en


def test_a_yaml_syntax_error_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "schedules.yaml"
    path.write_text("schedules:\n  - id: a\n    cron: {day: 1\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_config(path, default_timezone="Asia/Shanghai")
    (problem,) = caught.value.problems
    assert problem.line is not None
    assert "YAML" in problem.message_en


def test_job_kind_registry() -> None:
    register_job_kind(ECHO, echo)  # the same function again: fine
    with pytest.raises(ValueError, match="already registered"):
        register_job_kind(ECHO, record_effect)
    with pytest.raises(ValueError, match="lowercase"):
        register_job_kind("Not A Name", echo)
    register_job_kind("test.temporary", echo)
    assert is_registered("test.temporary")
    unregister_job_kind("test.temporary")
    assert not is_registered("test.temporary")


# --- the ledger ----------------------------------------------------------------------------------


def test_concurrent_claims_of_one_fire_time_succeed_once(factory: SessionFactory) -> None:
    fire = datetime(2026, 11, 1, 2, 0, tzinfo=SHANGHAI)
    barrier = threading.Barrier(12)

    def claim(n: int) -> JobRun | None:
        barrier.wait()
        return flows.claim_run(
            factory,
            job_id="inspection.monthly",
            kind=ECHO,
            trigger=RunTrigger.SCHEDULE,
            fire_time=fire,
            runner=f"t{n}",
        )

    with ThreadPoolExecutor(12) as pool:
        claimed = [run for run in pool.map(claim, range(12)) if run is not None]
    assert len(claimed) == 1
    rows = ledger(factory)
    assert len(rows) == 1
    assert rows[0].fire_time == fire.astimezone(UTC)
    assert rows[0].runner == claimed[0].runner
    assert rows[0].status == RunStatus.STARTED


def test_concurrent_runners_execute_a_fire_time_once(factory: SessionFactory) -> None:
    fires = [datetime(2026, 11, 1, 2, 0, tzinfo=UTC) + timedelta(minutes=i) for i in range(3)]
    runners = [Runner(runner=f"host:{n}") for n in range(8)]
    barrier = threading.Barrier(len(runners))

    def work(runner: Runner) -> list[JobRun | None]:
        barrier.wait()
        return [runner.run_scheduled(factory, job_id="job", kind=EFFECT, fire_time=fire) for fire in fires]

    with ThreadPoolExecutor(len(runners)) as pool:
        outcomes = [run for runs in pool.map(work, runners) for run in runs]
    assert sum(run is not None for run in outcomes) == len(fires)
    assert Counter(e.fire_time for e in effects(factory)) == dict.fromkeys(fires, 1)
    assert [(r.fire_time, r.status) for r in ledger(factory)] == [(f, RunStatus.SUCCEEDED) for f in fires]
    for runner in runners:
        runner.close()


def test_a_failing_job_is_recorded_failed_with_its_error(factory: SessionFactory) -> None:
    def broken(_sf: Callable[[], Session], *, fire_time: datetime, job_id: str) -> dict[str, Any]:
        raise RuntimeError("inspection data missing")

    register_job_kind("test.broken", broken)
    try:
        run = Runner().run_scheduled(
            factory, job_id="b", kind="test.broken", fire_time=datetime(2026, 1, 1, tzinfo=UTC)
        )
    finally:
        unregister_job_kind("test.broken")
    assert run is not None
    assert run.status == RunStatus.FAILED
    assert run.error is not None
    assert "inspection data missing" in run.error
    assert run.finished_at is not None


def test_on_demand_runs_have_their_own_key_and_are_audited(factory: SessionFactory) -> None:
    from service.audit.models import AuditEvent

    fire = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
    scheduled = Runner().run_scheduled(factory, job_id="inspection.monthly", kind=ECHO, fire_time=fire)
    manual = run_now(
        factory, kind=ECHO, job_id="inspection.monthly", params={"period": "2026-10"}, requested_by="li"
    )
    again = run_now(
        factory, kind=ECHO, job_id="inspection.monthly", params={"period": "2026-10"}, requested_by="li"
    )
    assert scheduled is not None
    assert (manual.trigger, manual.status, manual.requested_by) == ("manual", "succeeded", "li")
    assert manual.result == {
        "job_id": "inspection.monthly",
        "fire_time": manual.fire_time.isoformat(),
        "params": {"period": "2026-10"},
    }
    assert len({scheduled.id, manual.id, again.id}) == 3
    with factory() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == "job.run_requested")).all()
    assert [(e.actor, e.entity_id, e.detail["run_id"]) for e in events] == [
        ("li", "inspection.monthly", manual.id),
        ("li", "inspection.monthly", again.id),
    ]
    with pytest.raises(UnknownJobKindError):
        run_now(factory, kind="inspection.none", requested_by="li")
    assert len(ledger(factory)) == 3


def test_abandoned_runs_are_retried_once_then_marked_abandoned(factory: SessionFactory) -> None:
    """What a process killed mid-run leaves behind: a `started` row nobody heartbeats."""
    long_ago = datetime.now(UTC) - timedelta(minutes=10)
    first = flows.claim_run(
        factory,
        job_id="j1",
        kind=EFFECT,
        trigger=RunTrigger.SCHEDULE,
        fire_time=long_ago,
        runner="dead:1",
        now=long_ago,
    )
    assert first is not None
    retried = flows.sweep_stale_runs(factory, runner="leader:2", stale_after=timedelta(seconds=60), retries=1)
    assert [(r.id, r.attempt, r.runner) for r in retried] == [(first.id, 2, "leader:2")]
    # A second sweeper (another process) finds nothing left to take.
    assert (
        flows.sweep_stale_runs(factory, runner="other:3", stale_after=timedelta(seconds=60), retries=1) == []
    )
    done = Runner(runner="leader:2").execute(factory, retried[0])
    assert (done.status, done.attempt) == (RunStatus.SUCCEEDED, 2)
    assert done.error is not None
    assert "attempt 1 by dead:1 abandoned" in done.error
    assert len(effects(factory)) == 1

    # The retry died too: no third attempt, the run is marked abandoned.
    with factory() as session, session.begin():
        session.execute(update(JobRun).values(status="started", heartbeat_at=long_ago))
    assert (
        flows.sweep_stale_runs(factory, runner="leader:2", stale_after=timedelta(seconds=60), retries=1) == []
    )
    (row,) = ledger(factory)
    assert (row.status, row.attempt) == (RunStatus.ABANDONED, 2)
    assert row.finished_at is not None


def test_a_long_running_job_keeps_its_claim_by_heartbeat(factory: SessionFactory) -> None:
    runner = Runner(runner="busy:1", heartbeat_seconds=0.1)
    done = threading.Event()

    def long_job() -> None:
        runner.run_scheduled(
            factory,
            job_id="slow",
            kind=EFFECT,
            fire_time=datetime(2026, 1, 1, tzinfo=UTC),
            params={"sleep": 1.2},
        )
        done.set()

    thread = threading.Thread(target=long_job)
    thread.start()
    try:
        wait_until(lambda: len(ledger(factory)) == 1, 5, "the run to be claimed")
        for _ in range(4):
            time.sleep(0.25)
            assert (
                flows.sweep_stale_runs(
                    factory, runner="sweeper:2", stale_after=timedelta(seconds=0.5), retries=1
                )
                == []
            )
    finally:
        thread.join()
        runner.close()
    (row,) = ledger(factory)
    assert (row.status, row.attempt, row.runner) == (RunStatus.SUCCEEDED, 1, "busy:1")
    assert row.heartbeat_at > row.started_at


# --- leadership ----------------------------------------------------------------------------------


def test_lease_leadership_one_holder_until_it_expires(factory: SessionFactory) -> None:
    start = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
    a = LeaseLeadership(holder="a:1", session_factory=factory, lease_seconds=30)
    b = LeaseLeadership(holder="b:2", session_factory=factory, lease_seconds=30)
    with time_machine.travel(start, tick=False) as clock:
        assert a.acquire()
        assert not b.acquire()
        clock.move_to(start + timedelta(seconds=20))
        assert a.confirm()  # renewed: expires at +50 s now
        clock.move_to(start + timedelta(seconds=45))
        assert not b.acquire()
        clock.move_to(start + timedelta(seconds=51))
        assert b.acquire()  # a stalled past its lease
        assert not a.confirm()  # and learns it lost leadership
        b.release()
        assert a.acquire()  # released: no need to wait for expiry
    current = lease(factory)
    assert current is not None
    assert (current.holder, current.mechanism) == ("a:1", "lease")


def test_postgresql_advisory_lock_leadership(url: str, factory: SessionFactory) -> None:
    if backend(url) != "postgresql":
        pytest.skip("advisory locks are PostgreSQL's")
    a = AdvisoryLockLeadership(database_url=url, holder="a:1", session_factory=factory, lease_seconds=30)
    b = AdvisoryLockLeadership(database_url=url, holder="b:2", session_factory=factory, lease_seconds=30)
    try:
        assert a.acquire()
        assert not b.acquire()
        first = lease(factory)
        assert first is not None
        assert a.confirm()
        renewed = lease(factory)
        assert renewed is not None
        assert (renewed.acquired_at, renewed.holder) == (first.acquired_at, "a:1")
        assert renewed.renewed_at > first.renewed_at
        from service.scheduling.leadership import advisory_key_of

        with factory() as session:
            shown = flows.leader(session, now=datetime.now(UTC), advisory_key=advisory_key_of)
        assert shown is not None
        assert (shown.holder, shown.mechanism, shown.active) == ("a:1", "advisory", True)
        a.close()  # as when the process dies: the connection closes, the lock is free
        assert b.acquire()
        with factory() as session:
            shown = flows.leader(session, now=datetime.now(UTC), advisory_key=advisory_key_of)
        assert shown is not None
        assert (shown.holder, shown.active) == ("b:2", True)
    finally:
        a.close()
        b.close()


class AlwaysLeader(Leadership):
    """No election: for showing that the ledger alone keeps two schedulers from running a fire
    time twice (as when a leader stalls past its lease while another takes over)."""

    mechanism = "none"

    def acquire(self) -> bool:
        return True

    def confirm(self) -> bool:
        return True

    def release(self) -> None:
        pass


def test_two_schedulers_firing_together_run_each_fire_time_once(url: str, factory: SessionFactory) -> None:
    cfg = config(schedule("tick"))
    services = [
        SchedulerService(
            database_url=url,
            config=cfg,
            timezone="Asia/Shanghai",
            runner=Runner(runner=f"twin:{n}"),
            leadership=AlwaysLeader(holder=f"twin:{n}", session_factory=factory, lease_seconds=1),
        )
        for n in (1, 2)
    ]
    try:
        for service in services:
            service.start()
        wait_until(lambda: len(effects(factory)) >= 3, 10, "three runs")
    finally:
        for service in services:
            service.stop()
    runs = effects(factory)
    assert max(Counter(e.fire_time for e in runs).values()) == 1
    rows = ledger(factory, "tick")
    assert [r.fire_time for r in rows] == [e.fire_time for e in runs]
    assert all(r.status == RunStatus.SUCCEEDED for r in rows)


# --- misfire grace and coalescing, with time moved deterministically ------------------------------


def test_missed_fire_times_coalesce_into_one_run_within_the_grace_and_are_missed_beyond_it(
    url: str, factory: SessionFactory
) -> None:
    """Every minute, grace 20 s. No process led from 23:59 to 00:04:10: the six due minutes run
    once, as 00:04. Then nobody led until 00:09:45: 00:09 is 45 s late, beyond the grace: recorded
    `missed`, not run; the earlier ones are coalesced away."""
    cfg = config(schedule("minutely", grace=20, minute="*"))

    def run_service_until(predicate: Callable[[], bool], what: str) -> None:
        service = SchedulerService(database_url=url, config=cfg, timezone="Asia/Shanghai")
        service.start()
        try:
            wait_until(predicate, 10, what)
        finally:
            service.stop()

    with time_machine.travel(datetime(2026, 3, 31, 23, 58, 30, tzinfo=SHANGHAI), tick=True) as clock:
        with factory() as session:
            assert flows.overview(session, config=cfg).schedules[0].next_fire_time is None
        run_service_until(
            lambda: _next_fire(factory, cfg) == datetime(2026, 3, 31, 23, 59, tzinfo=SHANGHAI),
            "the job stored",
        )
        assert ledger(factory) == []

        clock.move_to(datetime(2026, 4, 1, 0, 4, 10, tzinfo=SHANGHAI))
        run_service_until(
            lambda: any(r.status == RunStatus.SUCCEEDED for r in ledger(factory)), "the coalesced run"
        )
        (run,) = ledger(factory)
        assert run.fire_time == datetime(2026, 4, 1, 0, 4, tzinfo=SHANGHAI)
        assert [e.fire_time for e in effects(factory)] == [run.fire_time]
        assert _next_fire(factory, cfg) == datetime(2026, 4, 1, 0, 5, tzinfo=SHANGHAI)

        clock.move_to(datetime(2026, 4, 1, 0, 9, 45, tzinfo=SHANGHAI))
        run_service_until(lambda: len(ledger(factory)) == 2, "the missed fire time recorded")
    first, missed = ledger(factory)
    assert first.status == RunStatus.SUCCEEDED
    assert missed.fire_time == datetime(2026, 4, 1, 0, 9, tzinfo=SHANGHAI)
    assert missed.status == RunStatus.MISSED
    assert missed.error is not None
    assert "misfire grace 20 s" in missed.error
    assert len(effects(factory)) == 1  # not run
    assert _next_fire(factory, cfg) == datetime(2026, 4, 1, 0, 10, tzinfo=SHANGHAI)


def test_a_fire_time_skipped_while_the_previous_run_still_runs_is_recorded(
    url: str, factory: SessionFactory
) -> None:
    slow = Schedule(
        id="slow",
        kind=EFFECT,
        cron={"second": "*"},
        timezone="Asia/Shanghai",
        misfire_grace_seconds=30,
        params={"sleep": 1.3},
    )
    service = SchedulerService(database_url=url, config=config(slow), timezone="Asia/Shanghai")
    service.start()
    try:
        wait_until(
            lambda: any(r.status == RunStatus.MISSED for r in ledger(factory)), 10, "a skipped fire time"
        )
    finally:
        service.stop()
    rows = ledger(factory)
    missed = [r for r in rows if r.status == RunStatus.MISSED]
    assert missed[0].error is not None
    assert "still running" in missed[0].error
    assert all(r.status in (RunStatus.SUCCEEDED, RunStatus.MISSED) for r in rows)  # stop let runs finish
    assert sorted(e.fire_time for e in effects(factory)) == [
        r.fire_time for r in rows if r.status == "succeeded"
    ]


def _next_fire(factory: SessionFactory, cfg: ScheduleConfig) -> datetime | None:
    with factory() as session:
        return flows.overview(session, config=cfg).schedules[0].next_fire_time


def test_the_leader_retries_a_run_its_dead_predecessor_abandoned(url: str, factory: SessionFactory) -> None:
    old = datetime.now(UTC) - timedelta(minutes=5)
    flows.claim_run(
        factory,
        job_id="tick",
        kind=EFFECT,
        trigger=RunTrigger.SCHEDULE,
        fire_time=old,
        runner="dead:9",
        now=old,
    )
    service = SchedulerService(database_url=url, config=config(), timezone="Asia/Shanghai")
    service.start()
    try:
        wait_until(lambda: ledger(factory)[0].status == RunStatus.SUCCEEDED, 10, "the retry")
    finally:
        service.stop()
    (row,) = ledger(factory)
    assert (row.attempt, row.runner) == (2, runner_identity())
    assert [e.fire_time for e in effects(factory)] == [old]


# --- real processes ------------------------------------------------------------------------------

SCHEDULER_SCRIPT = """\
import os, signal, sys, threading, time
from datetime import UTC
from pathlib import Path

from sqlalchemy import text

from service.scheduling.config import load_config
from service.scheduling.registry import register_job_kind
from service.scheduling.scheduler import SchedulerService

url, schedules, lifetime = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3])


def effect(session_factory, *, fire_time, job_id, sleep=0.0):
    time.sleep(sleep)
    with session_factory() as session, session.begin():
        session.execute(
            text("INSERT INTO sched_effects (job_id, fire_time, pid) VALUES (:job, :fire, :pid)"),
            {"job": job_id, "fire": fire_time.astimezone(UTC).isoformat(), "pid": os.getpid()},
        )
    return {"pid": os.getpid()}


register_job_kind("test.effect", effect)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
service = SchedulerService(
    database_url=url, config=load_config(schedules, default_timezone="Asia/Shanghai"), timezone="Asia/Shanghai"
)
service.start()
print("ready", flush=True)
stop.wait(lifetime)  # bounded: a process the test forgot ends by itself
service.stop()
print("stopped", flush=True)
"""


SCHEDULES = """\
scheduler: {{poll_seconds: 0.2, lease_seconds: 1.0, heartbeat_seconds: 0.2, stale_after_seconds: 2}}
schedules:
  - {{id: tick, kind: test.effect, cron: {{second: '*'}}, misfire_grace_seconds: 30, enabled: {tick}}}
  - {{id: every3, kind: test.effect, cron: {{second: '*/3'}}, misfire_grace_seconds: 30, enabled: {every3}}}
"""


class Processes:
    """Scheduler processes (SCHEDULER_SCRIPT) started by a test; all killed at its end."""

    def __init__(self, tmp_path: Path, url: str) -> None:
        self.tmp_path = tmp_path
        self.url = url
        self.schedules = tmp_path / "schedules.yaml"
        self.script = tmp_path / "scheduler_process.py"
        self.script.write_text(SCHEDULER_SCRIPT, encoding="utf-8")
        self.logs: dict[int, Path] = {}
        self.started: list[tuple[subprocess.Popen[bytes], BinaryIO]] = []

    def configure(self, *, tick: bool, every3: bool) -> None:
        text_ = SCHEDULES.format(tick=str(tick).lower(), every3=str(every3).lower())
        self.schedules.write_text(text_, encoding="utf-8")

    def spawn(self, name: str, lifetime: float = 45.0) -> subprocess.Popen[bytes]:
        path = self.tmp_path / f"{name}.log"
        log = path.open("wb")
        process = subprocess.Popen(
            [sys.executable, str(self.script), self.url, str(self.schedules), str(lifetime)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.started.append((process, log))
        self.logs[process.pid] = path
        return process

    def log(self, process: subprocess.Popen[bytes]) -> str:
        return self.logs[process.pid].read_text(errors="replace")

    def wait_ready(self, process: subprocess.Popen[bytes]) -> None:
        wait_until(lambda: "ready" in self.log(process) or process.poll() is not None, 20, "process start")
        assert process.poll() is None, self.log(process)

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        process.terminate()
        process.wait(timeout=20)
        assert "stopped" in self.log(process), self.log(process)

    def close(self) -> None:
        for process, log in self.started:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
            log.close()


@pytest.fixture
def processes(tmp_path: Path, url: str) -> Iterator[Processes]:
    started = Processes(tmp_path, url)
    yield started
    started.close()


def holder(pid: int) -> str:
    return f"{HOST}:{pid}"


def _all_finished(factory: SessionFactory) -> bool:
    rows = ledger(factory)
    return bool(rows) and all(r.status != RunStatus.STARTED for r in rows)


def test_two_processes_one_leader_the_follower_takes_over_when_it_is_killed(
    processes: Processes, factory: SessionFactory
) -> None:
    processes.configure(tick=True, every3=False)
    a = processes.spawn("a")
    processes.wait_ready(a)
    wait_until(
        lambda: sum(e.pid == a.pid for e in effects(factory)) >= 2, 15, "two runs by the first process"
    )
    b = processes.spawn("b")
    processes.wait_ready(b)
    time.sleep(1.0)  # b polls for leadership all this time, in vain
    current = lease(factory)
    assert current is not None
    assert current.holder == holder(a.pid)
    assert not any(e.pid == b.pid for e in effects(factory))

    # Kill a just after a run finished (a kill in the middle of a run is the sweeper's case).
    wait_until(lambda: _all_finished(factory), 5, "no run in progress")
    processes.kill(a)
    killed_at = datetime.now(UTC)
    wait_until(lambda: sum(e.pid == b.pid for e in effects(factory)) >= 2, 15, "two runs by the follower")
    current = lease(factory)
    assert current is not None
    assert current.holder == holder(b.pid)
    processes.stop(b)

    runs = effects(factory)
    assert max(Counter(e.fire_time for e in runs).values()) == 1, runs  # each fire time once
    rows = {r.fire_time: r for r in ledger(factory, "tick")}
    assert len(rows) == len(ledger(factory, "tick"))
    assert all(r.status == RunStatus.SUCCEEDED and r.attempt == 1 for r in rows.values())
    assert sorted(rows) == [e.fire_time for e in runs]  # every ledger row has its one effect
    for effect in runs:
        assert rows[effect.fire_time].runner == holder(effect.pid)
    by_a = [e.fire_time for e in runs if e.pid == a.pid]
    by_b = [e.fire_time for e in runs if e.pid == b.pid]
    assert by_a
    assert by_b
    assert max(by_a) < min(by_b)
    assert consecutive(by_a, timedelta(seconds=1)), by_a  # no second skipped while a led
    assert consecutive(by_b, timedelta(seconds=1)), by_b  # nor while b led
    assert min(by_b) - killed_at < timedelta(seconds=4)  # b took over promptly
    assert {r.job_id for r in ledger(factory)} == {"tick"}  # the disabled schedule never ran


def test_a_restart_mid_schedule_repeats_nothing_and_coalesces_what_it_missed(
    processes: Processes, factory: SessionFactory
) -> None:
    """Every 3 s. Kill the only process just after a run at F, restart it after F+6: F+3 and F+6
    were missed; on restart they coalesce into one run for F+6 (late, within the grace); F is not
    run again."""
    processes.configure(tick=False, every3=True)
    a = processes.spawn("a")
    processes.wait_ready(a)

    def finished() -> list[JobRun]:
        return [r for r in ledger(factory, "every3") if r.status == RunStatus.SUCCEEDED]

    wait_until(lambda: len(finished()) >= 1, 15, "a run")
    processes.kill(a)
    (last,) = finished()
    f = last.fire_time
    assert datetime.now(UTC) < f + timedelta(seconds=3)  # killed before the next fire time
    time.sleep(max(0.0, (f + timedelta(seconds=6.6) - datetime.now(UTC)).total_seconds()))

    a2 = processes.spawn("a2")
    wait_until(lambda: len(finished()) >= 2, 15, "the restarted process's first run")
    current = lease(factory)
    assert current is not None
    assert current.holder == holder(a2.pid)
    elected = current.acquired_at
    processes.stop(a2)

    rows = ledger(factory, "every3")
    assert [(r.fire_time, r.runner) for r in rows[:2]] == [
        (f, holder(a.pid)),
        (f + timedelta(seconds=6), holder(a2.pid)),
    ]
    assert f + timedelta(seconds=3) not in {r.fire_time for r in rows}  # coalesced away, not replayed
    assert rows[1].fire_time < elected  # it was a missed fire time, run late on restart
    assert all(r.status == RunStatus.SUCCEEDED and r.attempt == 1 for r in rows)
    runs = effects(factory)
    assert max(Counter(e.fire_time for e in runs).values()) == 1
    assert [e.fire_time for e in runs] == [r.fire_time for r in rows]
    assert {r.job_id for r in ledger(factory)} == {"every3"}


# --- the app's lifecycle hook --------------------------------------------------------------------


def test_lifecycle_starts_the_scheduler_only_when_enabled(
    url: str, tmp_path: Path, factory: SessionFactory
) -> None:
    from service.api import create_app

    (tmp_path / "schedules.yaml").write_text(
        "scheduler: {poll_seconds: 0.2, lease_seconds: 1.0, heartbeat_seconds: 0.2, stale_after_seconds: 2}\n"
        "schedules:\n  - {id: tick, kind: test.effect, cron: {second: '*'}, misfire_grace_seconds: 5}\n",
        encoding="utf-8",
    )
    settings = Settings(database_url=url, policies_dir=tmp_path)
    idle = create_app(settings)
    lifecycle.start(idle)
    assert getattr(idle.state, "scheduling", None) is None
    lifecycle.stop(idle)

    app = lifecycle.enable(create_app(settings))
    lifecycle.start(app)
    try:
        state = lifecycle.runtime(app)
        assert state.service is not None
        assert state.config.get("tick") is not None
        wait_until(lambda: len(effects(factory)) >= 1, 10, "a run")
        assert state.service.is_leader
    finally:
        lifecycle.stop(app)
    assert lifecycle.runtime(app).service is None
    current = lease(factory)
    assert current is not None
    assert current.expires_at <= datetime.now(UTC)  # released on stop


def test_an_invalid_schedules_file_stops_the_start(url: str, tmp_path: Path) -> None:
    from service.api import create_app

    (tmp_path / "schedules.yaml").write_text(
        "schedules:\n  - {id: x, kind: test.effect, cron: {minute: 99}}\n"
    )
    app = lifecycle.enable(create_app(Settings(database_url=url, policies_dir=tmp_path)))
    with pytest.raises(InputError):
        lifecycle.start(app)


# --- API -----------------------------------------------------------------------------------------

API_CONFIG = ScheduleConfig(
    source="api test",
    schedules=(
        Schedule(
            id="api.echo",
            kind=ECHO,
            cron={"day": "1", "hour": "2", "minute": "0"},
            timezone="Asia/Shanghai",
            misfire_grace_seconds=600,
            params={"period": "previous-month"},
        ),
        Schedule(
            id="api.absent",
            kind="inspection.not_installed",
            cron={"hour": "3"},
            timezone="Asia/Shanghai",
            misfire_grace_seconds=600,
        ),
    ),
)


def test_api_runs_a_schedule_on_demand_and_lists_runs(world: World) -> None:
    lifecycle.configure(world.app, API_CONFIG)
    headers = world.headers("supervisor")
    response = world.client.post("/api/v1/schedules/api.echo/run", headers=headers)
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert (accepted["job_id"], accepted["trigger"], accepted["status"]) == ("api.echo", "manual", "started")
    assert accepted["requested_by"] == world.users["supervisor"].username

    page = world.client.get("/api/v1/job-runs", params={"job_id": "api.echo"}, headers=headers).json()
    assert page["total"] == 1
    (run,) = page["items"]
    assert run["id"] == accepted["id"]
    assert run["status"] == "succeeded"  # the background task ran it
    assert run["result"]["params"] == {"period": "previous-month"}
    for params, total in (
        ({"trigger": "schedule", "job_id": "api.echo"}, 0),
        ({"status": "succeeded", "job_id": "api.echo"}, 1),
        ({"status": "failed", "job_id": "api.echo"}, 0),
        ({"kind": ECHO, "since": "2000-01-01T00:00:00+08:00"}, 1),
        ({"job_id": "api.echo", "until": "2000-01-01T00:00:00Z"}, 0),
    ):
        answer = world.client.get("/api/v1/job-runs", params=params, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.json()["total"] == total, params
    assert (
        world.client.get(
            "/api/v1/job-runs", params={"since": "2026-01-01T00:00:00"}, headers=headers
        ).status_code
        == 422
    )
    assert (
        world.client.get("/api/v1/job-runs", params={"status": "sleeping"}, headers=headers).status_code
        == 422
    )

    overview = world.client.get("/api/v1/schedules", headers=headers).json()
    shown = {s["job_id"]: s for s in overview["schedules"]}
    assert shown["api.echo"]["kind_registered"] is True
    assert shown["api.echo"]["last_run"]["id"] == accepted["id"]
    assert shown["api.echo"]["cron"] == {"day": "1", "hour": "2", "minute": "0"}
    assert shown["api.absent"]["kind_registered"] is False

    missing = world.client.post("/api/v1/schedules/no.such.job/run", headers=headers)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    absent = world.client.post("/api/v1/schedules/api.absent/run", headers=headers)
    assert absent.status_code == 409
    assert absent.json()["error"]["code"] == "job_kind_unavailable"


def test_api_lists_the_repository_schedules_without_configuration(world: World) -> None:
    response = world.client.get("/api/v1/schedules", headers=world.headers("admin"))
    assert response.status_code == 200, response.text
    ids = [s["job_id"] for s in response.json()["schedules"]]
    assert ids == [
        "inspection.monthly",
        "inspection.quarterly",
        "ingest.idempotency_purge",
        "notices.sweep",
        "digests.weekly",
        "digests.monthly",
        "mail.send",
    ]


# --- CLI -----------------------------------------------------------------------------------------


def test_cli_lists_runs_and_runs_schedules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from service.cli import app

    (tmp_path / "schedules.yaml").write_text(
        "schedules:\n  - {id: nightly, kind: test.echo, cron: {hour: 1}, misfire_grace_seconds: 600}\n"
        "  - {id: absent, kind: inspection.none, cron: {hour: 2}, misfire_grace_seconds: 600}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("ZHIDU_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("ZHIDU_POLICIES_DIR", str(tmp_path))
    get_settings.cache_clear()
    cli = CliRunner()
    try:
        listed = cli.invoke(app, ["schedules", "list"])
        assert listed.exit_code == 0, listed.output
        assert "nightly" in listed.stdout
        assert "inspection.none (not installed)" in listed.stdout
        assert "none yet" in listed.stdout

        ran = cli.invoke(app, ["schedules", "run", "nightly"])
        assert ran.exit_code == 0, ran.output
        assert "succeeded" in ran.stdout
        assert cli.invoke(app, ["schedules", "run", "absent"]).exit_code == 2
        assert cli.invoke(app, ["schedules", "run", "nope"]).exit_code == 2

        runs = cli.invoke(app, ["schedules", "runs", "--format", "json"])
        assert runs.exit_code == 0, runs.output
        import json

        (row,) = json.loads(runs.stdout)
        assert (row["job_id"], row["trigger"], row["status"], row["requested_by"]) == (
            "nightly",
            "manual",
            "succeeded",
            "system",
        )
        table = cli.invoke(app, ["schedules", "runs", "--job", "nightly", "--status", "succeeded"])
        assert table.exit_code == 0, table.output
        assert "nightly" in table.stdout
        assert cli.invoke(app, ["schedules", "runs", "--status", "sleeping"]).exit_code == 2
        as_json = cli.invoke(app, ["schedules", "list", "--format", "json"])
        assert json.loads(as_json.stdout)["schedules"][0]["last_run"]["status"] == "succeeded"

        (tmp_path / "schedules.yaml").write_text(
            "schedules: [{id: x, kind: test.echo, cron: {minute: 99}}]\n"
        )
        bad = cli.invoke(app, ["schedules", "list"])
        assert bad.exit_code == 2
        assert "schedules[0].cron.minute" in bad.output
    finally:
        get_settings.cache_clear()
