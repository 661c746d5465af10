"""Routes: schedules, the run ledger, on-demand runs (supervisor, admin)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Path, Query, Request, status
from sqlalchemy.orm import Session, sessionmaker

from rules.problems import InputError
from service.api.deps import (
    ApiError,
    ConflictError,
    ErrorResponse,
    NotFoundError,
    Page,
    PaginationDep,
    SessionDep,
    SupervisorUser,
    UnprocessableError,
)
from service.scheduling import flows, lifecycle
from service.scheduling.config import JOB_ID_PATTERN
from service.scheduling.leadership import advisory_key_of
from service.scheduling.registry import UnknownJobKindError
from service.scheduling.runner import request_run
from service.scheduling.schemas import JobRunRead, RunStatus, RunTrigger, SchedulesRead

router = APIRouter(tags=["scheduling"])
openapi_tag = {
    "name": "scheduling",
    "description": "Scheduled jobs (inspections, digests), the run ledger, and on-demand runs (supervisor, admin).",
}


def get_runtime(request: Request) -> lifecycle.SchedulingRuntime:
    try:
        return lifecycle.runtime(request.app)
    except InputError as exc:
        raise ApiError(
            "the schedule configuration is invalid; see the server log",
            "调度配置无效，请查看服务日志",
            code="schedule_config_invalid",
            status_code=503,
            details=[p.as_dict() for p in exc.problems],
        ) from None


RuntimeDep = Annotated[lifecycle.SchedulingRuntime, Depends(get_runtime)]
JobIdPath = Annotated[
    str, Path(max_length=128, pattern=f"^{JOB_ID_PATTERN.pattern}$", description="A schedule's id.")
]
_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorResponse, "description": "No code for the schedule's job kind is installed"},
    503: {"model": ErrorResponse, "description": "The schedule configuration is invalid"},
}


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise UnprocessableError(
            f"{name} needs a time zone offset, e.g. 2026-10-01T00:00:00+08:00",
            f"{name} 需要带时区偏移，例如 2026-10-01T00:00:00+08:00",
            details=[
                {"loc": ["query", name], "message": "timezone offset required", "type": "timezone_aware"}
            ],
        )
    return value


@router.get(
    "/schedules",
    summary="Schedules with their next fire time and last run, and the scheduler leader (supervisor, admin)",
    response_model=SchedulesRead,
    responses={503: _UNAVAILABLE[503]},
)
def list_schedules(_user: SupervisorUser, session: SessionDep, runtime: RuntimeDep) -> SchedulesRead:
    return flows.overview(session, config=runtime.config, advisory_key=advisory_key_of)


@router.get(
    "/job-runs",
    summary="The run ledger, newest fire time first, with filters (supervisor, admin)",
    response_model=Page[JobRunRead],
)
def list_job_runs(
    _user: SupervisorUser,
    session: SessionDep,
    page: PaginationDep,
    job_id: Annotated[str | None, Query(max_length=128, description="A schedule's id.")] = None,
    kind: Annotated[str | None, Query(max_length=64, description="A job kind.")] = None,
    run_status: Annotated[RunStatus | None, Query(alias="status")] = None,
    trigger: Annotated[RunTrigger | None, Query(description="`schedule` or `manual`.")] = None,
    since: Annotated[datetime | None, Query(description="Fire time from (inclusive), with offset.")] = None,
    until: Annotated[datetime | None, Query(description="Fire time before (exclusive), with offset.")] = None,
) -> Page[JobRunRead]:
    runs, total = flows.browse_runs(
        session,
        job_id=job_id,
        kind=kind,
        status=run_status,
        trigger=trigger,
        since=_aware(since, "since"),
        until=_aware(until, "until"),
        limit=page.limit,
        offset=page.offset,
    )
    return page.of([JobRunRead.model_validate(r) for r in runs], total)


@router.post(
    "/schedules/{job_id}/run",
    summary="Run a schedule's job now; answers 202 with the ledger entry (supervisor, admin)",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobRunRead,
    responses=_UNAVAILABLE,
)
def run_schedule(
    job_id: JobIdPath,
    user: SupervisorUser,
    request: Request,
    background: BackgroundTasks,
    runtime: RuntimeDep,
) -> JobRunRead:
    schedule = runtime.config.get(job_id)
    if schedule is None:
        raise NotFoundError(f"no schedule {job_id!r}", f"调度 {job_id!r} 不存在")
    factory: sessionmaker[Session] = request.app.state.session_factory
    try:
        run = request_run(
            factory,
            kind=schedule.kind,
            runner=runtime.runner,
            requested_by=user.username,
            job_id=schedule.id,
            params=schedule.params,
        )
    except UnknownJobKindError:
        raise ConflictError(
            f"job kind {schedule.kind!r} of schedule {job_id!r} is not installed",
            f"调度 {job_id!r} 的任务类型 {schedule.kind!r} 未安装",
            code="job_kind_unavailable",
        ) from None
    background.add_task(runtime.runner.execute, factory, run)
    return JobRunRead.model_validate(run)
