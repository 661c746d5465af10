"""Shapes of account data: roles, API inputs and reads."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    computed_field,
    model_validator,
)


class Role(StrEnum):
    ADMIN = "admin"  # accounts and tokens, policy overrides; sees every department
    SUPERVISOR = "supervisor"  # the supervision group: every department, manages violations
    DEPARTMENT = "department"  # submits and reads its own department only
    MANAGER = "manager"  # reads the departments in its scope


class Language(StrEnum):
    ZH = "zh"
    EN = "en"


Username = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[a-z0-9][a-z0-9_.@-]{0,63}$"),
    Field(description="Lowercase letters, digits and `_ . @ -`, 1-64 characters.", examples=["li.wei"]),
]
DeptCode = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$"),
    Field(examples=["D01"]),
]
DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
TokenName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]

MAX_EMAIL_LENGTH = 254  # RFC 5321's limit on a forward path
# An ASCII address (mail goes out without SMTPUTF8): dot-atom local part, a domain of dotted
# labels (an internationalised domain in its punycode `xn--` form).
_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9-]{0,61}[A-Za-z0-9]"
)


def email_problem(value: str) -> tuple[str, str] | None:
    """Why `value` is not a usable email address, as (en, zh); None if it is one."""
    if len(value) > MAX_EMAIL_LENGTH:
        return (
            f"the email address is longer than {MAX_EMAIL_LENGTH} characters",
            f"邮箱地址超过 {MAX_EMAIL_LENGTH} 个字符",
        )
    if not _EMAIL.fullmatch(value):
        return (
            f"{value!r} is not an email address like li.wei@example.cn (ASCII only; "
            "an internationalised domain in its xn-- form)",
            f"{value!r} 不是有效的邮箱地址（例如 li.wei@example.cn；仅限 ASCII 字符，国际化域名请使用 xn-- 形式）",
        )
    return None


def normalize_email(value: str) -> str:
    """`value` stripped, its domain lowercased; ValueError (en / zh) if it is not an address."""
    value = value.strip()
    problem = email_problem(value)
    if problem is not None:
        raise ValueError(f"{problem[0]} / {problem[1]}")
    local, domain = value.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


EmailAddress = Annotated[
    str,
    AfterValidator(normalize_email),
    Field(description="Where mail for the user goes (digests, reminders).", examples=["li.wei@example.cn"]),
]


def role_problems(role: str, dept: str | None, scope_depts: Sequence[str]) -> list[tuple[str, str]]:
    """What is wrong with this combination of role, department and scope, as (en, zh) messages."""
    problems: list[tuple[str, str]] = []
    if role == Role.DEPARTMENT and not dept:
        problems.append(("a department user needs a dept", "部门用户必须指定所属部门 dept"))
    if role == Role.MANAGER and not scope_depts:
        problems.append(
            (
                "a manager needs scope_depts: the departments it reads",
                "管理层用户必须指定 scope_depts（可查看的部门）",
            )
        )
    if role != Role.MANAGER and scope_depts:
        problems.append(("scope_depts applies to managers only", "scope_depts 仅适用于管理层用户"))
    return problems


def _check_role(role: str, dept: str | None, scope_depts: Sequence[str]) -> None:
    problems = role_problems(role, dept, scope_depts)
    if problems:
        raise ValueError("; ".join(f"{en} / {zh}" for en, zh in problems))


class UserCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"username": "li.wei", "display_name": "李伟", "role": "department", "dept": "D01"},
                {"username": "wang.fang", "role": "manager", "scope_depts": ["D01", "D02"], "language": "en"},
            ]
        },
    )

    username: Username
    display_name: DisplayName | None = Field(default=None, description="Defaults to the username.")
    role: Role
    dept: DeptCode | None = Field(
        default=None, description="The user's department; required for `department`."
    )
    scope_depts: list[DeptCode] = Field(
        default_factory=list, max_length=500, description="Departments a `manager` reads (managers only)."
    )
    language: Language = Language.ZH
    email: EmailAddress | None = None

    @model_validator(mode="after")
    def _role_fields(self) -> UserCreate:
        _check_role(self.role, self.dept, self.scope_depts)
        return self


class UserUpdate(BaseModel):
    """Only the fields present change; `dept: null` clears the department. Changing the role away
    from manager clears `scope_depts` unless it is given too."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"active": False},
                {"role": "manager", "scope_depts": ["D01", "D03"]},
                {"role": "department", "dept": "D02"},
            ]
        },
    )

    display_name: DisplayName | None = None
    role: Role | None = None
    dept: DeptCode | None = None
    scope_depts: list[DeptCode] | None = Field(default=None, max_length=500)
    language: Language | None = None
    email: EmailAddress | None = Field(default=None, description="`null` removes the address.")
    active: bool | None = None

    def changes(self) -> dict[str, Any]:
        """The fields the request sets (an explicit null included for `dept` and `email`)."""
        fields = self.model_dump(include=self.model_fields_set)
        return {k: v for k, v in fields.items() if v is not None or k in ("dept", "email")}


class UserRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 3,
                    "username": "li.wei",
                    "display_name": "李伟",
                    "role": "department",
                    "dept": "D01",
                    "scope_depts": [],
                    "language": "zh",
                    "email": "li.wei@example.cn",
                    "active": True,
                    "created_at": "2025-03-01T01:30:00Z",
                }
            ]
        },
    )

    id: int
    username: str
    display_name: str
    role: Role
    dept: str | None
    scope_depts: list[str]
    language: Language
    email: str | None
    active: bool
    created_at: datetime


class TokenCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "erp-sync", "expires_in_days": 365}]}
    )

    name: TokenName = Field(default="api", description="What the token is for, shown in lists.")
    expires_in_days: int | None = Field(default=None, ge=1, le=3650, description="None: does not expire.")


TokenStatus = Literal["active", "revoked", "expired"]


class TokenRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 7,
                    "user_id": 3,
                    "name": "erp-sync",
                    "prefix": "zd_Xk3pQ",
                    "created_at": "2025-03-01T01:30:00Z",
                    "expires_at": "2026-03-01T01:30:00Z",
                    "revoked_at": None,
                    "last_used_at": "2025-03-02T08:00:00Z",
                    "status": "active",
                }
            ]
        },
    )

    id: int
    user_id: int
    name: str
    prefix: str = Field(description="The token's first 8 characters, to recognise it.")
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def status(self) -> TokenStatus:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= datetime.now(UTC):
            return "expired"
        return "active"


class TokenIssued(TokenRead):
    """A new token. `secret` is shown this once: only its hash is stored."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 7,
                    "user_id": 3,
                    "name": "erp-sync",
                    "prefix": "zd_Xk3pQ",
                    "created_at": "2025-03-01T01:30:00Z",
                    "expires_at": None,
                    "revoked_at": None,
                    "last_used_at": None,
                    "status": "active",
                    "secret": "zd_Xk3pQ9vW2mN8bT4rL6yH1cJ5sD7fG0aZ3eU9iO2pK4",
                }
            ]
        },
    )

    secret: str = Field(description="Send as `Authorization: Bearer <secret>`. Shown once.")


class Me(BaseModel):
    """Who the caller is, with which token, and which departments it sees."""

    user: UserRead
    token: TokenRead
    visible_depts: list[str] | None = Field(description="null: every department.")
