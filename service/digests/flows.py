"""Use cases that own a transaction: subscription changes (audited), building the digests of a
cadence into the outbox (one transaction per subscription), previews."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.accounts.models import User
from service.audit.service import lock_for_append
from service.digests import service
from service.digests.models import DigestSubscription
from service.settings import Settings

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
    with _committed(session):
        lock_for_append(session)  # SQLite: the write lock before any read (see lock_for_append)
        yield


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def subscribe(
    session: Session,
    *,
    user_id: int,
    cadence: str,
    depts: Sequence[str],
    language: str | None = None,
    active: bool = True,
    actor: str,
    now: datetime | None = None,
) -> DigestSubscription | None:
    """Subscribe a manager (audited); None if there is no such user. Raises SubscriptionError
    (also DuplicateSubscriptionError when a concurrent request subscribed first)."""
    try:
        with _audited_change(session):
            user = session.get(User, user_id)
            if user is None:
                return None
            return service.subscribe(
                session,
                user=user,
                cadence=cadence,
                depts=depts,
                language=language,
                active=active,
                actor=actor,
                now=_now(now),
            )
    except IntegrityError as exc:
        if service.find(session, user_id=user_id, cadence=cadence) is not None:
            raise service.DuplicateSubscriptionError(
                f"there is already a {cadence} subscription for user {user_id}",
                f"用户 {user_id} 已有该周期的订阅",
            ) from exc
        raise


def _visible(sub: DigestSubscription | None, owner_id: int | None) -> DigestSubscription | None:
    """`sub` unless it belongs to someone other than `owner_id` (None: anyone's)."""
    if sub is None or (owner_id is not None and sub.user_id != owner_id):
        return None
    return sub


def update(
    session: Session,
    *,
    subscription_id: int,
    changes: Mapping[str, Any],
    actor: str,
    owner_id: int | None = None,
    now: datetime | None = None,
) -> DigestSubscription | None:
    """Change a subscription (audited); None if there is none (of `owner_id`, when given)."""
    with _audited_change(session):
        sub = _visible(service.get(session, subscription_id=subscription_id), owner_id)
        if sub is None:
            return None
        return service.update(session, sub=sub, changes=changes, actor=actor, now=_now(now))


def delete(
    session: Session,
    *,
    subscription_id: int,
    actor: str,
    owner_id: int | None = None,
    now: datetime | None = None,
) -> tuple[DigestSubscription, str] | None:
    """Remove a subscription (audited): the removed row (still readable) and its manager's
    username; None if there is none (of `owner_id`, when given)."""
    with _audited_change(session):
        sub = _visible(service.get(session, subscription_id=subscription_id), owner_id)
        if sub is None:
            return None
        user = session.get(User, sub.user_id)
        username = user.username if user is not None else ""
        service.delete(session, sub=sub, actor=actor, now=_now(now))
        return sub, username


def build_digests(
    session: Session, *, settings: Settings, cadence: str, today: date, now: datetime | None = None
) -> list[service.Built]:
    """Every active subscription of `cadence` (of an active manager): its digest of the last
    complete period before `today` put in the outbox, exactly once per (subscription, period)
    however often this runs, each in a transaction of its own (one failing digest does not stop
    the others: it is logged and tried again on the next run)."""
    when = _now(now)
    period = service.period_of(cadence, today)
    label = period.label or period.describe()
    with _committed(session):
        subscribed, _ = service.list_subscriptions(session, cadence=cadence, active=True)
        ids = [sub.id for sub, user in subscribed if user.active]
    built: list[service.Built] = []
    for subscription_id in ids:
        try:
            with _committed(session):
                sub = service.get(session, subscription_id=subscription_id)
                user = session.get(User, sub.user_id) if sub is not None else None
                if sub is None or user is None or not sub.active:
                    continue  # removed or paused meanwhile
                built.append(
                    service.build_into_outbox(
                        session, sub=sub, user=user, period=period, settings=settings, now=when
                    )
                )
        except IntegrityError:
            # Another run put the same (subscription, period) in the outbox first.
            built.append(service.Built(subscription_id, label, None, "exists"))
        except Exception:
            log.exception(
                "digest of subscription %s for %s failed; tried again next run", subscription_id, label
            )
            built.append(service.Built(subscription_id, label, None, "error"))
    return built


def preview(
    session: Session,
    *,
    subscription_id: int,
    fmt: str,
    settings: Settings,
    owner_id: int | None = None,
    today: date | None = None,
) -> tuple[bytes, str] | None:
    """The digest of the last complete period, rendered, not sent; None if there is no such
    subscription (of `owner_id`, when given). Reads only."""
    with _committed(session):
        sub = _visible(service.get(session, subscription_id=subscription_id), owner_id)
        if sub is None:
            return None
        user = session.get(User, sub.user_id)
        assert user is not None
        day = today or datetime.now(settings.tz).date()
        return service.preview(session, sub=sub, user=user, fmt=fmt, today=day, settings=settings)
