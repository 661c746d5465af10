"""Routes: submit records as JSON, or upload a file of one record type."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, File, Form, Header, Path, Query, UploadFile
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from rules.problems import InputError
from service.accounts.models import User
from service.accounts.schemas import Role
from service.api.deps import (
    ApiError,
    ConflictError,
    ErrorResponse,
    ForbiddenError,
    NotFoundError,
    SessionDep,
    SettingsDep,
    UnprocessableError,
    require_roles,
)
from service.evaluation.runtime import Clock, ClockDep, Runtime, RuntimeDep
from service.ingest import flows, service
from service.ingest.schemas import IngestResult
from service.ingest.service import Checked, UnknownRecordTypeError

router = APIRouter(tags=["ingestion"])
openapi_tag = {
    "name": "ingestion",
    "description": "Submit records (JSON or a file). They are validated, stored (new records, new "
    "versions of changed ones; identical ones are no-ops) and judged on arrival, with the stored "
    "records related to them; the response says what was stored and which violations opened or closed.",
}

SubmitterUser = Annotated[User, Depends(require_roles(Role.ADMIN, Role.SUPERVISOR, Role.DEPARTMENT))]
RecordTypeName = Annotated[
    str,
    Path(
        min_length=1,
        max_length=service.MAX_RECORD_TYPE,
        description="A record type of the policy library, e.g. `expense_claim`.",
    ),
]
Partial = Annotated[
    bool,
    Query(description="Keep the valid rows when others are rejected (default: all or nothing)."),
]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Any printable ASCII (no spaces), e.g. a UUID: a retry with the same key and the same "
        "request gets the first response again (header `Idempotency-Replayed: true`); the same key with "
        "another request answers 409.",
    ),
]

_RESPONSES: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorResponse, "description": "The Idempotency-Key was used with another request"},
    422: {
        "model": ErrorResponse,
        "description": "Rejected rows (`details`: one entry per problem, with row, record_id, field, "
        "message, message_zh) and nothing stored; or an unreadable input",
    },
}


def _department_of(user: User, runtime: Runtime, record_type: str) -> str | None:
    """The one department `user` may submit (None: any); 403 for a type without departments."""
    if user.role != Role.DEPARTMENT:
        return None
    if not runtime.library.model[record_type].has_dept:
        raise ForbiddenError(
            f"{record_type} records have no department: a department user may not submit them "
            "(they are submitted by the supervision group or a system account)",
            f"{record_type} 记录不属于任何部门：部门用户不能提交（由流程监督小组或系统账号提交）",
        )
    return user.dept


def _rejected(exc: flows.RejectedInputError) -> UnprocessableError:
    return UnprocessableError(
        exc.message,
        exc.message_zh,
        code="rejected_rows",
        details=[row.model_dump() for row in exc.rows],
    )


def _respond(result: flows.Replay, *, replayed: bool) -> JSONResponse:
    headers = {"Idempotency-Replayed": "true"} if replayed else {}
    return JSONResponse(result.body, status_code=result.status_code, headers=headers)


def _submit(
    session: Session,
    runtime: Runtime,
    user: User,
    clock: Clock,
    *,
    check: Callable[[], Checked],
    partial: bool,
    idempotency: flows.Idempotency | None,
) -> JSONResponse:
    """The sync part of both routes (run in the thread pool): replay, check, store and evaluate."""
    try:
        if idempotency is not None:
            stored = flows.replay(session, user_id=user.id, idempotency=idempotency, now=clock())
            if stored is not None:
                return _respond(stored, replayed=True)
        checked = check()
        result = flows.submit(
            session,
            runtime=runtime,
            checked=checked,
            partial=partial,
            user_id=user.id,
            actor=user.username,
            now=clock(),
            idempotency=idempotency,
        )
    except flows.KeyReusedError:
        raise ConflictError(
            "this Idempotency-Key was used before with a different request; use a new key",
            "该 Idempotency-Key 已用于另一个不同的请求；请使用新的键",
            code="idempotency_key_reused",
        ) from None
    except flows.RejectedInputError as exc:
        raise _rejected(exc) from None
    return _respond(result, replayed=False)


def _record_type(runtime: Runtime, name: str, *, not_found: type[ApiError]) -> str:
    try:
        return service.record_type_named(runtime.library.model, name).name
    except UnknownRecordTypeError as exc:
        raise not_found(exc.message, exc.message_zh) from None


@router.post(
    "/records/{record_type}",
    summary="Submit records of one type as JSON (one object or a list); stored and evaluated on arrival",
    response_model=IngestResult,
    responses=_RESPONSES,
)
def submit_records(
    record_type: RecordTypeName,
    body: Annotated[
        dict[str, Any] | list[Any],
        Body(
            description="One record (an object with the type's fields) or a list of records. Values may "
            "be JSON numbers and booleans or text as in a CSV file; timestamps without an offset are in "
            "the company's time zone.",
            openapi_examples={
                "one": {
                    "summary": "one goods receipt",
                    "value": {
                        "id": "GR0000017",
                        "dept": "D03",
                        "po_id": "PO0000017",
                        "received_at": "2026-03-04T10:00:00+08:00",
                        "quantity": 20,
                        "result": "accepted",
                        "user_dept_signed": True,
                        "qc_signed": True,
                    },
                },
                "several": {
                    "summary": "two expense claims",
                    "value": [
                        {
                            "id": "EC0000101",
                            "dept": "D01",
                            "applicant": "李伟",
                            "category": "travel",
                            "amount": "1,280.00",
                            "invoice_no": "FP-88001",
                            "invoice_count": 2,
                            "submitted_at": "2026-03-01 09:30",
                        },
                        {
                            "id": "EC0000102",
                            "dept": "D01",
                            "applicant": "王芳",
                            "category": "office",
                            "amount": 86.5,
                            "invoice_no": "FP-88002",
                            "invoice_count": 1,
                            "submitted_at": "2026-03-02T14:00:00+08:00",
                        },
                    ],
                },
            },
        ),
    ],
    user: SubmitterUser,
    session: SessionDep,
    settings: SettingsDep,
    runtime: RuntimeDep,
    clock: ClockDep,
    partial: Partial = False,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    name = _record_type(runtime, record_type, not_found=NotFoundError)
    dept = _department_of(user, runtime, name)
    library = runtime.library
    idempotency = None
    if idempotency_key is not None:
        canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        idempotency = flows.Idempotency(
            idempotency_key,
            service.request_hash("records", name, str(partial), canonical),
            timedelta(hours=settings.idempotency_ttl_hours),
        )
    return _submit(
        session,
        runtime,
        user,
        clock,
        check=lambda: service.check_json(library.model[name], body, tz=library.company.tz, dept=dept),
        partial=partial,
        idempotency=idempotency,
    )


@router.post(
    "/uploads",
    summary="Upload a CSV, XLSX, JSON, JSONL or Parquet file of one record type; stored and evaluated on arrival",
    response_model=IngestResult,
    responses=_RESPONSES,
)
async def upload(
    file: Annotated[
        UploadFile,
        File(description="The file; its extension says how to read it (.csv .xlsx .json .jsonl .parquet)."),
    ],
    user: SubmitterUser,
    session: SessionDep,
    settings: SettingsDep,
    runtime: RuntimeDep,
    clock: ClockDep,
    record_type: Annotated[
        str | None,
        Form(
            min_length=1,
            max_length=service.MAX_RECORD_TYPE,
            description="The record type (default: the file name, e.g. `expense_claim.csv`).",
        ),
    ] = None,
    partial: Partial = False,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    filename = service.upload_name(file.filename)
    name = record_type or filename.rsplit(".", 1)[0]
    name = _record_type(runtime, name, not_found=UnprocessableError)
    dept = _department_of(user, runtime, name)
    data = await file.read()
    library = runtime.library
    idempotency = None
    if idempotency_key is not None:
        idempotency = flows.Idempotency(
            idempotency_key,
            service.request_hash("upload", name, str(partial), filename, data),
            timedelta(hours=settings.idempotency_ttl_hours),
        )

    def check() -> Checked:
        rt = library.model[name]
        try:
            raw = service.read_upload(data, filename=filename)
        except InputError as exc:
            return service.unreadable(rt, filename, exc)
        return service.check_frame(rt, raw, source=filename, tz=library.company.tz, dept=dept)

    return await run_in_threadpool(
        _submit, session, runtime, user, clock, check=check, partial=partial, idempotency=idempotency
    )
