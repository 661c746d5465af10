"""Routes: a department submits its self-check (自查) of a period; everyone reads those of their
departments (the comparison with zhidu's findings is for the supervision group, admins and
managers); missing self-checks (due and not submitted) are findings of their own."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from service.accounts.models import User
from service.accounts.schemas import DeptCode, Role
from service.api.deps import (
    ConflictError,
    CurrentUser,
    ErrorResponse,
    NotFoundError,
    Page,
    PaginationDep,
    PathId,
    ScopeDep,
    SessionDep,
    UnprocessableError,
    require_roles,
)
from service.evaluation.runtime import ClockDep, RuntimeDep
from service.inspections.deps import ConfigDep
from service.inspections.periods import Period, PeriodError
from service.inspections.schemas import PeriodText
from service.selfchecks import flows, service
from service.selfchecks.models import MissingSelfCheck, SelfCheck
from service.selfchecks.schemas import (
    Comparison,
    Declaration,
    MissingSelfCheckRead,
    SelfCheckCreate,
    SelfCheckRead,
    SelfCheckResult,
)

router = APIRouter(tags=["self-checks"])
openapi_tag = {
    "name": "self-checks",
    "description": "Department self-checks (自查): the department declares what it found; zhidu judges its "
    "records of the period and answers; the supervision group sees under-reporting. Self-checks not "
    "submitted by the deadline are listed as missing.",
}

DepartmentUser = Annotated[User, Depends(require_roles(Role.DEPARTMENT))]


def selfcheck_read(item: SelfCheck, user: User) -> SelfCheckRead:
    sees_comparison = user.role != Role.DEPARTMENT
    return SelfCheckRead(
        id=item.id,
        dept=item.dept,
        period=item.period,
        revision=item.revision,
        submitted_by=item.submitted_by,
        submitted_at=item.submitted_at,
        due_at=item.due_at,
        late=item.late,
        as_of=item.as_of,
        policy_version=item.policy_version,
        declaration=Declaration.model_validate(item.declaration),
        result=SelfCheckResult.model_validate(item.result),
        under_reported=item.under_reported,
        flagged=item.under_reported > 0,
        comparison=Comparison.model_validate(item.comparison) if sees_comparison else None,
    )


@router.post(
    "/selfchecks",
    status_code=201,
    summary="Submit your department's self-check of a period that has ended (department)",
    response_model=SelfCheckRead,
    responses={409: {"model": ErrorResponse, "description": "The period has not ended"}},
)
def submit_selfcheck(
    body: SelfCheckCreate,
    user: DepartmentUser,
    session: SessionDep,
    runtime: RuntimeDep,
    config: ConfigDep,
    clock: ClockDep,
) -> SelfCheckRead:
    try:
        period = Period.parse(body.period)
    except PeriodError as exc:
        raise UnprocessableError(
            str(exc),
            exc.message_zh,
            details=[{"loc": ["body", "period"], "message": str(exc), "type": "period"}],
        ) from None
    assert user.dept is not None
    try:
        item = flows.submit(
            session,
            runtime=runtime,
            config=config,
            dept=user.dept,
            period=period,
            declaration=body.declaration,
            actor=user.username,
            now=clock(),
        )
    except flows.SelfCheckRefusedError as exc:
        raise ConflictError(exc.message, exc.message_zh, code=exc.code) from None
    return selfcheck_read(item, user)


@router.get(
    "/selfchecks/missing",
    summary="Self-checks due and not submitted by their deadline, in your departments",
    response_model=Page[MissingSelfCheckRead],
)
def list_missing(
    _user: CurrentUser,
    scope: ScopeDep,
    session: SessionDep,
    page: PaginationDep,
    dept: Annotated[DeptCode | None, Query()] = None,
    period: Annotated[PeriodText | None, Query()] = None,
    status: Annotated[str | None, Query(pattern="^(open|submitted_late)$")] = None,
) -> Page[MissingSelfCheckRead]:
    items, total = service.list_missing(
        session,
        scope=scope.where(MissingSelfCheck.dept),
        dept=dept,
        period=period,
        status=status,
        limit=page.limit,
        offset=page.offset,
    )
    return page.of([MissingSelfCheckRead.model_validate(m) for m in items], total)


@router.get(
    "/selfchecks", summary="Self-checks of your departments, newest first", response_model=Page[SelfCheckRead]
)
def list_selfchecks(
    user: CurrentUser,
    scope: ScopeDep,
    session: SessionDep,
    page: PaginationDep,
    dept: Annotated[DeptCode | None, Query()] = None,
    period: Annotated[PeriodText | None, Query()] = None,
    flagged: Annotated[
        bool | None, Query(description="Only those with under-reporting (true) or without.")
    ] = None,
) -> Page[SelfCheckRead]:
    items, total = service.list_selfchecks(
        session,
        scope=scope.where(SelfCheck.dept),
        dept=dept,
        period=period,
        flagged=flagged,
        limit=page.limit,
        offset=page.offset,
    )
    return page.of([selfcheck_read(i, user) for i in items], total)


@router.get(
    "/selfchecks/{selfcheck_id}", summary="One self-check and its result", response_model=SelfCheckRead
)
def get_selfcheck(
    selfcheck_id: PathId, user: CurrentUser, scope: ScopeDep, session: SessionDep
) -> SelfCheckRead:
    item = service.get(session, selfcheck_id=selfcheck_id)
    if item is None or not scope.can_see(item.dept):
        raise NotFoundError(f"self-check {selfcheck_id} not found", f"自查 {selfcheck_id} 不存在")
    return selfcheck_read(item, user)
