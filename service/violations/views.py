"""Routes: list and read violations (scoped by department), waive or reopen them (supervisors)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

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
from service.evaluation.source import DbSource
from service.records import service as records
from service.violations import flows, service
from service.violations.models import Violation
from service.violations.schemas import (
    ClauseText,
    HistoryRead,
    RecordBrief,
    RelatedRecord,
    RuleBrief,
    Severity,
    Status,
    TextRead,
    ViolationDetail,
    ViolationRead,
    ViolationUpdate,
)

router = APIRouter(prefix="/violations", tags=["violations"])
openapi_tag = {
    "name": "violations",
    "description": "What the rules found, one per rule and record, with status (open, closed, waived) and "
    "history. Lists and reads are limited to your departments; supervisors waive and reopen.",
}


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise UnprocessableError(
            f"{name} needs a time zone offset, e.g. 2026-03-01T00:00:00+08:00",
            f"{name} 需要带时区偏移，例如 2026-03-01T00:00:00+08:00",
            details=[
                {"loc": ["query", name], "message": "timezone offset required", "type": "timezone_aware"}
            ],
        )
    return value


def _not_found(violation_id: int) -> NotFoundError:
    return NotFoundError(f"violation {violation_id} not found", f"违规 {violation_id} 不存在")


@router.get(
    "",
    summary="Violations in your departments, newest first, with filters",
    response_model=Page[ViolationRead],
)
def list_violations(
    _user: CurrentUser,
    scope: ScopeDep,
    session: SessionDep,
    page: PaginationDep,
    dept: Annotated[DeptCode | None, Query(description="One department.")] = None,
    rule: Annotated[str | None, Query(max_length=32, description="A rule id, e.g. `PUR-007`.")] = None,
    severity: Annotated[Severity | None, Query()] = None,
    status: Annotated[Status | None, Query()] = None,
    detected_from: Annotated[
        datetime | None, Query(description="First detected at or after this time (with offset).")
    ] = None,
    detected_to: Annotated[
        datetime | None, Query(description="First detected before this time (exclusive, with offset).")
    ] = None,
    record_type: Annotated[str | None, Query(max_length=64)] = None,
    record_id: Annotated[str | None, Query(max_length=256)] = None,
) -> Page[ViolationRead]:
    items, total = service.list_violations(
        session,
        scope=scope.where(Violation.dept),
        dept=dept,
        rule=rule,
        severity=severity,
        status=status,
        detected_from=_aware(detected_from, "detected_from"),
        detected_to=_aware(detected_to, "detected_to"),
        record_type=record_type,
        record_id=record_id,
        limit=page.limit,
        offset=page.offset,
    )
    return page.of([ViolationRead.model_validate(v) for v in items], total)


@router.get(
    "/{violation_id}",
    summary="One violation: its rule, clause texts, record, related records and history",
    response_model=ViolationDetail,
)
def get_violation(
    violation_id: PathId, _user: CurrentUser, scope: ScopeDep, session: SessionDep, runtime: RuntimeDep
) -> ViolationDetail:
    violation = service.get(session, violation_id=violation_id)
    if violation is None:
        raise _not_found(violation_id)
    scope.require(violation.dept, _not_found(violation_id))
    library = runtime.library
    try:
        rule = library.rule(violation.rule_id)
    except KeyError:
        rule = None
    clauses = [library.clauses[c] for c in violation.clauses if c in library.clauses]
    record = records.current_record(session, record_type=violation.record_type, record_id=violation.record_id)
    related: list[RelatedRecord] = []
    hidden = 0
    if rule is not None and record is not None:
        source = DbSource(session, runtime.codec, runtime.key_fields)
        for found in service.related_records(
            session, rule=rule.compiled, payload=record.payload, source=source
        ):
            rt = library.model.types.get(found.record.record_type)
            if rt is not None and rt.has_dept and not scope.can_see(found.record.dept):
                hidden += 1
                continue
            related.append(RelatedRecord(**_brief(found.record), via=found.via))
    base = ViolationRead.model_validate(violation).model_dump()
    return ViolationDetail(
        **base,
        rule_detail=None
        if rule is None
        else RuleBrief(
            id=rule.id,
            title=TextRead(**rule.title.as_dict()),
            record_type=rule.record_type,
            severity=Severity(rule.severity),
            responsible=rule.responsible,
            rectify_days=rule.rectify_days,
        ),
        clause_texts=[
            ClauseText(
                id=c.id,
                manual=c.manual,
                title=TextRead(**c.title.as_dict()),
                text=TextRead(**c.text.as_dict()),
            )
            for c in clauses
        ],
        record=None if record is None else RecordBrief(**_brief(record)),
        related=related,
        related_hidden=hidden,
        history=[HistoryRead.model_validate(h) for h in service.history(session, violation_id=violation.id)],
    )


def _brief(record: Any) -> dict[str, Any]:
    return {
        "record_type": record.record_type,
        "record_id": record.record_id,
        "version": record.version,
        "dept": record.dept,
        "payload": record.payload,
        "submitted_at": record.submitted_at,
    }


@router.patch(
    "/{violation_id}",
    summary="Waive a violation with a reason, or reopen a waived one (supervisor, admin)",
    response_model=ViolationRead,
    responses={409: {"model": ErrorResponse, "description": "Not allowed from the current status"}},
)
def update_violation(
    violation_id: PathId,
    body: ViolationUpdate,
    user: SupervisorUser,
    session: SessionDep,
    runtime: RuntimeDep,
    clock: ClockDep,
) -> ViolationRead:
    try:
        violation = flows.change_status(
            session,
            violation_id=violation_id,
            to=Status(body.status),
            reason=body.reason,
            actor=user.username,
            policy_version=runtime.version,
            now=clock(),
            visible=visible_depts(user),
        )
    except service.TransitionError as exc:
        raise ConflictError(exc.message, exc.message_zh, code="invalid_transition") from None
    if violation is None:
        raise _not_found(violation_id)
    return ViolationRead.model_validate(violation)
