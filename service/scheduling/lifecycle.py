"""Hooks for the application's lifespan: `start(app)` / `stop(app)`.

`create_app`'s lifespan calls both; `start` runs the scheduler only in an app marked with
`enable(app)` (what `zhidu serve` does), so tests and tools that build an app do not schedule.
Whether enabled or not, `runtime(app)` gives the routes the schedule configuration and a runner
for on-demand runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from fastapi import FastAPI

from service.scheduling.config import ScheduleConfig, load_config, schedules_path
from service.scheduling.registry import discover_job_kinds
from service.scheduling.runner import Runner
from service.scheduling.scheduler import SchedulerService
from service.settings import Settings

log = logging.getLogger("zhidu.scheduling")


@dataclass
class SchedulingRuntime:
    """The scheduling state of one app (on `app.state.scheduling`)."""

    config: ScheduleConfig
    runner: Runner = field(default_factory=Runner)
    service: SchedulerService | None = None


def enable(app: FastAPI) -> FastAPI:
    """Mark `app` to run the scheduler when it starts (returns it, for `uvicorn.run(enable(app))`)."""
    app.state.scheduler_enabled = True
    return app


def configure(app: FastAPI, config: ScheduleConfig) -> SchedulingRuntime:
    """Give `app` this configuration (tests; `start` does it from the settings)."""
    runtime = SchedulingRuntime(
        config=config, runner=Runner(heartbeat_seconds=config.options.heartbeat_seconds)
    )
    app.state.scheduling = runtime
    return runtime


def load(settings: Settings) -> ScheduleConfig:
    """The schedules of `settings`: `<ZHIDU_POLICIES_DIR>/schedules.yaml` (InputError if invalid)."""
    return load_config(schedules_path(settings.policies_dir), default_timezone=settings.timezone)


def runtime(app: FastAPI) -> SchedulingRuntime:
    """The app's scheduling runtime, made from its settings on first use."""
    existing = getattr(app.state, "scheduling", None)
    if isinstance(existing, SchedulingRuntime):
        return existing
    settings: Settings = app.state.settings
    discover_job_kinds()
    return configure(app, load(settings))


def start(app: FastAPI) -> None:
    """Load the schedules (failing fast on an invalid file) and, if the app is enabled, start this
    process's scheduler: it joins the leader election and schedules while it leads."""
    if not getattr(app.state, "scheduler_enabled", False):
        return
    settings: Settings = app.state.settings
    discover_job_kinds()
    config = load(settings)
    state = configure(app, config)
    state.runner.close()
    state.service = SchedulerService(
        database_url=settings.database_url, config=config, timezone=settings.timezone
    )
    state.runner = state.service.runner
    state.service.start()
    log.info("scheduler started: %d schedule(s) from %s", len(config.schedules), config.source)


def stop(app: FastAPI) -> None:
    """Stop the scheduler (running jobs finish first) and release leadership."""
    state = getattr(app.state, "scheduling", None)
    if not isinstance(state, SchedulingRuntime):
        return
    if state.service is not None:
        state.service.stop(wait=True)
        state.service = None
    state.runner.close()
