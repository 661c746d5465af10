"""Use cases that own a transaction: each commits on success and rolls back on any exception.

They take the caller's session (the API's per-request session, or the CLI's), which may already be
inside a transaction begun by reads (authentication): that transaction is the one committed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from service.accounts import service
from service.accounts.models import ApiToken, User
from service.accounts.schemas import Language, Role
from service.audit.service import lock_for_append

log = logging.getLogger(__name__)


@contextmanager
def _committed(session: Session) -> Iterator[None]:
    try:
        yield
        session.commit()
    except BaseException:
        session.rollback()
        raise


@contextmanager
def _audited_change(session: Session) -> Iterator[None]:
    """A committed transaction that will append to the audit trail: on SQLite it takes the write
    lock first (see `lock_for_append`)."""
    with _committed(session):
        lock_for_append(session)
        yield


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def authenticate(session: Session, *, secret: str, now: datetime | None = None) -> tuple[User, ApiToken]:
    """Who presents `secret`. Raises service.AuthenticationError.

    The lookup's read transaction is ended at once (the route's own flow starts afresh). The use
    is then recorded (`last_used_at`, at most once per TOUCH_INTERVAL) in a short transaction of
    its own, best effort: a busy database does not fail the request for it.
    """
    when = _now(now)
    with _committed(session):  # ends the read transaction; commit, unlike rollback, expires nothing
        user, token = service.authenticate(session, secret=secret, now=when)
    if service.needs_touch(token, now=when):
        try:
            with _committed(session):
                service.touch_token(session, token=token, now=when)
        except OperationalError as exc:
            log.info("could not record the use of token %s: %s", token.id, exc)
    return user, token


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
    now: datetime | None = None,
) -> User:
    """Create a user (audited). Raises InvalidAccountError or UsernameTakenError (also when a concurrent
    request took the name first)."""
    try:
        with _audited_change(session):
            return service.create_user(
                session,
                username=username,
                role=role,
                dept=dept,
                scope_depts=scope_depts,
                display_name=display_name,
                language=language,
                email=email,
                actor=actor,
                now=_now(now),
            )
    except IntegrityError as exc:
        if service.find_user(session, username=username) is not None:
            raise service.UsernameTakenError(
                f"username {username!r} is taken", f"用户名 {username!r} 已被使用"
            ) from exc
        raise


def update_user(
    session: Session, *, user_id: int, changes: Mapping[str, Any], actor: str, now: datetime | None = None
) -> User | None:
    """Change a user (audited); None if there is no such user. Raises InvalidAccountError or LastAdminError."""
    with _audited_change(session):
        user = service.get_user(session, user_id=user_id)
        if user is None:
            return None
        return service.update_user(session, user=user, changes=changes, actor=actor, now=_now(now))


def disable_user(session: Session, *, username: str, actor: str, now: datetime | None = None) -> User | None:
    """Deactivate a user by name (its tokens stop working); None if there is no such user."""
    with _audited_change(session):
        user = service.find_user(session, username=username)
        if user is None:
            return None
        return service.update_user(session, user=user, changes={"active": False}, actor=actor, now=_now(now))


def issue_token(
    session: Session,
    *,
    user_id: int,
    name: str = "api",
    expires_in_days: int | None = None,
    actor: str,
    now: datetime | None = None,
) -> tuple[ApiToken, str] | None:
    """Issue a token (audited): the row and the secret, shown once. None if there is no such user."""
    when = _now(now)
    with _audited_change(session):
        user = service.get_user(session, user_id=user_id)
        if user is None:
            return None
        expires_at = when + timedelta(days=expires_in_days) if expires_in_days is not None else None
        return service.issue_token(
            session, user=user, name=name, expires_at=expires_at, actor=actor, now=when
        )


def revoke_token(
    session: Session, *, token_id: int, actor: str, now: datetime | None = None
) -> ApiToken | None:
    """Revoke a token (audited; idempotent). None if there is no such token."""
    with _audited_change(session):
        token = service.get_token(session, token_id=token_id)
        if token is None:
            return None
        return service.revoke_token(session, token=token, actor=actor, now=_now(now))
