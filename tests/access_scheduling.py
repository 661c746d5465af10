"""Access matrix entries of the scheduling routes (service/scheduling/views.py): supervisors and
admins only; on-demand runs answer 202 and really run (in the request's background task)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy.orm import Session

from service.scheduling import lifecycle
from service.scheduling.config import Schedule, ScheduleConfig
from service.scheduling.models import JobRun
from service.scheduling.registry import register_job_kind
from tests.access_matrix import Access, Call, register, supervisors
from tests.api_fixtures import World

MATRIX_KIND = "matrix.noop"
MATRIX_JOB = "matrix.job"


def _noop(_session_factory: Callable[[], Session], *, fire_time: datetime, job_id: str) -> Mapping[str, Any]:
    return {"job_id": job_id, "fire_time": fire_time.isoformat()}


register_job_kind(MATRIX_KIND, _noop)

MATRIX_CONFIG = ScheduleConfig(
    source="access matrix",
    schedules=(
        Schedule(
            id=MATRIX_JOB,
            kind=MATRIX_KIND,
            cron={"day": "1", "hour": "2", "minute": "0"},
            timezone="Asia/Shanghai",
            misfire_grace_seconds=3600,
        ),
    ),
)


def _configured(world: World, _principal: str) -> Call:
    lifecycle.configure(world.app, MATRIX_CONFIG)
    return Call()


def _run_matrix_job(world: World, principal: str) -> Call:
    _configured(world, principal)
    return Call(path={"job_id": MATRIX_JOB})


def _check_schedules(world: World, _principal: str, response: httpx.Response) -> None:
    if response.status_code == 200:
        body = response.json()
        assert [s["job_id"] for s in body["schedules"]] == [MATRIX_JOB]
        assert body["schedules"][0]["kind_registered"] is True


def _check_run(world: World, principal: str, response: httpx.Response) -> None:
    if response.status_code != 202:
        return
    body = response.json()
    assert (body["job_id"], body["trigger"], body["status"]) == (MATRIX_JOB, "manual", "started")
    assert body["requested_by"] == world.users[principal].username
    with world.session_factory() as session:
        run = session.get(JobRun, body["id"])
        assert run is not None
        assert run.status == "succeeded"
        assert run.result == {"job_id": MATRIX_JOB, "fire_time": run.fire_time.isoformat()}


register("GET", "/api/v1/schedules", Access(expect=supervisors(), build=_configured, check=_check_schedules))
register("GET", "/api/v1/job-runs", Access(expect=supervisors()))
register(
    "POST",
    "/api/v1/schedules/{job_id}/run",
    Access(expect=supervisors(202), build=_run_matrix_job, check=_check_run),
)
