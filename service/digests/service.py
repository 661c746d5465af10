"""Digest subscriptions, and building a digest into the outbox. Keyword-only functions on a session;
they flush, never commit. Subscription changes are audited in the caller's transaction."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

import reports
from service.accounts.models import User
from service.accounts.schemas import Language, Role
from service.audit.service import append_event
from service.digests.models import DigestSubscription
from service.digests.schemas import DigestPreview, PreviewImage
from service.mail import service as mail
from service.mail.message import Image
from service.reports import service as reports_service
from service.settings import Settings

CADENCES = ("weekly", "monthly")


class SubscriptionError(Exception):
    """A refused subscription change, with a message in English and Chinese."""

    code = "invalid_subscription"

    def __init__(self, message: str, message_zh: str) -> None:
        super().__init__(message)
        self.message = message
        self.message_zh = message_zh


class InvalidSubscriptionError(SubscriptionError):
    code = "invalid_subscription"


class DuplicateSubscriptionError(SubscriptionError):
    code = "subscription_exists"


def subscription_state(sub: DigestSubscription) -> dict[str, Any]:
    return {
        "id": sub.id,
        "user_id": sub.user_id,
        "cadence": sub.cadence,
        "depts": list(sub.depts),
        "language": sub.language,
        "active": sub.active,
        "created_at": sub.created_at,
    }


def _depts(user: User, depts: Sequence[str]) -> list[str]:
    """`depts` cleaned; InvalidSubscriptionError unless they lie within the manager's scope."""
    wanted = sorted({d.strip() for d in depts if d.strip()})
    if not wanted:
        raise InvalidSubscriptionError("a digest needs at least one department", "摘要至少需要一个部门")
    outside = [d for d in wanted if d not in set(user.scope_depts)]
    if outside:
        raise InvalidSubscriptionError(
            f"{', '.join(outside)} outside {user.username}'s scope ({', '.join(user.scope_depts) or 'none'}): "
            "a digest covers only departments the manager may read",
            f"{', '.join(outside)} 不在 {user.username} 的可查看范围（{', '.join(user.scope_depts) or '无'}）内："
            "摘要只能包含该管理层用户可查看的部门",
        )
    return wanted


def _check_subscriber(user: User) -> None:
    if user.role != Role.MANAGER:
        raise InvalidSubscriptionError(
            f"{user.username} is a {user.role} user: digests are for managers",
            f"{user.username} 的角色是 {user.role}：摘要仅供管理层用户订阅",
        )
    if not user.active:
        raise InvalidSubscriptionError(f"{user.username} is deactivated", f"{user.username} 已停用")


def get(session: Session, *, subscription_id: int) -> DigestSubscription | None:
    return session.get(DigestSubscription, subscription_id)


def find(session: Session, *, user_id: int, cadence: str) -> DigestSubscription | None:
    return session.scalars(
        select(DigestSubscription).where(
            DigestSubscription.user_id == user_id, DigestSubscription.cadence == cadence
        )
    ).one_or_none()


def list_subscriptions(
    session: Session,
    *,
    user_id: int | None = None,
    cadence: str | None = None,
    active: bool | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> tuple[list[tuple[DigestSubscription, User]], int]:
    """Subscriptions by id with their users (of one user, one cadence, active or not), a page, the total."""
    conditions = []
    if user_id is not None:
        conditions.append(DigestSubscription.user_id == user_id)
    if cadence is not None:
        conditions.append(DigestSubscription.cadence == cadence)
    if active is not None:
        conditions.append(DigestSubscription.active.is_(active))
    total = session.scalar(select(func.count()).select_from(DigestSubscription).where(*conditions)) or 0
    query = (
        select(DigestSubscription, User)
        .join(User, User.id == DigestSubscription.user_id)
        .where(*conditions)
        .order_by(DigestSubscription.id)
        .offset(offset)
    )
    if limit is not None:
        query = query.limit(limit)
    return [(sub, user) for sub, user in session.execute(query)], int(total)


def subscribe(
    session: Session,
    *,
    user: User,
    cadence: str,
    depts: Sequence[str],
    language: str | None = None,
    active: bool = True,
    actor: str,
    now: datetime,
) -> DigestSubscription:
    """A manager's subscription. Raises InvalidSubscriptionError (not a manager, a department
    outside its scope, unknown cadence or language) or DuplicateSubscriptionError (one per cadence)."""
    cadence, lang = str(cadence), str(language or user.language)
    if cadence not in CADENCES:
        raise InvalidSubscriptionError(
            f"cadence must be weekly or monthly, not {cadence!r}",
            f"周期须为 weekly 或 monthly，而不是 {cadence!r}",
        )
    if lang not in set(Language):
        raise InvalidSubscriptionError(
            f"unknown language {lang!r}: zh or en", f"未知语言 {lang!r}：须为 zh 或 en"
        )
    _check_subscriber(user)
    wanted = _depts(user, depts)
    if find(session, user_id=user.id, cadence=cadence) is not None:
        raise DuplicateSubscriptionError(
            f"{user.username} already has a {cadence} subscription: change it instead",
            f"{user.username} 已订阅{'周' if cadence == 'weekly' else '月'}摘要：请修改现有订阅",
        )
    sub = DigestSubscription(
        user_id=user.id, depts=wanted, cadence=cadence, language=lang, active=active, created_at=now
    )
    session.add(sub)
    session.flush()
    append_event(
        session,
        actor=actor,
        action="digest.subscribed",
        entity_type="digest_subscription",
        entity_id=sub.id,
        after=subscription_state(sub),
        detail={"user": user.username, "cadence": cadence, "depts": wanted, "language": lang},
        now=now,
    )
    return sub


def update(
    session: Session, *, sub: DigestSubscription, changes: Mapping[str, Any], actor: str, now: datetime
) -> DigestSubscription:
    """Change some of depts, language, active. Departments must lie within the manager's scope."""
    allowed = {"depts", "language", "active"}
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise InvalidSubscriptionError(
            f"cannot change {', '.join(unknown)}", f"不能修改 {', '.join(unknown)}"
        )
    user = session.get(User, sub.user_id)
    assert user is not None
    new = {key: changes.get(key, getattr(sub, key)) for key in allowed}
    if "depts" in changes:
        new["depts"] = _depts(user, changes["depts"])
    new["language"] = str(new["language"])
    if new["language"] not in set(Language):
        raise InvalidSubscriptionError(
            f"unknown language {new['language']!r}: zh or en", f"未知语言 {new['language']!r}：须为 zh 或 en"
        )
    changed = sorted(key for key in allowed if new[key] != getattr(sub, key))
    if not changed:
        return sub
    before = subscription_state(sub)
    for key in changed:
        setattr(sub, key, new[key])
    session.flush()
    append_event(
        session,
        actor=actor,
        action="digest.subscription_changed",
        entity_type="digest_subscription",
        entity_id=sub.id,
        before=before,
        after=subscription_state(sub),
        detail={"user": user.username, "changed": {key: new[key] for key in changed}},
        now=now,
    )
    return sub


def delete(session: Session, *, sub: DigestSubscription, actor: str, now: datetime) -> None:
    """Remove a subscription; the digests it produced stay in the outbox (without the link)."""
    before = subscription_state(sub)
    session.delete(sub)
    session.flush()
    append_event(
        session,
        actor=actor,
        action="digest.unsubscribed",
        entity_type="digest_subscription",
        entity_id=before["id"],
        before=before,
        detail={"user_id": before["user_id"], "cadence": before["cadence"]},
        now=now,
    )


# --- building digests ------------------------------------------------------------------------------


def _lang(value: str) -> reports.Lang:
    return "en" if value == "en" else "zh"


def effective_depts(sub: DigestSubscription, user: User) -> list[str]:
    """The subscription's departments the manager may still read (its scope may have shrunk)."""
    scope = set(user.scope_depts)
    return [d for d in sub.depts if d in scope]


def period_of(cadence: str, today: date) -> reports.Period:
    """The last complete ISO week (weekly) or calendar month (monthly) before `today`."""
    return reports_service.digest_period(cadence, today)


def source_key(sub: DigestSubscription, period: reports.Period) -> str:
    return f"digest:{sub.id}:{period.label or period.describe()}"


def gather(
    session: Session, *, sub: DigestSubscription, user: User, period: reports.Period, settings: Settings
) -> reports.Digest:
    """The digest's data for `period`, through the reports domain."""
    return reports_service.gather_digest(
        session=session,
        manager=user.display_name,
        depts=effective_depts(sub, user),
        cadence=sub.cadence,
        period=period,
        link=settings.public_url,
    )


@dataclass(frozen=True, slots=True)
class Built:
    """What building one subscription's digest did: `message_id` (None when skipped), and why."""

    subscription_id: int
    period: str
    message_id: int | None
    outcome: str  # queued | no_recipient | exists | skipped_scope | error


def build_into_outbox(
    session: Session,
    *,
    sub: DigestSubscription,
    user: User,
    period: reports.Period,
    settings: Settings,
    now: datetime,
) -> Built:
    """The subscription's digest for `period` in the outbox, once: an existing message for the
    same (subscription, period) is left as it is."""
    key = source_key(sub, period)
    label = period.label or period.describe()
    existing = mail.find_by_source(session, source_key=key)
    if existing is not None:
        return Built(sub.id, label, existing.id, "exists")
    if not effective_depts(sub, user):
        return Built(sub.id, label, None, "skipped_scope")
    digest = gather(session, sub=sub, user=user, period=period, settings=settings)
    email = reports.render_digest_email(digest, _lang(sub.language))
    message = mail.enqueue(
        session,
        kind="digest",
        source_key=key,
        recipients=[user.email] if user.email and user.active else [],
        subject=email.subject,
        language=sub.language,
        html_body=email.html,
        text_body=email.text,
        images=[Image(i.cid, i.filename, i.png) for i in email.images],
        owner_id=user.id,
        subscription_id=sub.id,
        period=label,
        now=now,
    )
    return Built(sub.id, label, message.id, message.status)


def preview(
    session: Session, *, sub: DigestSubscription, user: User, fmt: str, today: date, settings: Settings
) -> tuple[bytes, str]:
    """The digest of the last complete period, rendered without sending: (content, media type).
    `html` is the email's own HTML with its `cid:` images inlined as data: URLs, so a browser
    shows it; `json` the email as it would be sent (DigestPreview); `pdf` the document."""
    period = period_of(sub.cadence, today)
    digest = gather(session, sub=sub, user=user, period=period, settings=settings)
    if fmt == "pdf":
        return reports.render(digest, "pdf", sub.language), reports.MEDIA_TYPES["pdf"]
    email = reports.render_digest_email(digest, _lang(sub.language))
    if fmt == "json":
        shown = DigestPreview(
            period=period.label or period.describe(),
            subject=email.subject,
            html=email.html,
            text=email.text,
            images=[
                PreviewImage(
                    cid=i.cid, filename=i.filename, png_base64=base64.b64encode(i.png).decode("ascii")
                )
                for i in email.images
            ],
        )
        return shown.model_dump_json().encode("utf-8"), "application/json"
    page = email.html
    for image in email.images:
        data = base64.b64encode(image.png).decode("ascii")
        page = page.replace(f"cid:{image.cid}", f"data:image/png;base64,{data}")
    return page.encode("utf-8"), "text/html; charset=utf-8"
