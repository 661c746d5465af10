"""Routes: run an inspection (supervisors), read inspections and data-quality findings (scoped)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from service.accounts.schemas import DeptCode
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
    SupervisorUser,
    UnprocessableError,
    visible_depts,
)
from service.evaluation.runtime import ClockDep, RuntimeDep
from service.inspections import flows, service
from service.inspections.deps import ConfigDep
from service.inspections.models import DataQualityFinding, Inspection, InspectionSummary
from service.inspections.periods import Period, PeriodError
from service.inspections.schemas import (
    FindingCounts,
    InspectionCreate,
    InspectionRead,
    NoticeBrief,
    PeriodText,
    QualityRead,
    SummaryRead,
)
from service.notices import service as notices
from service.notices.models import Notice

router = APIRouter(tags=["inspections"])
openapi_tag = {
    "name": "inspections",
    "description": "Periodic inspections (month or quarter, some or all departments): data-quality checks "
    "and every rule as of the period's end plus grace, violations upserted and closed, a summary and "
    "compliance score per department, a rectification notice per department with findings. Supervisors "
    "run them; everyone reads those of their departments.",
}


def _not_found(inspection_id: int) -> NotFoundError:
    return NotFoundError(f"inspection {inspection_id} not found", f"检查 {inspection_id} 不存在")


def summary_read(s: InspectionSummary) -> SummaryRead:
    return SummaryRead(
        dept=s.dept,
        records_checked=s.records_checked,
        findings=FindingCounts(minor=s.findings_minor, major=s.findings_major, critical=s.findings_critical),
        waived=s.waived,
        data_quality=s.data_quality,
        opened=s.opened,
        closed=s.closed,
        score=s.score,
    )


def inspection_read(session: SessionDep, inspection: Inspection, scope: ScopeDep) -> InspectionRead:
    summaries = service.summaries(
        session, inspection_id=inspection.id, scope=scope.where(InspectionSummary.dept)
    )
    issued = list(
        session.scalars(
            select(Notice)
            .where(Notice.inspection_id == inspection.id, scope.where(Notice.dept))
            .order_by(Notice.seq)
        )
    )
    counts = notices.item_counts(session, notice_ids=[n.id for n in issued])
    return InspectionRead(
        id=inspection.id,
        period=inspection.period,
        period_start=inspection.period_start,
        period_end=inspection.period_end,
        as_of=inspection.as_of,
        complete=inspection.complete,
        depts=inspection.depts,
        trigger=inspection.trigger,
        requested_by=inspection.requested_by,
        started_at=inspection.started_at,
        finished_at=inspection.finished_at,
        policy_version=inspection.policy_version,
        records_checked=inspection.records_checked,
        counts={k: int(v) for k, v in inspection.counts.items()},
        timings={k: float(v) for k, v in inspection.timings.items()},
        summaries=[summary_read(s) for s in summaries],
        notices=[
            NoticeBrief(
                id=n.id,
                number=n.number,
                dept=n.dept,
                status=n.status,
                due_date=n.due_date,
                findings=counts.get(n.id, 0),
            )
            for n in issued
        ],
    )


@router.post(
    "/inspections",
    status_code=201,
    summary="Run an inspection of a period now (supervisor, admin)",
    response_model=InspectionRead,
    responses={409: {"model": ErrorResponse, "description": "The period has not begun"}},
)
def create_inspection(
    body: InspectionCreate,
    user: SupervisorUser,
    session: SessionDep,
    runtime: RuntimeDep,
    config: ConfigDep,
    clock: ClockDep,
    scope: ScopeDep,
) -> InspectionRead:
    try:
        period = Period.parse(body.period)
    except PeriodError as exc:
        raise UnprocessableError(
            str(exc),
            exc.message_zh,
            details=[{"loc": ["body", "period"], "message": str(exc), "type": "period"}],
        ) from None
    try:
        outcome = flows.run_inspection(
            session,
            runtime=runtime,
            config=config,
            period=period,
            depts=body.depts,
            actor=user.username,
            trigger="api",
            now=clock(),
            issue=body.issue_notices,
        )
    except flows.InspectionRefusedError as exc:
        raise ConflictError(exc.message, exc.message_zh, code=exc.code) from None
    return inspection_read(session, outcome.inspection, scope)


@router.get("/inspections", summary="Inspections, newest first", response_model=Page[InspectionRead])
def list_inspections(
    user: CurrentUser,
    scope: ScopeDep,
    session: SessionDep,
    page: PaginationDep,
    period: Annotated[PeriodText | None, Query(description="Only this period.")] = None,
) -> Page[InspectionRead]:
    items, total = service.list_inspections(
        session, visible=visible_depts(user), period=period, limit=page.limit, offset=page.offset
    )
    return page.of([inspection_read(session, i, scope) for i in items], total)


@router.get(
    "/inspections/{inspection_id}",
    summary="One inspection with its summaries and notices (your departments)",
    response_model=InspectionRead,
)
def get_inspection(
    inspection_id: PathId, user: CurrentUser, scope: ScopeDep, session: SessionDep
) -> InspectionRead:
    inspection = service.get(session, inspection_id=inspection_id)
    if inspection is None or not service.visible_to(
        session, inspection=inspection, visible=visible_depts(user)
    ):
        raise _not_found(inspection_id)
    return inspection_read(session, inspection, scope)


@router.get(
    "/data-quality-findings",
    summary="Data-quality findings of your departments (failed expectations, unverifiable verdicts)",
    response_model=Page[QualityRead],
)
def list_quality(
    _user: CurrentUser,
    scope: ScopeDep,
    session: SessionDep,
    page: PaginationDep,
    dept: Annotated[DeptCode | None, Query()] = None,
    status: Annotated[str | None, Query(pattern="^(open|resolved)$")] = None,
    kind: Annotated[str | None, Query(pattern="^(expectation|unverifiable)$")] = None,
    record_type: Annotated[str | None, Query(max_length=64)] = None,
    inspection_id: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="Last seen by this inspection.")
    ] = None,
) -> Page[QualityRead]:
    items, total = service.list_quality(
        session,
        scope=scope.where(DataQualityFinding.dept),
        dept=dept,
        status=status,
        kind=kind,
        record_type=record_type,
        inspection_id=inspection_id,
        limit=page.limit,
        offset=page.offset,
    )
    return page.of([QualityRead.model_validate(q) for q in items], total)
