"""Users and tokens. Keyword-only functions on a session; they flush but never commit (the caller's
flow owns the transaction). Every change appends its audit event in that same transaction."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, true, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from service.accounts.models import ApiToken, User
from service.accounts.schemas import Language, Role, email_problem, role_problems
from service.audit.schemas import AuditAction
from service.audit.service import append_event

TOKEN_PREFIX = "zd_"
PREFIX_LENGTH = 8  # characters of the secret kept in clear, to recognise a token in lists
_MAX_SECRET_LENGTH = 200
# `last_used_at` is written at most this often per token: a write on every request would contend.
TOUCH_INTERVAL = timedelta(minutes=1)


class AccountError(Exception):
    """A refused account operation, with a message in English and Chinese."""

    code = "account_error"

    def __init__(self, message: str, message_zh: str) -> None:
        super().__init__(message)
        self.message = message
        self.message_zh = message_zh


class InvalidAccountError(AccountError):
    code = "invalid_account"


class UsernameTakenError(AccountError):
    code = "username_taken"


class LastAdminError(AccountError):
    code = "last_admin"


class InactiveUserError(AccountError):
    code = "user_inactive"


class AuthenticationError(AccountError):
    code = "invalid_token"


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("`now` must be a timezone-aware datetime")


def new_secret() -> str:
    """A token secret: `zd_` and 32 random bytes, URL-safe base64 (43 characters)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """What is stored for a token: the sha256 hex of its secret."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def user_state(user: User) -> dict[str, Any]:
    """The audited state of a user (its digest goes into audit events)."""
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "dept": user.dept,
        "scope_depts": list(user.scope_depts),
        "language": user.language,
        "email": user.email,
        "active": user.active,
        "created_at": user.created_at,
    }


def token_state(token: ApiToken) -> dict[str, Any]:
    """The audited state of a token: never its hash, and not `last_used_at` (use is not a change)."""
    return {
        "id": token.id,
        "user_id": token.user_id,
        "name": token.name,
        "prefix": token.prefix,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "revoked_at": token.revoked_at,
    }


def _check_role(role: str, dept: str | None, scope_depts: Sequence[str]) -> None:
    problems = role_problems(role, dept, scope_depts)
    if problems:
        raise InvalidAccountError("; ".join(en for en, _ in problems), "；".join(zh for _, zh in problems))


def _email(value: str | None) -> str | None:
    """`value` as stored: stripped, the domain lowercased; None for none. Raises InvalidAccountError."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    problem = email_problem(value)
    if problem is not None:
        raise InvalidAccountError(*problem)
    local, domain = value.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


def _scope(depts: Sequence[str]) -> list[str]:
    return sorted({d.strip() for d in depts if d.strip()})


# --- users ---------------------------------------------------------------------------------------


def get_user(session: Session, *, user_id: int) -> User | None:
    return session.get(User, user_id)


def find_user(session: Session, *, username: str) -> User | None:
    return session.scalars(select(User).where(User.username == username)).one_or_none()


def list_users(session: Session, *, limit: int | None = None, offset: int = 0) -> tuple[list[User], int]:
    """Users by id, one page of them, and how many there are."""
    total = session.scalar(select(func.count()).select_from(User)) or 0
    query = select(User).order_by(User.id).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query)), int(total)


def create_user(
    session: Session,
    *,
    username: str,
    role: Role | str,
    dept: str | None = None,
    scope_depts: Sequence[str] = (),
    display_name: str | None = None,
    language: Language | str = Language.ZH,
    email: str | None = None,
    actor: str,
    now: datetime,
) -> User:
    """Add an active user. Raises InvalidAccountError (role without its dept/scope, unknown role or
    language, not an email address) or UsernameTakenError."""
    _require_aware(now)
    role, language = str(role), str(language)
    if role not in set(Role):
        raise InvalidAccountError(f"unknown role {role!r}", f"未知角色 {role!r}")
    if language not in set(Language):
        raise InvalidAccountError(f"unknown language {language!r}", f"未知语言 {language!r}")
    scope = _scope(scope_depts)
    _check_role(role, dept, scope)
    address = _email(email)
    if find_user(session, username=username) is not None:
        raise UsernameTakenError(f"username {username!r} is taken", f"用户名 {username!r} 已被使用")
    user = User(
        username=username,
        display_name=display_name or username,
        role=role,
        dept=dept,
        scope_depts=scope,
        language=language,
        email=address,
        active=True,
        created_at=now,
    )
    session.add(user)
    session.flush()
    append_event(
        session,
        actor=actor,
        action=AuditAction.USER_CREATED,
        entity_type="user",
        entity_id=user.id,
        after=user_state(user),
        detail={"username": user.username, "role": user.role, "dept": user.dept, "scope_depts": scope},
        now=now,
    )
    return user


def _active_admin_ids(session: Session) -> set[int]:
    """Ids of the active admins, locked (PostgreSQL) so two concurrent demotions cannot both pass."""
    return set(
        session.scalars(
            select(User.id).where(User.role == Role.ADMIN, User.active == true()).with_for_update()
        )
    )


def update_user(
    session: Session, *, user: User, changes: Mapping[str, Any], actor: str, now: datetime
) -> User:
    """Change some of display_name, role, dept, scope_depts, language, email, active.

    A role other than manager clears `scope_depts` unless the changes set it. Raises InvalidAccountError
    (unknown field, inconsistent role/dept/scope) or LastAdminError (the last active admin would be
    demoted or deactivated). Nothing changed: no write and no audit event.
    """
    _require_aware(now)
    allowed = {"display_name", "role", "dept", "scope_depts", "language", "email", "active"}
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise InvalidAccountError(f"cannot change {', '.join(unknown)}", f"不能修改 {', '.join(unknown)}")
    new = {key: changes.get(key, getattr(user, key)) for key in allowed}
    new["role"] = str(new["role"])
    new["language"] = str(new["language"])
    if new["role"] not in set(Role):
        raise InvalidAccountError(f"unknown role {new['role']!r}", f"未知角色 {new['role']!r}")
    if new["language"] not in set(Language):
        raise InvalidAccountError(f"unknown language {new['language']!r}", f"未知语言 {new['language']!r}")
    if new["role"] != Role.MANAGER and "scope_depts" not in changes:
        new["scope_depts"] = []
    new["scope_depts"] = _scope(new["scope_depts"])
    new["email"] = _email(new["email"])
    if not new["display_name"]:
        raise InvalidAccountError("display_name cannot be empty", "显示名称不能为空")
    _check_role(new["role"], new["dept"], new["scope_depts"])
    changed = sorted(key for key in allowed if new[key] != getattr(user, key))
    if not changed:
        return user
    stays_admin = new["role"] == Role.ADMIN and new["active"]
    if (
        user.role == Role.ADMIN
        and user.active
        and not stays_admin
        and _active_admin_ids(session) <= {user.id}
    ):
        raise LastAdminError(
            f"{user.username} is the last active admin: make another admin first",
            f"{user.username} 是最后一个有效的管理员：请先设立另一个管理员",
        )
    before = user_state(user)
    for key in changed:
        setattr(user, key, new[key])
    session.flush()
    append_event(
        session,
        actor=actor,
        action=AuditAction.USER_UPDATED,
        entity_type="user",
        entity_id=user.id,
        before=before,
        after=user_state(user),
        detail={"username": user.username, "changed": {key: new[key] for key in changed}},
        now=now,
    )
    return user


# --- tokens --------------------------------------------------------------------------------------


def get_token(session: Session, *, token_id: int) -> ApiToken | None:
    return session.get(ApiToken, token_id)


def list_tokens(session: Session, *, user_id: int | None = None) -> list[tuple[ApiToken, str]]:
    """Tokens (of one user, or all) by id, each with its user's username."""
    query = select(ApiToken, User.username).join(User, User.id == ApiToken.user_id).order_by(ApiToken.id)
    if user_id is not None:
        query = query.where(ApiToken.user_id == user_id)
    return [(token, username) for token, username in session.execute(query)]


def issue_token(
    session: Session,
    *,
    user: User,
    name: str = "api",
    expires_at: datetime | None = None,
    actor: str,
    now: datetime,
) -> tuple[ApiToken, str]:
    """A new token for `user`: the stored row and the secret (returned this once, never stored).
    Raises InactiveUserError for a deactivated user, InvalidAccountError for an expiry not in the future."""
    _require_aware(now)
    if not user.active:
        raise InactiveUserError(
            f"{user.username} is deactivated: reactivate the user first",
            f"{user.username} 已停用：请先重新启用",
        )
    if expires_at is not None:
        _require_aware(expires_at)
        if expires_at <= now:
            raise InvalidAccountError("the expiry must be in the future", "过期时间必须晚于当前时间")
    secret = new_secret()
    token = ApiToken(
        user_id=user.id,
        name=name,
        prefix=secret[:PREFIX_LENGTH],
        token_hash=hash_secret(secret),
        created_at=now,
        expires_at=expires_at,
        revoked_at=None,
        last_used_at=None,
    )
    session.add(token)
    session.flush()
    append_event(
        session,
        actor=actor,
        action=AuditAction.TOKEN_ISSUED,
        entity_type="token",
        entity_id=token.id,
        after=token_state(token),
        detail={"user": user.username, "name": name, "prefix": token.prefix, "expires_at": expires_at},
        now=now,
    )
    return token, secret


def revoke_token(session: Session, *, token: ApiToken, actor: str, now: datetime) -> ApiToken:
    """Revoke `token` from `now` on. Already revoked: unchanged, no audit event."""
    _require_aware(now)
    if token.revoked_at is not None:
        return token
    before = token_state(token)
    token.revoked_at = now
    session.flush()
    owner = session.get(User, token.user_id)
    append_event(
        session,
        actor=actor,
        action=AuditAction.TOKEN_REVOKED,
        entity_type="token",
        entity_id=token.id,
        before=before,
        after=token_state(token),
        detail={"user": owner.username if owner else None, "name": token.name, "prefix": token.prefix},
        now=now,
    )
    return token


def authenticate(session: Session, *, secret: str, now: datetime) -> tuple[User, ApiToken]:
    """The user and token a Bearer secret belongs to. Raises AuthenticationError when the secret is
    unknown, revoked or expired, or its user is deactivated. Reads only (see `touch_token`)."""
    _require_aware(now)
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > _MAX_SECRET_LENGTH:
        raise AuthenticationError("not a zhidu API token", "不是有效的 zhidu API 令牌")
    row = session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == hash_secret(secret))
    ).one_or_none()
    if row is None:
        raise AuthenticationError("unknown token", "令牌无效")
    token, user = row
    if token.revoked_at is not None:
        raise AuthenticationError("the token was revoked", "令牌已被吊销")
    if token.expires_at is not None and token.expires_at <= now:
        raise AuthenticationError("the token has expired", "令牌已过期")
    if not user.active:
        raise AuthenticationError("the token's user is deactivated", "令牌所属用户已停用")
    return user, token


def needs_touch(token: ApiToken, *, now: datetime) -> bool:
    return token.last_used_at is None or now - token.last_used_at >= TOUCH_INTERVAL


def touch_token(session: Session, *, token: ApiToken, now: datetime) -> None:
    """Record a use of `token` at `now`, unless one was recorded less than TOUCH_INTERVAL ago. One
    conditional UPDATE (as a transaction's first statement it takes SQLite's write lock at once)."""
    _require_aware(now)
    session.execute(
        update(ApiToken)
        .where(
            ApiToken.id == token.id,
            or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= now - TOUCH_INTERVAL),
        )
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    set_committed_value(token, "last_used_at", now)
