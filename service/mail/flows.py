"""Sending the outbox. Each step commits on its own: a message is claimed (committed) before it is
sent and its outcome recorded (committed) right after, so a crash loses no message: at worst one
is sent again after its claim lease runs out."""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage

from sqlalchemy.orm import Session

from service.mail import service
from service.mail.message import Image, build_message, sender_address
from service.mail.models import OutboxMessage
from service.mail.smtp import Connection, MailConfigError, connect
from service.settings import Settings

log = logging.getLogger(__name__)

# Failures of the connection itself (the next message needs a new one), not of one message.
_CONNECTION_ERRORS = (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, OSError)


@contextmanager
def committed(session: Session) -> Iterator[None]:
    try:
        yield
        session.commit()
    except BaseException:
        session.rollback()
        raise


@dataclass
class SendReport:
    """What one `send_pending` run did."""

    reminders_queued: int = 0
    readdressed: int = 0
    sent: int = 0
    failed_attempts: int = 0
    gave_up: int = 0
    outbox_only: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "reminders_queued": self.reminders_queued,
            "readdressed": self.readdressed,
            "sent": self.sent,
            "failed_attempts": self.failed_attempts,
            "gave_up": self.gave_up,
            "outbox_only": self.outbox_only,
            "errors": self.errors[:20],
        }


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip()


def _mime(session: Session, message: OutboxMessage, *, sender: str, now: datetime) -> EmailMessage:
    images = [Image(i.cid, i.filename, i.content) for i in service.images_of(session, message_id=message.id)]
    domain = sender.rsplit("@", 1)[-1] or "zhidu"
    return build_message(
        sender=sender,
        recipients=message.recipients,
        subject=message.subject,
        text=message.text,
        html=message.html,
        images=images,
        date=now,
        message_id_domain=domain,
    )


def queue_reminders(session: Session, *, settings: Settings, now: datetime) -> tuple[int, int]:
    """Notice reminders into the outbox, and waiting messages re-addressed: (queued, readdressed)."""
    with committed(session):
        queued = service.queue_notice_reminders(session, settings=settings, now=now)
        readdressed = service.readdress(session)
    return queued, readdressed


def send_pending(
    session: Session,
    *,
    settings: Settings,
    now: datetime | None = None,
    limit: int | None = None,
    tls_context: ssl.SSLContext | None = None,
) -> SendReport:
    """Send what is due: notice reminders become outbox messages first; then every queued
    message whose time has come is sent, each outcome recorded as it happens (a failure: queued
    again with attempts + 1 and the error, `failed` after MAX_ATTEMPTS). Without ZHIDU_SMTP_HOST
    the queued messages become `outbox_only`."""
    when = now or datetime.now(UTC)
    report = SendReport()
    report.reminders_queued, report.readdressed = queue_reminders(session, settings=settings, now=when)
    if not settings.smtp_host:
        with committed(session):
            report.outbox_only = service.keep_in_outbox_only(session, now=when)
        return report
    with committed(session):
        due = service.due_ids(session, now=when, limit=limit)
    if not due:
        return report
    sender = sender_address(settings)
    with ExitStack() as stack:
        connection: Connection | None = None
        connect_error: str | None = None
        for message_id, attempts in due:
            with committed(session):
                claimed = service.claim(session, message_id=message_id, attempts=attempts, now=when)
            if not claimed:
                continue  # another sender has it
            with committed(session):
                message = service.get(session, message_id=message_id)
                assert message is not None
                error: str | None = connect_error
                if error is None and connection is None:
                    try:
                        connection = stack.enter_context(connect(settings, tls_context=tls_context))
                    except (MailConfigError, smtplib.SMTPException, OSError, UnicodeError) as exc:
                        # Every message of this run would fail the same way: do not reconnect.
                        where = f"{settings.smtp_host}:{settings.smtp_port}"
                        error = connect_error = f"cannot connect to {where}: {_describe(exc)}"
                if error is None and connection is not None:
                    try:
                        mime = _mime(session, message, sender=sender, now=when)
                        connection.send(mime, sender=sender, recipients=list(message.recipients))
                    except _CONNECTION_ERRORS as exc:
                        error = _describe(exc)
                        stack.close()  # the next message opens a new connection
                        connection = None
                    except Exception as exc:  # e.g. a refusal: recorded on the message, the batch goes on
                        log.exception("mail %s: sending failed", message.id)
                        error = _describe(exc)
                if error is None:
                    service.record_sent(session, message=message, now=when)
                    report.sent += 1
                else:
                    service.record_failure(session, message=message, error=error, now=when)
                    report.failed_attempts += 1
                    report.gave_up += message.status == "failed"
                    report.errors.append(f"message {message.id}: {error}")
                    log.warning("mail %s not sent (attempt %s): %s", message.id, message.attempts, error)
    return report


def requeue(session: Session, *, message_id: int) -> tuple[OutboxMessage, bool] | None:
    """Queue a failed or outbox-only message again (fresh attempts): the message and whether it
    was queued (False: it is in another status); None if there is none."""
    with committed(session):
        message = service.get(session, message_id=message_id)
        if message is None:
            return None
        return message, service.requeue(session, message=message)
