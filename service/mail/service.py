"""The outbox: putting messages in (once per source), claiming and recording delivery attempts,
notice reminders as mail, and reads. Keyword-only functions on a session; they flush, never commit."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, func, or_, select, update
from sqlalchemy.orm import Session

from service.accounts.models import User
from service.accounts.schemas import Role
from service.mail.message import Image
from service.mail.models import OutboxImage, OutboxMessage
from service.notices.models import Notice, NoticeReminder
from service.notices.schemas import DEPARTMENT_TO_ACT
from service.settings import Settings

MAX_ATTEMPTS = 8
# A claimed message is not claimed again for this long: longer than one SMTP exchange can take
# (smtp.TIMEOUT_SECONDS per operation), so a crashed sender's message is retried, a slow one not.
CLAIM_LEASE = timedelta(minutes=10)
FIRST_RETRY = timedelta(minutes=5)  # doubled after each failed attempt ...
MAX_RETRY = timedelta(hours=6)  # ... up to this
MAX_ERROR_LENGTH = 2000

NO_RECIPIENT_ERROR = (
    "none of the addressees has an email address yet (set one with PATCH /api/v1/users/{id}); "
    "looked up again on every send run / 收件人均未登记邮箱，每次发送时重新查找"
)


def retry_delay(attempts: int) -> timedelta:
    """How long after its `attempts`-th failed attempt a message is tried again."""
    factor: int = 2 ** min(max(attempts - 1, 0), 16)
    return min(FIRST_RETRY * factor, MAX_RETRY)


# --- putting messages in ---------------------------------------------------------------------------


def find_by_source(session: Session, *, source_key: str) -> OutboxMessage | None:
    return session.scalars(select(OutboxMessage).where(OutboxMessage.source_key == source_key)).one_or_none()


def enqueue(
    session: Session,
    *,
    kind: str,
    source_key: str,
    recipients: Sequence[str],
    subject: str,
    language: str,
    html_body: str,
    text_body: str,
    images: Sequence[Image] = (),
    owner_id: int | None = None,
    subscription_id: int | None = None,
    period: str | None = None,
    reminder_id: int | None = None,
    now: datetime,
) -> OutboxMessage:
    """Add a message: `queued`, or `no_recipient` when `recipients` is empty. The caller checks
    `find_by_source` first; a concurrent insert of the same source fails on its unique key."""
    addresses = sorted(set(recipients))
    message = OutboxMessage(
        kind=kind,
        source_key=source_key,
        subscription_id=subscription_id,
        period=period,
        reminder_id=reminder_id,
        owner_id=owner_id,
        recipients=addresses,
        subject=subject,
        language=language,
        html=html_body,
        text=text_body,
        created_at=now,
        status="queued" if addresses else "no_recipient",
        attempts=0,
        next_attempt_at=None,
        last_error=None if addresses else NO_RECIPIENT_ERROR,
        sent_at=None,
    )
    session.add(message)
    session.flush()
    for image in images:
        session.add(
            OutboxImage(message_id=message.id, cid=image.cid, filename=image.filename, content=image.png)
        )
    session.flush()
    return message


# --- sending: claims and outcomes ------------------------------------------------------------------


def due_ids(session: Session, *, now: datetime, limit: int | None = None) -> list[tuple[int, int]]:
    """(id, attempts) of the queued messages whose time has come, oldest first."""
    query = (
        select(OutboxMessage.id, OutboxMessage.attempts)
        .where(
            OutboxMessage.status == "queued",
            or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now),
        )
        .order_by(OutboxMessage.id)
    )
    if limit is not None:
        query = query.limit(limit)
    return [(int(i), int(a)) for i, a in session.execute(query)]


def claim(session: Session, *, message_id: int, attempts: int, now: datetime) -> bool:
    """Take a message for one delivery attempt: one conditional UPDATE (attempts + 1, leased until
    now + CLAIM_LEASE). False when another sender took it first or it is no longer due."""
    result = cast(
        CursorResult[Any],
        session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == message_id,
                OutboxMessage.status == "queued",
                OutboxMessage.attempts == attempts,
                or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now),
            )
            .values(attempts=attempts + 1, next_attempt_at=now + CLAIM_LEASE)
            .execution_options(synchronize_session=False)
        ),
    )
    return result.rowcount == 1


def get(session: Session, *, message_id: int) -> OutboxMessage | None:
    return session.get(OutboxMessage, message_id, populate_existing=True)


def images_of(session: Session, *, message_id: int) -> list[OutboxImage]:
    return list(
        session.scalars(
            select(OutboxImage).where(OutboxImage.message_id == message_id).order_by(OutboxImage.id)
        )
    )


def _reminder_done(session: Session, message: OutboxMessage, now: datetime) -> None:
    if message.reminder_id is None:
        return
    reminder = session.get(NoticeReminder, message.reminder_id)
    if reminder is not None and reminder.sent_at is None:
        reminder.sent_at = now


def record_sent(session: Session, *, message: OutboxMessage, now: datetime) -> None:
    message.status = "sent"
    message.sent_at = now
    message.next_attempt_at = None
    message.last_error = None
    _reminder_done(session, message, now)
    session.flush()


def record_failure(session: Session, *, message: OutboxMessage, error: str, now: datetime) -> None:
    """A failed attempt (already counted by `claim`): queued again after `retry_delay`, or
    `failed` after MAX_ATTEMPTS. The message itself is kept either way."""
    message.last_error = error[:MAX_ERROR_LENGTH]
    if message.attempts >= MAX_ATTEMPTS:
        message.status = "failed"
        message.next_attempt_at = None
    else:
        message.status = "queued"
        message.next_attempt_at = now + retry_delay(message.attempts)
    session.flush()


def keep_in_outbox_only(session: Session, *, now: datetime) -> int:
    """Without SMTP: every queued message becomes `outbox_only` (its reminder counts as done)."""
    messages = session.scalars(select(OutboxMessage).where(OutboxMessage.status == "queued")).all()
    for message in messages:
        message.status = "outbox_only"
        message.next_attempt_at = None
        message.last_error = "no SMTP server is configured (ZHIDU_SMTP_HOST) / 未配置 SMTP 服务器"
        _reminder_done(session, message, now)
    session.flush()
    return len(messages)


def requeue(session: Session, *, message: OutboxMessage) -> bool:
    """A `failed` or `outbox_only` message queued again for a fresh round of attempts."""
    if message.status not in ("failed", "outbox_only"):
        return False
    message.status = "queued"
    message.attempts = 0
    message.next_attempt_at = None
    session.flush()
    return True


# --- notice reminders --------------------------------------------------------------------------------


def _active_with_email(session: Session) -> list[User]:
    return list(
        session.scalars(select(User).where(User.active.is_(True), User.email.is_not(None)).order_by(User.id))
    )


def reminder_addresses(session: Session, *, recipients: Sequence[dict[str, Any]], dept: str) -> list[str]:
    """Email addresses for a reminder's addressees (`notices.service._recipients`):

    - `department`: the active department-role users of the notice's department;
    - `department_head`: the user (any role) whose display name or username is the head named in
      the department's record;
    - `general_manager`: the managers whose scope covers the notice's department (zhidu has no
      general-manager account; those managers are who it escalates to).
    """
    users = _active_with_email(session)
    found: set[str] = set()
    for addressee in recipients:
        role = addressee.get("role")
        if role == "department":
            target = addressee.get("dept", dept)
            found.update(u.email for u in users if u.role == Role.DEPARTMENT and u.dept == target and u.email)
        elif role == "department_head":
            name = addressee.get("name")
            if name:
                found.update(u.email for u in users if name in (u.display_name, u.username) and u.email)
        elif role == "general_manager":
            found.update(
                u.email for u in users if u.role == Role.MANAGER and dept in u.scope_depts and u.email
            )
    return sorted(found)


def _link(settings: Settings, path: str) -> str:
    base = (settings.public_url or "").rstrip("/")
    return f"{base}{path}"


@dataclass(frozen=True, slots=True)
class ReminderMail:
    subject: str
    text: str
    html: str


def reminder_mail(notice: Notice, reminder: NoticeReminder, *, settings: Settings) -> ReminderMail:
    """The bilingual message of a reminder: Chinese first, then English."""
    tz = settings.tz
    at = reminder.created_at
    overdue_days = max(0, (at - notice.due_at) // timedelta(days=1)) if at >= notice.due_at else 0
    days_left = 0 if at >= notice.due_at else -(-(notice.due_at - at) // timedelta(days=1))
    level = reminder.level if reminder.level is not None else notice.escalation_level
    targets_zh, targets_en = [], []
    for addressee in reminder.recipients:
        role = addressee.get("role")
        if role == "department":
            targets_zh.append(f"部门 {notice.dept}")
            targets_en.append(f"department {notice.dept}")
        elif role == "department_head":
            name = addressee.get("name") or ""
            targets_zh.append(f"部门负责人 {name}".strip())
            targets_en.append(f"department head {name}".strip())
        elif role == "general_manager":
            title = addressee.get("title") or {}
            targets_zh.append(str(title.get("zh", "总经理")))
            targets_en.append(str(title.get("en", "General manager")))
    link = _link(settings, f"/api/v1/notices/{notice.id}")
    deadline = notice.due_date.isoformat()
    issued = notice.issued_at.astimezone(tz).date().isoformat()
    rows = [
        ("通知编号", "Notice number", notice.number),
        ("部门", "Department", notice.dept),
        ("下发日期", "Issued on", issued),
        ("整改期限", "Deadline", deadline),
        ("剩余天数", "Days left", str(days_left))
        if days_left
        else ("逾期天数", "Days overdue", str(overdue_days)),
        ("升级级别", "Escalation level", str(level)),
        ("收件人", "To", " / ".join(f"{z} ({e})" for z, e in zip(targets_zh, targets_en, strict=True))),
    ]
    subject = f"{reminder.subject_zh} / {reminder.subject_en}"
    text_lines = [reminder.subject_zh, ""]
    text_lines += [f"{zh}：{value}" for zh, _en, value in rows]
    text_lines += [f"查看：{link}", "", reminder.subject_en, ""]
    text_lines += [f"{en}: {value}" for _zh, en, value in rows]
    text_lines += [f"Open: {link}", ""]
    table = "".join(
        f"<tr><th>{html.escape(zh)} / {html.escape(en)}</th><td>{html.escape(value)}</td></tr>"
        for zh, en, value in rows
    )
    anchor = html.escape(link)
    link_html = f'<a href="{anchor}">{anchor}</a>' if link.startswith(("http://", "https://")) else anchor
    body = (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{html.escape(subject)}</title></head><body>"
        f"<h2>{html.escape(reminder.subject_zh)}</h2><p>{html.escape(reminder.subject_en)}</p>"
        f'<table border="1" cellpadding="4" cellspacing="0">{table}</table>'
        f"<p>查看 / Open: {link_html}</p></body></html>"
    )
    return ReminderMail(subject=subject, text="\n".join(text_lines), html=body)


def queue_notice_reminders(session: Session, *, settings: Settings, now: datetime) -> int:
    """An outbox message for every unsent reminder that has none yet, of a notice the department
    still has to act on (one it has answered, or that is closed, needs no reminder any more, e.g.
    reminders recorded before mail existed); how many were made."""
    rows = session.execute(
        select(NoticeReminder, Notice)
        .join(Notice, Notice.id == NoticeReminder.notice_id)
        .outerjoin(OutboxMessage, OutboxMessage.reminder_id == NoticeReminder.id)
        .where(
            NoticeReminder.sent_at.is_(None),
            OutboxMessage.id.is_(None),
            Notice.status.in_([s.value for s in DEPARTMENT_TO_ACT]),
        )
        .order_by(NoticeReminder.id)
    ).all()
    for reminder, notice in rows:
        mail = reminder_mail(notice, reminder, settings=settings)
        enqueue(
            session,
            kind="notice_reminder",
            source_key=f"notice_reminder:{reminder.id}",
            recipients=reminder_addresses(session, recipients=reminder.recipients, dept=notice.dept),
            subject=mail.subject,
            language="zh",
            html_body=mail.html,
            text_body=mail.text,
            reminder_id=reminder.id,
            now=now,
        )
    return len(rows)


def readdress(session: Session) -> int:
    """Messages waiting for an addressee with an email: look the addressees up again and queue
    those that have one now; how many were queued."""
    waiting = session.scalars(select(OutboxMessage).where(OutboxMessage.status == "no_recipient")).all()
    queued = 0
    for message in waiting:
        addresses: list[str] = []
        if message.reminder_id is not None:
            row = session.execute(
                select(NoticeReminder, Notice)
                .join(Notice, Notice.id == NoticeReminder.notice_id)
                .where(NoticeReminder.id == message.reminder_id)
            ).one_or_none()
            if row is not None:
                addresses = reminder_addresses(session, recipients=row[0].recipients, dept=row[1].dept)
        elif message.owner_id is not None:  # a digest: its subscriber
            owner = session.get(User, message.owner_id)
            addresses = [owner.email] if owner is not None and owner.active and owner.email else []
        if addresses:
            message.recipients = addresses
            message.status = "queued"
            message.last_error = None
            queued += 1
    session.flush()
    return queued


# --- reads -------------------------------------------------------------------------------------------


def list_messages(
    session: Session,
    *,
    owner_id: int | None = None,
    kind: str | None = None,
    status: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> tuple[list[OutboxMessage], int]:
    """Messages, newest first (only `owner_id`'s when given), one page, and how many match."""
    conditions = []
    if owner_id is not None:
        conditions.append(OutboxMessage.owner_id == owner_id)
    if kind is not None:
        conditions.append(OutboxMessage.kind == kind)
    if status is not None:
        conditions.append(OutboxMessage.status == status)
    total = session.scalar(select(func.count()).select_from(OutboxMessage).where(*conditions)) or 0
    query = select(OutboxMessage).where(*conditions).order_by(OutboxMessage.id.desc()).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query)), int(total)


def image_counts(session: Session, *, message_ids: Sequence[int]) -> dict[int, int]:
    if not message_ids:
        return {}
    rows = session.execute(
        select(OutboxImage.message_id, func.count())
        .where(OutboxImage.message_id.in_(list(message_ids)))
        .group_by(OutboxImage.message_id)
    )
    return {int(m): int(n) for m, n in rows}
