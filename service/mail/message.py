"""A MIME message from an outbox row: UTF-8 throughout (a Chinese subject is RFC 2047 encoded,
bodies quoted-printable or base64 as the SMTP policy chooses), text and HTML as
multipart/alternative, the HTML's images as inline parts of a multipart/related with the
Content-ID the HTML names as `cid:`."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from service.settings import Settings

DEFAULT_SENDER_NAME = "zhidu 制度"


@dataclass(frozen=True, slots=True)
class Image:
    cid: str  # without angle brackets
    filename: str
    png: bytes


def sender_address(settings: Settings) -> str:
    """The From address: ZHIDU_SMTP_FROM, else ZHIDU_SMTP_USER when it is an address, else
    zhidu@<smtp host> (localhost without a host; [address] for an IP)."""
    if settings.smtp_from:
        return settings.smtp_from.strip()
    if settings.smtp_user and "@" in settings.smtp_user:
        return settings.smtp_user.strip()
    host = settings.smtp_host or "localhost"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return f"zhidu@{host}"
    return f"zhidu@[{host}]"  # an address literal (RFC 5321)


def _set_subject(message: EmailMessage, subject: str) -> None:
    """Subject, RFC 2047 encoded when not ASCII. The policy's own folder loses a space that falls
    between two encoded words (decoders drop whitespace there: "公司 2026" arrives as "公司2026"),
    so a non-ASCII subject is encoded here with every space inside an encoded word, pre-folded to
    lines the policy keeps as they are."""
    if subject.isascii():
        message["Subject"] = subject
        return
    encoded = Header(subject, "utf-8", header_name="Subject").encode(linesep="\r\n")
    message.set_raw("Subject", encoded)


def build_message(
    *,
    sender: str,
    recipients: Sequence[str],
    subject: str,
    text: str,
    html: str,
    images: Sequence[Image] = (),
    date: datetime,
    message_id_domain: str = "zhidu",
) -> EmailMessage:
    """The message to send. Without images the HTML part stands alone in the alternative."""
    if not recipients:
        raise ValueError("a message needs at least one recipient")
    message = EmailMessage(policy=policy.SMTP)
    # The display name is non-ASCII: Address lets the policy encode it (RFC 2047).
    message["From"] = Address(display_name=DEFAULT_SENDER_NAME, addr_spec=sender)
    message["To"] = ", ".join(recipients)
    _set_subject(message, subject)
    message["Date"] = format_datetime(date)
    message["Message-ID"] = make_msgid(domain=message_id_domain)
    message.set_content(text, subtype="plain", charset="utf-8")
    message.add_alternative(html, subtype="html", charset="utf-8")
    if images:
        html_part = next(p for p in message.iter_parts() if p.get_content_type() == "text/html")
        assert isinstance(html_part, EmailMessage)
        for image in images:
            # add_related turns the HTML part into multipart/related (html first, then the images).
            html_part.add_related(
                image.png,
                maintype="image",
                subtype="png",
                cid=f"<{image.cid}>",
                filename=image.filename,
                disposition="inline",
            )
    return message
