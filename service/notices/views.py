"""Routes: rectification notices (整改通知) and waivers.

Departments act on their own notices (acknowledge, respond with corrected records and evidence);
supervisors issue, verify, return and close notices and waive findings; managers read. A notice of a
department you may not see answers 404."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Header, Query, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from rules.library import Library
from service.accounts.models import User
from service.accounts.schemas import DeptCode, Role
from service.api.deps import (
    ApiError,
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
    require_roles,
    visible_depts,
)
from service.evaluation.runtime import ClockDep, RuntimeDep
from service.inspections.deps import ConfigDep
from service.notices import flows, service
from service.notices.models import Notice, NoticeItem, Waiver
from service.notices.schemas import (
    ClauseRef,
    EventRead,
    EvidenceRead,
    IssueRequest,
    ItemCheck,
    ItemOutcome,
    NoteRequest,
    NoticeDetail,
    NoticeItemRead,
    NoticeRead,
    NoticeStatus,
    ReasonRequest,
    ReminderRead,
    ResponseRead,
    ReturnRequest,
    TextRead,
    Verification,
    WaiverCreate,
    WaiverRead,
)
from service.notices.service import EvidenceFile, NoticeError
from service.penalties.schemas import PenaltyRead
from service.penalties.views import penalty_reads

router = APIRouter(tags=["notices"])
openapi_tag = {
    "name": "notices",
    "description": "Rectification notices (整改通知) ZG-<yyyy>-<mm>-<seq>: issued → acknowledged → "
    "response_submitted → verified or returned → closed; overdue notices are escalated (department head, "
    "then general manager) and reminded. Verification re-runs the rules on the current records. Waivers "
    "of findings, with an expiry that revives them.",
}

DepartmentUser = Annotated[User, Depends(require_roles(Role.DEPARTMENT))]
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorResponse, "description": "Not allowed from the notice's current status"}
}
MAX_FILENAME = 255


def _not_found(notice_id: int) -> NotFoundError:
    return NotFoundError(f"notice {notice_id} not found", f"整改通知 {notice_id} 不存在")


def _conflict(exc: NoticeError) -> ConflictError:
    return ConflictError(exc.message, exc.message_zh, code=exc.code)


def _invalid(exc: flows.InvalidInputError) -> UnprocessableError:
    return UnprocessableError(exc.message, exc.message_zh, code="invalid_response", details=exc.details)


@contextmanager
def _domain_errors(not_found: NotFoundError) -> Iterator[None]:
    """The flows' errors as the API's: unknown or outside the caller's departments → 404 (never
    403, so nothing leaks), not allowed in the current status → 409, a bad response → 422, too
    large → 413."""
    try:
        yield
    except flows.NotFoundError:
        raise not_found from None
    except NoticeError as exc:
        raise _conflict(exc) from None
    except flows.InvalidInputError as exc:
        raise _invalid(exc) from None
    except flows.TooLargeError as exc:
        raise ApiError(exc.message, exc.message_zh, code="payload_too_large", status_code=413) from None


def notice_read(notice: Notice, findings: int, now: datetime) -> NoticeRead:
    return NoticeRead(
        id=notice.id,
        number=notice.number,
        dept=notice.dept,
        status=NoticeStatus(notice.status),
        escalation_level=notice.escalation_level,
        overdue=service.is_overdue(notice, now),
        inspection_id=notice.inspection_id,
        issued_at=notice.issued_at,
        issued_by=notice.issued_by,
        due_date=notice.due_date,
        due_at=notice.due_at,
        department_head=notice.department_head,
        findings=findings,
        status_changed_at=notice.status_changed_at,
    )


def _item_read(item: NoticeItem, library: Library) -> NoticeItemRead:
    try:
        rule = library.rule(item.rule_id)
        title: TextRead | None = TextRead(**rule.title.as_dict())
    except KeyError:
        title = None
    clauses = []
    for cid in item.clauses:
        clause = library.clauses.get(cid)
        clauses.append(
            ClauseRef(id=cid)
            if clause is None
            else ClauseRef(
                id=cid,
                manual=clause.manual,
                title=TextRead(**clause.title.as_dict()),
                text=TextRead(**clause.text.as_dict()),
            )
        )
    return NoticeItemRead(
        id=item.id,
        violation_id=item.violation_id,
        rule=item.rule_id,
        rule_title=title,
        record_type=item.record_type,
        record_id=item.record_id,
        severity=item.severity,
        responsible=item.responsible,
        clauses=clauses,
        message_zh=item.message_zh,
        message_en=item.message_en,
        rectify_days=item.rectify_days,
        outcome=ItemOutcome(item.outcome),
        verification=None if item.verification is None else ItemCheck.model_validate(item.verification),
    )


def notice_detail(session: SessionDep, notice: Notice, library: Library, now: datetime) -> NoticeDetail:
    items = service.items_of(session, notice_id=notice.id)
    responses = service.responses_of(session, notice_id=notice.id)
    evidence = service.evidence_of(session, response_ids=[r.id for r in responses])
    reminders, _ = service.reminders_of(
        session, scope=Notice.id == notice.id, notice_id=notice.id, limit=1000
    )
    base = notice_read(notice, len(items), now)
    return NoticeDetail(
        **base.model_dump(),
        items=[_item_read(i, library) for i in items],
        responses=[
            ResponseRead(
                id=r.id,
                submitted_by=r.submitted_by,
                submitted_at=r.submitted_at,
                description=r.description,
                item_ids=r.item_ids,
                records=list(r.records),
                verification=Verification.model_validate(r.verification),
                decision=r.decision,
                decided_by=r.decided_by,
                decided_at=r.decided_at,
                decision_note=r.decision_note,
                evidence=[EvidenceRead.model_validate(e) for e in evidence if e.response_id == r.id],
            )
            for r in responses
        ],
        events=[EventRead.model_validate(e) for e in service.events_of(session, notice_id=notice.id)],
        reminders=[ReminderRead.model_validate(r) for r in sorted(reminders, key=lambda r: r.id)],
    )


# --- notices -------------------------------------------------------------------------------------


@router.get(
    "/notices",
    summary="Rectification notices of your departments, newest first",
    response_model=Page[NoticeRead],
)
def list_notices(
    _user: CurrentUser,
    scope: ScopeDep,
    session: SessionDep,
    page: PaginationDep,
    clock: ClockDep,
    dept: Annotated[DeptCode | None, Query()] = None,
    status: Annotated[NoticeStatus | None, Query()] = None,
    overdue: Annotated[bool | None, Query(description="Only overdue ones (true).")] = None,
    escalation_level: Annotated[int | None, Query(ge=0, le=9)] = None,
    inspection_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> Page[NoticeRead]:
    now = clock()
    items, total = service.list_notices(
        session,
        scope=scope.where(Notice.dept),
        dept=dept,
        status=status,
        inspection_id=inspection_id,
        overdue_at=now if overdue else None,
        escalation_level=escalation_level,
        limit=page.limit,
        offset=page.offset,
    )
    counts = service.item_counts(session, notice_ids=[n.id for n in items])
    return page.of([notice_read(n, counts.get(n.id, 0), now) for n in items], total)


@router.post(
    "/notices",
    status_code=201,
    summary="Issue notices now for open violations on no active notice (supervisor, admin)",
    response_model=list[NoticeRead],
)
def issue_notices(
    body: IssueRequest,
    user: SupervisorUser,
    session: SessionDep,
    runtime: RuntimeDep,
    config: ConfigDep,
    clock: ClockDep,
) -> list[NoticeRead]:
    now = clock()
    issued = flows.issue(
        session,
        runtime=runtime,
        config=config,
        dept=body.dept,
        violation_ids=body.violation_ids,
        actor=user.username,
        now=now,
    )
    counts = service.item_counts(session, notice_ids=[n.id for n in issued])
    return [notice_read(n, counts.get(n.id, 0), now) for n in issued]


@router.get(
    "/notices/{notice_id}",
    summary="One notice: findings with clauses, responses, evidence, events, reminders",
    response_model=NoticeDetail,
)
def get_notice(
    notice_id: PathId,
    _user: CurrentUser,
    scope: ScopeDep,
    session: SessionDep,
    runtime: RuntimeDep,
    clock: ClockDep,
) -> NoticeDetail:
    notice = service.get(session, notice_id=notice_id)
    if notice is None or not scope.can_see(notice.dept):
        raise _not_found(notice_id)
    return notice_detail(session, notice, runtime.library, clock())


@router.post(
    "/notices/{notice_id}/acknowledge",
    summary="Acknowledge (签收) a notice of your department (department)",
    response_model=NoticeRead,
    responses=_CONFLICT,
)
def acknowledge(notice_id: PathId, user: DepartmentUser, session: SessionDep, clock: ClockDep) -> NoticeRead:
    now = clock()
    with _domain_errors(_not_found(notice_id)):
        notice = flows.acknowledge(
            session, notice_id=notice_id, visible=visible_depts(user), actor=user.username, now=now
        )
    return notice_read(notice, len(service.items_of(session, notice_id=notice.id)), now)


@router.post(
    "/notices/{notice_id}/responses",
    status_code=201,
    summary="Submit the department's response: description, corrected records, evidence files (department)",
    response_model=NoticeDetail,
    responses={
        **_CONFLICT,
        413: {"model": ErrorResponse, "description": "An evidence file, or all of them, over the limit"},
    },
)
async def respond(
    notice_id: PathId,
    user: DepartmentUser,
    session: SessionDep,
    runtime: RuntimeDep,
    config: ConfigDep,
    clock: ClockDep,
    description: Annotated[str, Form(min_length=1, max_length=10000, description="What the department did.")],
    item_ids: Annotated[
        list[int] | None, Form(description="The findings (item ids) addressed; default all.")
    ] = None,
    records: Annotated[
        list[str] | None,
        Form(
            description="Corrected records, `record_type:record_id`, submitted through /records or /uploads."
        ),
    ] = None,
    files: Annotated[list[UploadFile] | None, File(description="Evidence files.")] = None,
) -> NoticeDetail:
    evidence: list[EvidenceFile] = []
    for upload in files or []:
        limit = config.evidence_max_file_bytes
        content = await upload.read(limit + 1)
        name = (upload.filename or "evidence").replace("\\", "/").rsplit("/", 1)[-1][
            :MAX_FILENAME
        ] or "evidence"
        if len(content) > limit:
            raise ApiError(
                f"evidence file {name!r} is larger than {limit} bytes",
                f"证明文件 {name!r} 超过 {limit} 字节",
                code="payload_too_large",
                status_code=413,
            )
        evidence.append(
            EvidenceFile(name, (upload.content_type or "application/octet-stream")[:128], content)
        )
    bad_ids = [i for i in item_ids or [] if i < 1 or i > 2**63 - 1]
    if bad_ids or any(len(r) > 400 for r in records or []):
        raise UnprocessableError(
            details=[{"loc": ["body"], "message": "item_ids or records out of range", "type": "range"}]
        )
    now = clock()
    with _domain_errors(_not_found(notice_id)):
        notice, _ = await run_in_threadpool(
            flows.respond,
            session,
            runtime=runtime,
            config=config,
            notice_id=notice_id,
            given=flows.ResponseInput(
                description=description.strip(), item_ids=item_ids, records=records or [], files=evidence
            ),
            visible=visible_depts(user),
            actor=user.username,
            now=now,
        )
    return await run_in_threadpool(notice_detail, session, notice, runtime.library, now)


class EvidenceContent(EvidenceRead):
    """An evidence file as JSON (ask with `Accept: application/octet-stream` for the bytes)."""

    content_base64: str


@router.get(
    "/notices/{notice_id}/evidence/{evidence_id}",
    summary="An evidence file: JSON with its content in base64, or the bytes (Accept: application/octet-stream)",
    response_model=EvidenceContent,
    responses={
        200: {
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            }
        }
    },
)
def download_evidence(
    notice_id: PathId,
    evidence_id: PathId,
    _user: CurrentUser,
    scope: ScopeDep,
    session: SessionDep,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> EvidenceContent | Response:
    notice = service.get(session, notice_id=notice_id)
    if notice is None or not scope.can_see(notice.dept):
        raise _not_found(notice_id)
    found = service.evidence(session, notice_id=notice_id, evidence_id=evidence_id)
    if found is None:
        raise NotFoundError(f"evidence {evidence_id} not found", f"证明文件 {evidence_id} 不存在")
    if accept is not None and "application/octet-stream" in accept and "application/json" not in accept:
        # Always as an attachment of an inert type: a stored file is never rendered by the browser.
        return Response(
            content=found.content,
            media_type="application/octet-stream",
            headers={
                "Content-Disposition": f"attachment; filename*=UTF-8''{quote(found.filename)}",
                "X-Content-SHA256": found.sha256,
            },
        )
    return EvidenceContent(
        **EvidenceRead.model_validate(found).model_dump(),
        content_base64=base64.b64encode(found.content).decode("ascii"),
    )


@router.get(
    "/notices/{notice_id}/verification",
    summary="Re-run the rules of the notice's findings on the current records now (supervisor, admin)",
    response_model=Verification,
)
def get_verification(
    notice_id: PathId, user: SupervisorUser, session: SessionDep, runtime: RuntimeDep, clock: ClockDep
) -> Verification:
    with _domain_errors(_not_found(notice_id)):
        return flows.verification(
            session, runtime=runtime, notice_id=notice_id, visible=visible_depts(user), now=clock()
        )


@router.post(
    "/notices/{notice_id}/verify",
    summary="Confirm the rectification after re-running the rules (supervisor, admin)",
    response_model=NoticeDetail,
    responses=_CONFLICT,
)
def verify(
    notice_id: PathId,
    body: NoteRequest,
    user: SupervisorUser,
    session: SessionDep,
    runtime: RuntimeDep,
    clock: ClockDep,
) -> NoticeDetail:
    now = clock()
    with _domain_errors(_not_found(notice_id)):
        notice, _ = flows.verify(
            session,
            runtime=runtime,
            notice_id=notice_id,
            note=body.note,
            visible=visible_depts(user),
            actor=user.username,
            now=now,
        )
    return notice_detail(session, notice, runtime.library, now)


@router.post(
    "/notices/{notice_id}/return",
    summary="Return the response for more rectification, optionally with a new deadline (supervisor, admin)",
    response_model=NoticeRead,
    responses=_CONFLICT,
)
def return_notice(
    notice_id: PathId,
    body: ReturnRequest,
    user: SupervisorUser,
    session: SessionDep,
    runtime: RuntimeDep,
    clock: ClockDep,
) -> NoticeRead:
    now = clock()
    with _domain_errors(_not_found(notice_id)):
        notice = flows.return_notice(
            session,
            runtime=runtime,
            notice_id=notice_id,
            reason=body.reason,
            due_date=body.due_date,
            visible=visible_depts(user),
            actor=user.username,
            now=now,
        )
    return notice_read(notice, len(service.items_of(session, notice_id=notice.id)), now)


class ClosedRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    notice: NoticeRead
    penalties: list[PenaltyRead]


@router.post(
    "/notices/{notice_id}/close",
    summary="Close a verified notice (or one whose findings are all waived); penalties are proposed (supervisor, admin)",
    response_model=ClosedRead,
    responses=_CONFLICT,
)
def close_notice(
    notice_id: PathId,
    body: NoteRequest,
    user: SupervisorUser,
    session: SessionDep,
    runtime: RuntimeDep,
    clock: ClockDep,
) -> ClosedRead:
    now = clock()
    with _domain_errors(_not_found(notice_id)):
        notice, proposed = flows.close(
            session,
            runtime=runtime,
            notice_id=notice_id,
            note=body.note,
            visible=visible_depts(user),
            actor=user.username,
            now=now,
        )
    return ClosedRead(
        notice=notice_read(notice, len(service.items_of(session, notice_id=notice.id)), now),
        penalties=penalty_reads(session, proposed),
    )


@router.get(
    "/reminders",
    summary="Reminders and escalations to send (outbox), of your departments",
    response_model=Page[ReminderRead],
)
def list_reminders(
    _user: CurrentUser,
    scope: ScopeDep,
    session: SessionDep,
    page: PaginationDep,
    notice_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    unsent: Annotated[
        bool | None, Query(description="Only those not sent yet (true) or sent (false).")
    ] = None,
) -> Page[ReminderRead]:
    items, total = service.reminders_of(
        session,
        scope=scope.where(Notice.dept),
        notice_id=notice_id,
        unsent=unsent,
        limit=page.limit,
        offset=page.offset,
    )
    return page.of([ReminderRead.model_validate(r) for r in items], total)


# --- waivers -------------------------------------------------------------------------------------


@router.post(
    "/waivers",
    status_code=201,
    summary="Waive an open finding with a reason until an expiry (supervisor, admin)",
    response_model=WaiverRead,
    responses={
        404: {"model": ErrorResponse, "description": "No such violation in your departments"},
        409: {"model": ErrorResponse, "description": "The violation is not open, or the expiry has passed"},
    },
)
def create_waiver(
    body: WaiverCreate, user: SupervisorUser, session: SessionDep, runtime: RuntimeDep, clock: ClockDep
) -> WaiverRead:
    with _domain_errors(
        NotFoundError(f"violation {body.violation_id} not found", f"违规 {body.violation_id} 不存在")
    ):
        waiver = flows.waive(
            session,
            runtime=runtime,
            violation_id=body.violation_id,
            reason=body.reason,
            expires_at=body.expires_at,
            visible=visible_depts(user),
            actor=user.username,
            now=clock(),
        )
    return WaiverRead.model_validate(waiver)


@router.get(
    "/waivers",
    summary="Waivers of findings in your departments, newest first",
    response_model=Page[WaiverRead],
)
def list_waivers(
    _user: CurrentUser,
    scope: ScopeDep,
    session: SessionDep,
    page: PaginationDep,
    status: Annotated[str | None, Query(pattern="^(active|expired|revoked)$")] = None,
    violation_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> Page[WaiverRead]:
    items, total = service.list_waivers(
        session,
        scope=scope.where(Waiver.dept),
        status=status,
        violation_id=violation_id,
        limit=page.limit,
        offset=page.offset,
    )
    return page.of([WaiverRead.model_validate(w) for w in items], total)


@router.post(
    "/waivers/{waiver_id}/revoke",
    summary="Revoke an active waiver: the finding is open again (supervisor, admin)",
    response_model=WaiverRead,
    responses={409: {"model": ErrorResponse, "description": "The waiver is not active"}},
)
def revoke_waiver(
    waiver_id: PathId,
    body: ReasonRequest,
    user: SupervisorUser,
    session: SessionDep,
    runtime: RuntimeDep,
    clock: ClockDep,
) -> WaiverRead:
    with _domain_errors(NotFoundError(f"waiver {waiver_id} not found", f"豁免 {waiver_id} 不存在")):
        waiver = flows.revoke(
            session,
            runtime=runtime,
            waiver_id=waiver_id,
            reason=body.reason,
            visible=visible_depts(user),
            actor=user.username,
            now=clock(),
        )
    return WaiverRead.model_validate(waiver)
