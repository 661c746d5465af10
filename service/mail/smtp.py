"""Sending over SMTP with smtplib: STARTTLS when ZHIDU_SMTP_TLS, login when ZHIDU_SMTP_USER is set,
a timeout on every socket operation. One connection per batch of messages."""

from __future__ import annotations

import base64
import smtplib
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage

from service.settings import Settings

TIMEOUT_SECONDS = 30.0


class MailConfigError(RuntimeError):
    """SMTP is configured in a way that cannot work (e.g. STARTTLS required but not offered)."""


class Connection:
    """An open, authenticated SMTP session."""

    def __init__(self, client: smtplib.SMTP) -> None:
        self._client = client

    def send(self, message: EmailMessage, *, sender: str, recipients: list[str]) -> None:
        """Send one message; raises smtplib.SMTPException or OSError. A refusal of only some
        recipients also raises: the message counts as sent only when every address took it."""
        refused = self._client.send_message(message, from_addr=sender, to_addrs=recipients)
        if refused:
            raise smtplib.SMTPRecipientsRefused(refused)


def _login(client: smtplib.SMTP, user: str, password: str) -> None:
    """smtplib's login (CRAM-MD5, PLAIN or LOGIN, as offered) for ASCII credentials; smtplib
    cannot encode others, so those go as AUTH PLAIN in UTF-8 (RFC 4616)."""
    if user.isascii() and password.isascii():
        client.login(user, password)
        return
    if not client.has_extn("auth") or "PLAIN" not in client.esmtp_features.get("auth", "").upper().split():
        raise MailConfigError("non-ASCII SMTP credentials need AUTH PLAIN, which the server does not offer")
    token = base64.b64encode(f"\0{user}\0{password}".encode()).decode("ascii")
    code, reply = client.docmd("AUTH", f"PLAIN {token}")
    if code != 235:  # 235: authentication succeeded
        raise smtplib.SMTPAuthenticationError(code, reply)


@contextmanager
def connect(settings: Settings, *, tls_context: ssl.SSLContext | None = None) -> Iterator[Connection]:
    """An SMTP session to ZHIDU_SMTP_HOST:PORT. With ZHIDU_SMTP_TLS the session is upgraded with
    STARTTLS (certificate verified against `tls_context`, default: the system's CAs) before any
    login; a server that offers no STARTTLS is refused rather than sent the password in clear."""
    if not settings.smtp_host:
        raise MailConfigError("ZHIDU_SMTP_HOST is not set")
    client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=TIMEOUT_SECONDS)
    try:
        client.ehlo()
        if settings.smtp_tls:
            if not client.has_extn("starttls"):
                raise MailConfigError(
                    f"{settings.smtp_host}:{settings.smtp_port} does not offer STARTTLS and "
                    "ZHIDU_SMTP_TLS is on (set ZHIDU_SMTP_TLS=false only for a trusted local relay)"
                )
            client.starttls(context=tls_context or ssl.create_default_context())
            client.ehlo()
        if settings.smtp_user:
            password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
            _login(client, settings.smtp_user, password)
        yield Connection(client)
    finally:
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()
