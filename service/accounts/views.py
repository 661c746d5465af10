"""Routes: users and tokens (admin), and `/me` (anyone authenticated)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from service.accounts import flows, service
from service.accounts.schemas import Me, TokenCreate, TokenIssued, TokenRead, UserCreate, UserRead, UserUpdate
from service.api.deps import (
    AdminUser,
    ApiError,
    ConflictError,
    CurrentToken,
    CurrentUser,
    ErrorResponse,
    NotFoundError,
    Page,
    PaginationDep,
    PathId,
    SessionDep,
    UnprocessableError,
    visible_depts,
)

router = APIRouter(tags=["accounts"])
openapi_tag = {"name": "accounts", "description": "Users, roles and API tokens (admin), and who you are."}

_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorResponse, "description": "Conflicts with the current state (e.g. username taken)"}
}


def _api_error(exc: service.AccountError) -> ApiError:
    if isinstance(exc, service.InvalidAccountError):
        return UnprocessableError(exc.message, exc.message_zh, code=exc.code)
    return ConflictError(exc.message, exc.message_zh, code=exc.code)


def _user_not_found(user_id: int) -> NotFoundError:
    return NotFoundError(f"user {user_id} not found", f"用户 {user_id} 不存在")


@router.get("/me", summary="Who you are, with which token, and which departments you see", response_model=Me)
def me(user: CurrentUser, token: CurrentToken) -> Me:
    depts = visible_depts(user)
    return Me(
        user=UserRead.model_validate(user),
        token=TokenRead.model_validate(token),
        visible_depts=None if depts is None else sorted(depts),
    )


@router.get("/users", summary="List users (admin)", response_model=Page[UserRead])
def list_users(_admin: AdminUser, session: SessionDep, page: PaginationDep) -> Page[UserRead]:
    users, total = service.list_users(session, limit=page.limit, offset=page.offset)
    return page.of([UserRead.model_validate(u) for u in users], total)


@router.post(
    "/users",
    summary="Create a user (admin)",
    status_code=status.HTTP_201_CREATED,
    response_model=UserRead,
    responses=_CONFLICT,
)
def create_user(body: UserCreate, admin: AdminUser, session: SessionDep) -> UserRead:
    try:
        user = flows.create_user(
            session,
            username=body.username,
            role=body.role,
            dept=body.dept,
            scope_depts=body.scope_depts,
            display_name=body.display_name,
            language=body.language,
            email=body.email,
            actor=admin.username,
        )
    except service.AccountError as exc:
        raise _api_error(exc) from None
    return UserRead.model_validate(user)


@router.get("/users/{user_id}", summary="One user (admin)", response_model=UserRead)
def get_user(user_id: PathId, _admin: AdminUser, session: SessionDep) -> UserRead:
    user = service.get_user(session, user_id=user_id)
    if user is None:
        raise _user_not_found(user_id)
    return UserRead.model_validate(user)


@router.patch(
    "/users/{user_id}",
    summary="Change a user: deactivate, role, department, scope, email (admin)",
    response_model=UserRead,
    responses=_CONFLICT,
)
def update_user(user_id: PathId, body: UserUpdate, admin: AdminUser, session: SessionDep) -> UserRead:
    try:
        user = flows.update_user(session, user_id=user_id, changes=body.changes(), actor=admin.username)
    except service.AccountError as exc:
        raise _api_error(exc) from None
    if user is None:
        raise _user_not_found(user_id)
    return UserRead.model_validate(user)


@router.post(
    "/users/{user_id}/tokens",
    summary="Issue a token for a user; the secret is shown once (admin)",
    status_code=status.HTTP_201_CREATED,
    response_model=TokenIssued,
    responses=_CONFLICT,
)
def issue_token(user_id: PathId, body: TokenCreate, admin: AdminUser, session: SessionDep) -> TokenIssued:
    try:
        issued = flows.issue_token(
            session,
            user_id=user_id,
            name=body.name,
            expires_in_days=body.expires_in_days,
            actor=admin.username,
        )
    except service.AccountError as exc:
        raise _api_error(exc) from None
    if issued is None:
        raise _user_not_found(user_id)
    token, secret = issued
    return TokenIssued.model_validate({**TokenRead.model_validate(token).model_dump(), "secret": secret})


@router.get(
    "/users/{user_id}/tokens",
    summary="A user's tokens, without secrets (admin)",
    response_model=list[TokenRead],
)
def list_tokens(user_id: PathId, _admin: AdminUser, session: SessionDep) -> list[TokenRead]:
    if service.get_user(session, user_id=user_id) is None:
        raise _user_not_found(user_id)
    return [TokenRead.model_validate(token) for token, _ in service.list_tokens(session, user_id=user_id)]


@router.delete("/tokens/{token_id}", summary="Revoke a token (admin)", response_model=TokenRead)
def revoke_token(token_id: PathId, admin: AdminUser, session: SessionDep) -> TokenRead:
    token = flows.revoke_token(session, token_id=token_id, actor=admin.username)
    if token is None:
        raise NotFoundError(f"token {token_id} not found", f"令牌 {token_id} 不存在")
    return TokenRead.model_validate(token)
