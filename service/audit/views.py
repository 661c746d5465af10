"""Routes: browse and verify the audit trail (supervisor, admin)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from service.api.deps import Page, PaginationDep, SessionDep, SupervisorUser, UnprocessableError
from service.audit import flows
from service.audit.schemas import AuditEventRead, AuditProblemRead, ChainReportRead

router = APIRouter(prefix="/audit", tags=["audit"])
openapi_tag = {"name": "audit", "description": "The hash-chained audit trail (supervisor, admin)."}


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise UnprocessableError(
            f"{name} needs a time zone offset, e.g. 2025-03-01T09:30:00+08:00",
            f"{name} 需要带时区偏移，例如 2025-03-01T09:30:00+08:00",
            details=[
                {"loc": ["query", name], "message": "timezone offset required", "type": "timezone_aware"}
            ],
        )
    return value


@router.get(
    "",
    summary="Audit events, newest first, with filters (supervisor, admin)",
    response_model=Page[AuditEventRead],
)
def list_events(
    _user: SupervisorUser,
    session: SessionDep,
    page: PaginationDep,
    actor: Annotated[str | None, Query(max_length=128, description="Username, or `system`.")] = None,
    action: Annotated[str | None, Query(max_length=64, description="E.g. `token.issued`.")] = None,
    entity_type: Annotated[
        str | None, Query(max_length=64, description="E.g. `user`, `token`, `record`.")
    ] = None,
    entity_id: Annotated[str | None, Query(max_length=256)] = None,
    since: Annotated[
        datetime | None, Query(description="From this time on (inclusive), with offset.")
    ] = None,
    until: Annotated[datetime | None, Query(description="Before this time (exclusive), with offset.")] = None,
) -> Page[AuditEventRead]:
    events, total = flows.browse(
        session,
        actor=actor,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        since=_aware(since, "since"),
        until=_aware(until, "until"),
        limit=page.limit,
        offset=page.offset,
    )
    return page.of([AuditEventRead.model_validate(e) for e in events], total)


@router.get(
    "/verify",
    summary="Verify the hash chain: altered, removed, inserted events (supervisor, admin)",
    response_model=ChainReportRead,
)
def verify(_user: SupervisorUser, session: SessionDep) -> ChainReportRead:
    report = flows.verify(session)
    return ChainReportRead(
        ok=report.ok,
        events=report.events,
        head_seq=report.head_seq,
        head_hash=report.head_hash,
        problems=[AuditProblemRead.model_validate(p) for p in report.problems],
    )
