"""What routes import: typed dependencies (session, settings, the authenticated user, roles,
department scope, pagination) and the API's errors.

    from service.api.deps import CurrentUser, NotFoundError, ScopeDep, SessionDep, require_roles

Rule for every route: data of a department the caller may not see answers 404 (`NotFoundError`), exactly
as if it did not exist; never 403, never the data.
"""

from __future__ import annotations

import http
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, false, true
from sqlalchemy.orm import QueryableAttribute, Session, sessionmaker

from service.accounts import flows as account_flows
from service.accounts.models import ApiToken, User
from service.accounts.schemas import Role
from service.accounts.service import AuthenticationError
from service.settings import Settings

REALM = "zhidu"

# --- errors --------------------------------------------------------------------------------------


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. `not_found`, `validation_error`.")
    message: str = Field(description="What went wrong, in English.")
    message_zh: str = Field(description="What went wrong, in Chinese.")
    details: list[Any] = Field(
        default_factory=list, description="Specifics, e.g. one entry per invalid field: loc, message, type."
    )


class ErrorResponse(BaseModel):
    """The one shape of every error the API returns."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "code": "validation_error",
                        "message": "the request is invalid: body.role: Input should be 'admin', 'supervisor', 'department' or 'manager'",
                        "message_zh": "请求无效：body.role: Input should be 'admin', 'supervisor', 'department' or 'manager'",
                        "details": [
                            {
                                "loc": ["body", "role"],
                                "message": "Input should be 'admin', 'supervisor', 'department' or 'manager'",
                                "type": "enum",
                            }
                        ],
                    }
                }
            ]
        }
    )

    error: ErrorBody


class ApiError(Exception):
    """Raise from a route or dependency to answer `status` with the error shape."""

    status_code = 400
    code = "bad_request"
    message = "bad request"
    message_zh = "请求有误"

    def __init__(
        self,
        message: str | None = None,
        message_zh: str | None = None,
        *,
        code: str | None = None,
        status_code: int | None = None,
        details: Sequence[Any] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or type(self).message
        self.message_zh = message_zh or type(self).message_zh
        self.code = code or type(self).code
        self.status_code = status_code or type(self).status_code
        self.details = list(details)
        self.headers = headers
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.message_zh, self.details)


class BadRequestError(ApiError):
    pass


class UnauthorizedError(ApiError):
    status_code = 401
    code = "unauthenticated"
    message = "authentication required: send Authorization: Bearer <token>"
    message_zh = "需要身份认证：请发送 Authorization: Bearer <令牌>"


class ForbiddenError(ApiError):
    status_code = 403
    code = "forbidden"
    message = "your role may not do this"
    message_zh = "您的角色无权执行此操作"


class NotFoundError(ApiError):
    """Also the answer for data outside the caller's departments: say the same as for missing data."""

    status_code = 404
    code = "not_found"
    message = "not found"
    message_zh = "未找到"


class ConflictError(ApiError):
    status_code = 409
    code = "conflict"
    message = "conflicts with the current state"
    message_zh = "与当前状态冲突"


class UnprocessableError(ApiError):
    status_code = 422
    code = "validation_error"
    message = "the request is invalid"
    message_zh = "请求无效"


def error_body(code: str, message: str, message_zh: str, details: Sequence[Any] = ()) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "message_zh": message_zh, "details": list(details)}}


def status_phrase(status_code: int) -> str:
    try:
        return http.HTTPStatus(status_code).phrase
    except ValueError:
        return "error"


# --- session and settings ------------------------------------------------------------------------


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session(request: Request) -> Iterator[Session]:
    """One session per request, closed (uncommitted work rolled back) when the request ends.
    Routes call flows, which commit."""
    factory: sessionmaker[Session] = request.app.state.session_factory
    with factory() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]

# --- authentication ------------------------------------------------------------------------------

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="BearerToken",
    description="An API token `zd_...` issued by an admin (`zhidu tokens issue USER` or POST /api/v1/users/{id}/tokens).",
)


@dataclass(frozen=True, slots=True)
class Authenticated:
    user: User
    token: ApiToken


def authenticate(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Authenticated:
    """The caller, from `Authorization: Bearer <token>`; 401 with WWW-Authenticate otherwise."""
    if credentials is None:
        raise UnauthorizedError(headers={"WWW-Authenticate": f'Bearer realm="{REALM}"'})
    try:
        user, token = account_flows.authenticate(session, secret=credentials.credentials)
    except AuthenticationError as exc:
        raise UnauthorizedError(
            f"invalid token: {exc.message}",
            f"令牌无效：{exc.message_zh}",
            code="invalid_token",
            headers={"WWW-Authenticate": f'Bearer realm="{REALM}", error="invalid_token"'},
        ) from None
    request.state.user = user
    return Authenticated(user=user, token=token)


def get_current_user(auth: Annotated[Authenticated, Depends(authenticate)]) -> User:
    return auth.user


def get_current_token(auth: Annotated[Authenticated, Depends(authenticate)]) -> ApiToken:
    return auth.token


CurrentUser = Annotated[User, Depends(get_current_user)]
CurrentToken = Annotated[ApiToken, Depends(get_current_token)]


def require_roles(*roles: Role | str) -> Callable[[User], User]:
    """A dependency admitting only users with one of `roles` (403 otherwise) and returning the user:

    @router.get(..., dependencies=[Depends(require_roles(Role.ADMIN))])
    def f(user: Annotated[User, Depends(require_roles("admin", "supervisor"))]) -> ...
    """
    allowed = frozenset(str(role) for role in roles)
    unknown = allowed - set(Role)
    if not allowed or unknown:
        raise ValueError(f"require_roles needs known roles, got {sorted(allowed)}")
    names = ", ".join(sorted(allowed))

    def check_role(user: CurrentUser) -> User:
        if user.role not in allowed:
            raise ForbiddenError(
                f"this needs the role {names}; you are {user.role}",
                f"此操作需要以下角色之一：{names}；您的角色是 {user.role}",
            )
        return user

    return check_role


AdminUser = Annotated[User, Depends(require_roles(Role.ADMIN))]
SupervisorUser = Annotated[User, Depends(require_roles(Role.ADMIN, Role.SUPERVISOR))]

# --- department scope ----------------------------------------------------------------------------


def visible_depts(user: User) -> set[str] | None:
    """The departments `user` may see: None = all (admin, supervisor); a department user its own
    department; a manager its scope list."""
    if user.role in (Role.ADMIN, Role.SUPERVISOR):
        return None
    if user.role == Role.DEPARTMENT:
        return {user.dept} if user.dept else set()
    if user.role == Role.MANAGER:
        return set(user.scope_depts)
    return set()


@dataclass(frozen=True, slots=True)
class Scope:
    """Which departments' data the caller sees. Data without a department is visible only to
    roles that see every department."""

    depts: frozenset[str] | None  # None: all departments

    @classmethod
    def of(cls, user: User) -> Scope:
        depts = visible_depts(user)
        return cls(None if depts is None else frozenset(depts))

    @property
    def all(self) -> bool:
        return self.depts is None

    def can_see(self, dept: str | None) -> bool:
        if self.depts is None:
            return True
        return dept is not None and dept in self.depts

    def require(self, dept: str | None, not_found: NotFoundError | None = None) -> None:
        """404 (`not_found`, or a generic one) unless the caller sees `dept`. Raise the same
        NotFoundError for missing data, so hidden and missing cannot be told apart."""
        if not self.can_see(dept):
            raise not_found or NotFoundError()

    def where(self, column: ColumnElement[Any] | QueryableAttribute[Any]) -> ColumnElement[bool]:
        """A filter on a dept column: `select(Record).where(scope.where(Record.dept))`."""
        if self.depts is None:
            return true()
        if not self.depts:
            return false()
        return column.in_(sorted(self.depts))


def get_scope(user: CurrentUser) -> Scope:
    return Scope.of(user)


ScopeDep = Annotated[Scope, Depends(get_scope)]

# --- ids and pagination ----------------------------------------------------------------------------------

T = TypeVar("T")
MAX_PAGE = 500
MAX_ID = 2**63 - 1  # a BIGINT: larger ids answer 422, not a database error

# A database id in the path: `def get(user_id: PathId)`.
PathId = Annotated[int, Path(ge=1, le=MAX_ID, description="The id.")]


@dataclass(frozen=True, slots=True)
class Pagination:
    limit: int
    offset: int

    def of(self, items: list[T], total: int) -> Page[T]:
        """The page of `items` this pagination asked for, of `total` matching in all."""
        return Page(items=items, total=total, limit=self.limit, offset=self.offset)


def get_pagination(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Items per page.")] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID, description="Items to skip.")] = 0,
) -> Pagination:
    return Pagination(limit=limit, offset=offset)


PaginationDep = Annotated[Pagination, Depends(get_pagination)]


class Page(BaseModel, Generic[T]):
    """One page of a list."""

    items: list[T]
    total: int = Field(description="Items matching, on all pages.")
    limit: int
    offset: int
