"""Routes: managers' digest subscriptions and previews. A manager manages its own subscriptions
(another's answers 404); an admin manages every manager's; other roles are refused (403)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status

from service.accounts.models import User
from service.accounts.schemas import Role
from service.api.deps import (
    ApiError,
    ConflictError,
    ErrorResponse,
    ForbiddenError,
    NotFoundError,
    Page,
    PaginationDep,
    PathId,
    SessionDep,
    SettingsDep,
    UnprocessableError,
    require_roles,
)
from service.digests import flows, service
from service.digests.models import DigestSubscription
from service.digests.schemas import (
    Cadence,
    DigestPreview,
    PreviewFormat,
    SubscriptionCreate,
    SubscriptionRead,
    SubscriptionUpdate,
)

router = APIRouter(tags=["digests"])
openapi_tag = {
    "name": "digests",
    "description": "Managers' subscriptions to weekly or monthly compliance digests, sent by mail (docs/digests.md).",
}

SubscriberUser = Annotated[User, Depends(require_roles(Role.ADMIN, Role.MANAGER))]

_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorResponse, "description": "The manager already has a subscription of this cadence"}
}


def _api_error(exc: service.SubscriptionError) -> ApiError:
    if isinstance(exc, service.DuplicateSubscriptionError):
        return ConflictError(exc.message, exc.message_zh, code=exc.code)
    return UnprocessableError(exc.message, exc.message_zh, code=exc.code)


def _not_found(subscription_id: int) -> NotFoundError:
    return NotFoundError(
        f"digest subscription {subscription_id} not found", f"摘要订阅 {subscription_id} 不存在"
    )


def _read(sub: DigestSubscription, username: str) -> SubscriptionRead:
    return SubscriptionRead.model_validate(
        {
            "id": sub.id,
            "user_id": sub.user_id,
            "username": username,
            "cadence": sub.cadence,
            "depts": sub.depts,
            "language": sub.language,
            "active": sub.active,
            "created_at": sub.created_at,
        }
    )


def _owner(caller: User) -> int | None:
    """Whose subscriptions the caller manages: its own (manager), anyone's (admin: None)."""
    return None if caller.role == Role.ADMIN else caller.id


def _own(session: SessionDep, caller: User, subscription_id: int) -> tuple[DigestSubscription, User]:
    """The subscription if the caller may manage it (admin: any; manager: its own), else 404."""
    sub = service.get(session, subscription_id=subscription_id)
    if sub is None or (caller.role != Role.ADMIN and sub.user_id != caller.id):
        raise _not_found(subscription_id)
    owner = session.get(User, sub.user_id)
    assert owner is not None
    return sub, owner


@router.get(
    "/digests/subscriptions",
    summary="Digest subscriptions: a manager's own, every one for an admin",
    response_model=Page[SubscriptionRead],
)
def list_subscriptions(
    caller: SubscriberUser,
    session: SessionDep,
    page: PaginationDep,
    cadence: Annotated[Cadence | None, Query(description="Only this cadence.")] = None,
    active: Annotated[bool | None, Query(description="Only active (true) or paused (false) ones.")] = None,
) -> Page[SubscriptionRead]:
    rows, total = service.list_subscriptions(
        session,
        user_id=None if caller.role == Role.ADMIN else caller.id,
        cadence=None if cadence is None else cadence.value,
        active=active,
        limit=page.limit,
        offset=page.offset,
    )
    return page.of([_read(sub, user.username) for sub, user in rows], total)


@router.post(
    "/digests/subscriptions",
    summary="Subscribe a manager to a digest of departments within its scope",
    status_code=status.HTTP_201_CREATED,
    response_model=SubscriptionRead,
    responses=_CONFLICT,
)
def create_subscription(
    body: SubscriptionCreate, caller: SubscriberUser, session: SessionDep
) -> SubscriptionRead:
    user_id = body.user_id if body.user_id is not None else caller.id
    if caller.role != Role.ADMIN and user_id != caller.id:
        raise ForbiddenError(
            "a manager subscribes only itself; an admin subscribes others",
            "管理层用户只能为自己订阅；为他人订阅需要管理员",
        )
    try:
        sub = flows.subscribe(
            session,
            user_id=user_id,
            cadence=body.cadence.value,
            depts=body.depts,
            language=None if body.language is None else body.language.value,
            active=body.active,
            actor=caller.username,
        )
    except service.SubscriptionError as exc:
        raise _api_error(exc) from None
    if sub is None:
        raise UnprocessableError(f"there is no user {user_id}", f"用户 {user_id} 不存在", code="unknown_user")
    owner = session.get(User, sub.user_id)
    assert owner is not None
    return _read(sub, owner.username)


@router.get(
    "/digests/subscriptions/{subscription_id}",
    summary="One digest subscription",
    response_model=SubscriptionRead,
)
def get_subscription(
    subscription_id: PathId, caller: SubscriberUser, session: SessionDep
) -> SubscriptionRead:
    sub, owner = _own(session, caller, subscription_id)
    return _read(sub, owner.username)


@router.patch(
    "/digests/subscriptions/{subscription_id}",
    summary="Change a subscription: departments, language, pause or resume",
    response_model=SubscriptionRead,
)
def update_subscription(
    subscription_id: PathId, body: SubscriptionUpdate, caller: SubscriberUser, session: SessionDep
) -> SubscriptionRead:
    changes = {k: v for k, v in body.model_dump(include=body.model_fields_set).items() if v is not None}
    try:
        sub = flows.update(
            session,
            subscription_id=subscription_id,
            changes=changes,
            actor=caller.username,
            owner_id=_owner(caller),
        )
    except service.SubscriptionError as exc:
        raise _api_error(exc) from None
    if sub is None:
        raise _not_found(subscription_id)
    owner = session.get(User, sub.user_id)
    assert owner is not None
    return _read(sub, owner.username)


@router.delete(
    "/digests/subscriptions/{subscription_id}",
    summary="Remove a subscription (its digests stay in the outbox); the removed subscription",
    response_model=SubscriptionRead,
)
def delete_subscription(
    subscription_id: PathId, caller: SubscriberUser, session: SessionDep
) -> SubscriptionRead:
    removed = flows.delete(
        session, subscription_id=subscription_id, actor=caller.username, owner_id=_owner(caller)
    )
    if removed is None:
        raise _not_found(subscription_id)
    sub, username = removed
    return _read(sub, username)


@router.get(
    "/digests/subscriptions/{subscription_id}/preview",
    summary="The digest of the last complete period, rendered as HTML, PDF or the email as JSON, not sent",
    response_model=DigestPreview,
    responses={
        200: {
            "content": {
                "text/html": {"schema": {"type": "string"}},
                "application/pdf": {"schema": {"type": "string", "format": "binary"}},
            },
            "description": "HTML (the email's, images inline), PDF, or the email as JSON (format=json)",
        }
    },
)
def preview_subscription(
    subscription_id: PathId,
    caller: SubscriberUser,
    session: SessionDep,
    settings: SettingsDep,
    fmt: Annotated[
        PreviewFormat, Query(alias="format", description="html, pdf or json.")
    ] = PreviewFormat.HTML,
) -> Response:
    rendered = flows.preview(
        session, subscription_id=subscription_id, fmt=fmt.value, settings=settings, owner_id=_owner(caller)
    )
    if rendered is None:
        raise _not_found(subscription_id)
    content, media_type = rendered
    return Response(content=content, media_type=media_type)
