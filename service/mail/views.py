"""Routes: the outbox. Admins and supervisors see every message; a manager its own digests (another
message answers 404); department users are refused (403)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from service.accounts.models import User
from service.accounts.schemas import Role
from service.api.deps import (
    ConflictError,
    NotFoundError,
    Page,
    PaginationDep,
    PathId,
    SessionDep,
    SupervisorUser,
    require_roles,
)
from service.mail import flows, service
from service.mail.models import OutboxMessage
from service.mail.schemas import MessageKind, MessageStatus, OutboxDetail, OutboxImageRead, OutboxItem

router = APIRouter(tags=["mail"])
openapi_tag = {
    "name": "mail",
    "description": "The outbox: every digest and notice reminder mailed or to mail, with status and errors.",
}

OutboxReader = Annotated[User, Depends(require_roles(Role.ADMIN, Role.SUPERVISOR, Role.MANAGER))]


def _not_found(message_id: int) -> NotFoundError:
    return NotFoundError(f"message {message_id} not found", f"邮件 {message_id} 不存在")


def _item(message: OutboxMessage, images: int) -> dict[str, object]:
    fields = {name: getattr(message, name) for name in OutboxItem.model_fields if name != "images"}
    return {**fields, "images": images}


@router.get("/outbox", summary="Outgoing mail, newest first", response_model=Page[OutboxItem])
def list_outbox(
    caller: OutboxReader,
    session: SessionDep,
    page: PaginationDep,
    kind: Annotated[MessageKind | None, Query(description="Only this kind.")] = None,
    status: Annotated[MessageStatus | None, Query(description="Only this status.")] = None,
) -> Page[OutboxItem]:
    messages, total = service.list_messages(
        session,
        owner_id=caller.id if caller.role == Role.MANAGER else None,
        kind=None if kind is None else kind.value,
        status=None if status is None else status.value,
        limit=page.limit,
        offset=page.offset,
    )
    counts = service.image_counts(session, message_ids=[m.id for m in messages])
    return page.of([OutboxItem.model_validate(_item(m, counts.get(m.id, 0))) for m in messages], total)


@router.get("/outbox/{message_id}", summary="One message with its HTML and text", response_model=OutboxDetail)
def get_message(message_id: PathId, caller: OutboxReader, session: SessionDep) -> OutboxDetail:
    message = service.get(session, message_id=message_id)
    if message is None or (caller.role == Role.MANAGER and message.owner_id != caller.id):
        raise _not_found(message_id)
    images = service.images_of(session, message_id=message_id)
    return OutboxDetail.model_validate(
        {
            **_item(message, len(images)),
            "html": message.html,
            "text": message.text,
            "image_parts": [
                OutboxImageRead(cid=i.cid, filename=i.filename, size=len(i.content)) for i in images
            ],
        }
    )


@router.post(
    "/outbox/{message_id}/retry",
    summary="Queue a failed or outbox-only message again (supervisors)",
    response_model=OutboxItem,
)
def retry_message(message_id: PathId, _caller: SupervisorUser, session: SessionDep) -> OutboxItem:
    outcome = flows.requeue(session, message_id=message_id)
    if outcome is None:
        raise _not_found(message_id)
    message, queued = outcome
    if not queued:
        raise ConflictError(
            f"message {message_id} is {message.status}: only failed or outbox_only messages are retried",
            f"邮件 {message_id} 状态为 {message.status}：只有 failed 或 outbox_only 的邮件可以重发",
            code="not_retryable",
        )
    return OutboxItem.model_validate(_item(message, len(service.images_of(session, message_id=message_id))))
