"""Mail: the MIME message (Chinese subject, alternative text/html, inline images), sending through a
real SMTP server started here (aiosmtpd on a free loopback port: login, STARTTLS), retries and
giving up, the outbox without SMTP, notice reminders as mail, users' email addresses."""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy.orm import Session, sessionmaker

import reports
from reports import samples
from service.accounts import flows as account_flows
from service.accounts.models import User
from service.accounts.service import InvalidAccountError
from service.mail import flows, service
from service.mail.message import Image, build_message, sender_address
from service.mail.models import OutboxMessage
from service.notices.models import Notice, NoticeReminder
from service.settings import Settings
from tests.api_fixtures import World, unique

pytest_plugins = ["tests.api_fixtures"]

NOW = datetime(2026, 11, 23, 0, 5, tzinfo=UTC)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SENDER = "zhidu@example.cn"

# --- a real SMTP server ------------------------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes
    authenticated: bool
    tls: bool


@dataclass
class Recorder:
    """aiosmtpd handler keeping what arrived."""

    received: list[Received] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        raw = bytes(envelope.original_content or envelope.content)
        parsed = message_from_bytes(raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append(
            Received(
                envelope.mail_from,
                list(envelope.rcpt_tos),
                parsed,
                raw,
                authenticated=bool(session.authenticated),
                tls=server._tls_protocol is not None,
            )
        )
        return "250 OK"


def unfold(body: str) -> str:
    """A body as written: the wire's CRLF line ends back to LF, without the final newline."""
    return body.replace("\r\n", "\n").rstrip("\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class SmtpServer:
    port: int
    recorder: Recorder

    @property
    def received(self) -> list[Received]:
        return self.recorder.received


@contextmanager
def smtp_server(**smtp_options: Any) -> Iterator[SmtpServer]:
    """aiosmtpd on 127.0.0.1 and a free port, stopped afterwards."""
    recorder = Recorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port, **smtp_options)
    controller.start()
    try:
        yield SmtpServer(port, recorder)
    finally:
        controller.stop()


def mail_settings(db_url: str, port: int | None, **overrides: Any) -> Settings:
    if port is None:
        return Settings(database_url=db_url, **overrides)
    options: dict[str, Any] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_tls": False,
        "smtp_from": SENDER,
    }
    return Settings(database_url=db_url, **{**options, **overrides})


def dead_port() -> int:
    """A loopback port nothing listens on (connections are refused at once)."""
    return free_port()


# --- messages in the outbox ---------------------------------------------------------------------------


def digest_email() -> reports.DigestEmail:
    return reports.render_digest_email(samples.digest(), "zh")


def queue_digest(
    session: Session, *, recipients: list[str] | None = None, key: str | None = None
) -> OutboxMessage:
    email = digest_email()
    message = service.enqueue(
        session,
        kind="digest",
        source_key=key or f"digest:test:{unique('p')}",
        recipients=["wang.fang@example.cn"] if recipients is None else recipients,
        subject=email.subject,
        language="zh",
        html_body=email.html,
        text_body=email.text,
        images=[Image(i.cid, i.filename, i.png) for i in email.images],
        now=NOW,
    )
    session.commit()
    return message


def reload(session: Session, message_id: int) -> OutboxMessage:
    message = service.get(session, message_id=message_id)
    assert message is not None
    return message


# --- the MIME message -----------------------------------------------------------------------------------


def test_message_is_alternative_text_and_related_html_with_inline_pngs() -> None:
    email = digest_email()
    assert email.images, "the sample digest has charts"
    subject = "合规周报：示例科技有限公司 2026-W44（新整改通知 3 份）"
    mime = build_message(
        sender=SENDER,
        recipients=["a@example.cn", "b@example.cn"],
        subject=subject,
        text=email.text,
        html=email.html,
        images=[Image(i.cid, i.filename, i.png) for i in email.images],
        date=NOW,
    )
    raw = mime.as_bytes()
    assert raw.isascii(), "7-bit clean: headers RFC 2047, bodies quoted-printable or base64"
    assert b"Subject: =?utf-8?" in raw
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed["Subject"] == subject
    assert parsed["To"] == "a@example.cn, b@example.cn"
    assert parsed["From"].addresses[0].addr_spec == SENDER
    assert parsed["From"].addresses[0].display_name == "zhidu 制度"
    assert parsed.get_content_type() == "multipart/alternative"
    text, related = list(parsed.iter_parts())
    assert text.get_content_type() == "text/plain"
    assert unfold(text.get_content()) == unfold(email.text)
    assert related.get_content_type() == "multipart/related"
    html, *images = list(related.iter_parts())
    assert html.get_content_type() == "text/html"
    assert unfold(html.get_content()) == unfold(email.html)
    assert [i["Content-ID"] for i in images] == [f"<{i.cid}>" for i in email.images]
    for part, image in zip(images, email.images, strict=True):
        assert part.get_content_type() == "image/png"
        assert part.get_content_disposition() == "inline"
        assert part.get_content() == image.png
        assert f"cid:{image.cid}" in html.get_content()


@pytest.mark.parametrize(
    "subject",
    [
        # A space between two encoded words is lost by the standard library's folder.
        "【合规摘要】示例科技有限公司 2026-W47：新整改通知 0 份，逾期 0 份",
        "整改通知 ZG-2026-11-0001（2026-11-30 到期）还有 3 天到期 / Rectification notice: 3 day(s) left",
        "两个  空格 与\t制表符 " * 6,
        "[Compliance digest] 2026-W47: 0 new notices",
    ],
)
def test_subjects_decode_exactly_and_lines_stay_short(subject: str) -> None:
    mime = build_message(
        sender=SENDER, recipients=["a@example.cn"], subject=subject, text="t", html="h", date=NOW
    )
    raw = mime.as_bytes()
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert all(len(line) <= 78 for line in head.split(b"\r\n")), head
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Subject"] == subject


def test_message_without_images_has_no_related_part() -> None:
    mime = build_message(
        sender=SENDER, recipients=["a@example.cn"], subject="提醒", text="t", html="<p>h</p>", date=NOW
    )
    assert [p.get_content_type() for p in mime.iter_parts()] == ["text/plain", "text/html"]
    with pytest.raises(ValueError, match="recipient"):
        build_message(sender=SENDER, recipients=[], subject="s", text="t", html="h", date=NOW)


def test_the_sender_address_follows_the_settings(db_url: str) -> None:
    assert sender_address(
        Settings(database_url=db_url, smtp_host="smtp.example.cn", smtp_from=" a@example.cn ")
    ) == ("a@example.cn")
    assert sender_address(
        Settings(database_url=db_url, smtp_host="smtp.example.cn", smtp_user="u@example.cn")
    ) == ("u@example.cn")
    assert sender_address(Settings(database_url=db_url, smtp_host="smtp.example.cn", smtp_user="u")) == (
        "zhidu@smtp.example.cn"
    )
    assert sender_address(Settings(database_url=db_url, smtp_host="127.0.0.1")) == "zhidu@[127.0.0.1]"


# --- sending ----------------------------------------------------------------------------------------------


def test_digest_arrives_intact_and_the_outbox_row_is_sent(
    db_url: str, db_session_factory: sessionmaker[Session]
) -> None:
    email = digest_email()
    with smtp_server() as server, db_session_factory() as session:
        message = queue_digest(session, recipients=["wang.fang@example.cn", "li.na@example.cn"])
        report = flows.send_pending(session, settings=mail_settings(db_url, server.port), now=NOW)
        assert (report.sent, report.failed_attempts) == (1, 0)
        sent = reload(session, message.id)
        assert (sent.status, sent.attempts, sent.sent_at, sent.last_error) == ("sent", 1, NOW, None)
        # Sent once: a second run finds nothing due.
        assert flows.send_pending(session, settings=mail_settings(db_url, server.port), now=NOW).sent == 0
    assert len(server.received) == 1
    got = server.received[0]
    assert got.mail_from == SENDER
    assert sorted(got.rcpt_tos) == ["li.na@example.cn", "wang.fang@example.cn"]
    assert got.message["Subject"] == email.subject
    assert "合规" in email.subject or "Compliance" in email.subject
    assert got.message["From"].addresses[0].addr_spec == SENDER
    assert {a.addr_spec for a in got.message["To"].addresses} == {"wang.fang@example.cn", "li.na@example.cn"}
    text, related = list(got.message.iter_parts())
    assert text.get_content_type() == "text/plain"
    assert unfold(text.get_content()) == unfold(email.text)
    html, *images = list(related.iter_parts())
    assert html.get_content_type() == "text/html"
    body = unfold(html.get_content())
    assert body == unfold(email.html)
    assert len(images) == len(email.images) > 0
    for part in images:
        cid = part["Content-ID"].strip("<>")
        assert f'src="cid:{cid}"' in body
        assert part.get_content_type() == "image/png"
        payload = part.get_content()
        assert isinstance(payload, bytes)
        assert payload.startswith(PNG_MAGIC)


def test_chinese_subject_survives_the_wire(db_url: str, db_session_factory: sessionmaker[Session]) -> None:
    subject = "整改通知 ZG-2026-11-0001（2026-11-30 到期）还有 3 天到期 / Rectification notice: 3 day(s) left"
    with smtp_server() as server, db_session_factory() as session:
        service.enqueue(
            session,
            kind="notice_reminder",
            source_key=f"test:{unique('s')}",
            recipients=["li.wei@example.cn"],
            subject=subject,
            language="zh",
            html_body="<p>请按期整改</p>",
            text_body="请按期整改",
            now=NOW,
        )
        session.commit()
        flows.send_pending(session, settings=mail_settings(db_url, server.port), now=NOW)
    (got,) = server.received
    assert b"=?utf-8?" in got.raw.split(b"\r\n\r\n", 1)[0]
    assert got.message["Subject"] == subject
    assert got.message.get_body(("plain",)).get_content().strip() == "请按期整改"  # type: ignore[union-attr]


def test_smtp_down_keeps_the_message_queued_with_the_error_then_sends_it_on_retry(
    db_url: str, db_session_factory: sessionmaker[Session]
) -> None:
    down = mail_settings(db_url, dead_port())
    with db_session_factory() as session:
        message = queue_digest(session)
        report = flows.send_pending(session, settings=down, now=NOW)
        assert (report.sent, report.failed_attempts, report.gave_up) == (0, 1, 0)
        failed = reload(session, message.id)
        assert (failed.status, failed.attempts) == ("queued", 1)
        assert failed.last_error is not None
        assert "cannot connect to 127.0.0.1" in failed.last_error
        assert failed.next_attempt_at == NOW + service.retry_delay(1)
        # Not due again before its retry time: nothing is attempted.
        assert flows.send_pending(session, settings=down, now=NOW + timedelta(minutes=1)).failed_attempts == 0
        assert reload(session, message.id).attempts == 1
        with smtp_server() as server:
            later = NOW + service.retry_delay(1)
            report = flows.send_pending(session, settings=mail_settings(db_url, server.port), now=later)
        assert report.sent == 1
        sent = reload(session, message.id)
        assert (sent.status, sent.attempts, sent.sent_at, sent.last_error) == ("sent", 2, later, None)
    assert len(server.received) == 1


def test_after_the_last_attempt_a_message_is_failed_and_kept_and_can_be_queued_again(
    db_url: str, db_session_factory: sessionmaker[Session]
) -> None:
    down = mail_settings(db_url, dead_port())
    at = NOW
    with db_session_factory() as session:
        message = queue_digest(session)
        for attempt in range(1, service.MAX_ATTEMPTS + 1):
            report = flows.send_pending(session, settings=down, now=at)
            assert report.failed_attempts == 1
            current = reload(session, message.id)
            assert current.attempts == attempt
            assert current.status == ("failed" if attempt == service.MAX_ATTEMPTS else "queued")
            at = at + service.retry_delay(attempt)
        assert report.gave_up == 1
        assert flows.send_pending(session, settings=down, now=at + timedelta(days=30)).failed_attempts == 0
        outcome = flows.requeue(session, message_id=message.id)
        assert outcome is not None
        again, queued = outcome
        assert queued
        assert (again.status, again.attempts) == ("queued", 0)
        with smtp_server() as server:
            assert flows.send_pending(session, settings=mail_settings(db_url, server.port), now=at).sent == 1
    assert len(server.received) == 1


def test_without_smtp_settings_messages_stay_in_the_outbox_only(
    db_url: str, db_session_factory: sessionmaker[Session]
) -> None:
    with db_session_factory() as session:
        message = queue_digest(session)
        report = flows.send_pending(session, settings=mail_settings(db_url, None), now=NOW)
        assert (report.outbox_only, report.sent) == (1, 0)
        kept = reload(session, message.id)
        assert (kept.status, kept.attempts, kept.sent_at) == ("outbox_only", 0, None)
        assert "ZHIDU_SMTP_HOST" in (kept.last_error or "")
        assert len(service.images_of(session, message_id=message.id)) == len(digest_email().images)


def test_login_with_the_configured_user(db_url: str, db_session_factory: sessionmaker[Session]) -> None:
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data == LoginPassword(b"zhidu", "密码-s3cret".encode()), handled=False)

    options = {"authenticator": authenticator, "auth_required": True, "auth_require_tls": False}
    with smtp_server(**options) as server, db_session_factory() as session:
        wrong = mail_settings(db_url, server.port, smtp_user="zhidu", smtp_password="wrong")
        message = queue_digest(session)
        assert flows.send_pending(session, settings=wrong, now=NOW).failed_attempts == 1
        refused = reload(session, message.id)
        assert refused.status == "queued"
        assert "SMTPAuthenticationError" in (refused.last_error or "")
        right = mail_settings(db_url, server.port, smtp_user="zhidu", smtp_password="密码-s3cret")
        assert flows.send_pending(session, settings=right, now=NOW + timedelta(hours=1)).sent == 1
    assert logins[-1] == (b"zhidu", "密码-s3cret".encode())
    assert [r.authenticated for r in server.received] == [True]


def _self_signed(directory: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting it) for a certificate of 127.0.0.1."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "zhidu test SMTP")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    (directory / "cert.pem").write_bytes(cert_pem)
    (directory / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    client = ssl.create_default_context(cadata=cert_pem.decode("ascii"))
    return server, client


def test_starttls_then_login(db_url: str, db_session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    server_tls, client_tls = _self_signed(tmp_path)

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        return AuthResult(success=auth_data == LoginPassword(b"zhidu", b"pw"), handled=False)

    options = {
        "tls_context": server_tls,
        "require_starttls": True,
        "authenticator": authenticator,
        "auth_required": True,
    }  # auth_require_tls stays on: the password may only travel encrypted
    with smtp_server(**options) as server, db_session_factory() as session:
        settings = mail_settings(db_url, server.port, smtp_tls=True, smtp_user="zhidu", smtp_password="pw")
        message = queue_digest(session)
        # The system's CAs do not trust the test certificate: refused, not sent in clear.
        assert flows.send_pending(session, settings=settings, now=NOW).failed_attempts == 1
        assert "CERTIFICATE_VERIFY_FAILED" in (reload(session, message.id).last_error or "")
        later = NOW + timedelta(hours=1)
        assert flows.send_pending(session, settings=settings, now=later, tls_context=client_tls).sent == 1
    assert [(r.tls, r.authenticated) for r in server.received] == [(True, True)]


def test_tls_required_but_not_offered_is_an_error_not_plaintext(
    db_url: str, db_session_factory: sessionmaker[Session]
) -> None:
    with smtp_server() as server, db_session_factory() as session:
        message = queue_digest(session)
        report = flows.send_pending(
            session, settings=mail_settings(db_url, server.port, smtp_tls=True), now=NOW
        )
        assert report.failed_attempts == 1
        assert "does not offer STARTTLS" in (reload(session, message.id).last_error or "")
    assert server.received == []


def test_a_message_is_claimed_by_one_sender_only(db_session_factory: sessionmaker[Session]) -> None:
    with db_session_factory() as session:
        message = queue_digest(session)
        assert service.claim(session, message_id=message.id, attempts=0, now=NOW)
        assert not service.claim(session, message_id=message.id, attempts=0, now=NOW)
        session.commit()
        assert service.due_ids(session, now=NOW) == []
        # A claim whose sender died is taken again once its lease has run out.
        assert service.due_ids(session, now=NOW + service.CLAIM_LEASE) == [(message.id, 1)]


# --- notice reminders -----------------------------------------------------------------------------------


def make_user(session: Session, *, role: str, email: str | None, **fields: Any) -> User:
    return account_flows.create_user(
        session, username=unique(role), role=role, email=email, actor="system", now=NOW, **fields
    )


def make_reminder(
    session: Session, *, dept: str, head: str | None, level: int | None, kind: str, status: str = "issued"
) -> NoticeReminder:
    due_at = datetime(2026, 11, 19, 16, 0, tzinfo=UTC)  # the end of 2026-11-19 in Shanghai
    seq = int(unique("n").split("-")[1][:6], 16)
    notice = Notice(
        number=f"ZG-2026-11-{seq:07d}",
        month="2026-11",
        seq=seq,
        dept=dept,
        inspection_id=None,
        status=status,
        escalation_level=level or 0,
        issued_at=datetime(2026, 11, 4, 2, 0, tzinfo=UTC),
        issued_by="supervisor",
        due_date=date(2026, 11, 19),
        due_at=due_at,
        department_head=head,
        status_changed_at=datetime(2026, 11, 4, 2, 0, tzinfo=UTC),
    )
    session.add(notice)
    session.flush()
    recipients: list[dict[str, Any]] = [{"role": "department", "dept": dept}]
    if level and level >= 1:
        recipients.append({"role": "department_head", "dept": dept, "name": head})
    if level and level >= 2:
        recipients.append({"role": "general_manager", "title": {"zh": "总经理", "en": "General manager"}})
    reminder = NoticeReminder(
        notice_id=notice.id,
        key=f"escalation:{level}" if kind == "escalation" else "overdue:1",
        kind=kind,
        level=level,
        recipients=recipients,
        subject_zh=f"整改通知 {notice.number}（2026-11-19 到期）逾期未整改，已升级至总经理",
        subject_en=f"Rectification notice {notice.number} (due 2026-11-19) is overdue: escalated",
        created_at=due_at + timedelta(days=7, hours=1),
        sent_at=None,
    )
    session.add(reminder)
    session.commit()
    return reminder


def test_notice_reminders_are_mailed_to_the_department_the_head_and_the_managers_of_the_dept(
    db_url: str, db_session_factory: sessionmaker[Session]
) -> None:
    dept, other = unique("D"), unique("D")
    with db_session_factory() as session:
        staff = make_user(session, role="department", dept=dept, email="staff@example.cn")
        make_user(session, role="department", dept=dept, email=None)  # no address: not a recipient
        make_user(session, role="department", dept=other, email="other@example.cn")
        head = make_user(session, role="supervisor", email="head@example.cn", display_name="张三丰")
        gm = make_user(session, role="manager", scope_depts=[dept, other], email="gm@example.cn")
        make_user(session, role="manager", scope_depts=[other], email="elsewhere@example.cn")
        reminder = make_reminder(session, dept=dept, head="张三丰", level=2, kind="escalation")
        with smtp_server() as server:
            report = flows.send_pending(session, settings=mail_settings(db_url, server.port), now=NOW)
            assert report.reminders_queued == 1
            assert report.sent == 1
            # Once: the reminder is done, the next run makes no second message.
            again = flows.send_pending(session, settings=mail_settings(db_url, server.port), now=NOW)
            assert (again.reminders_queued, again.sent) == (0, 0)
        session.refresh(reminder)
        assert reminder.sent_at == NOW
        message = service.find_by_source(session, source_key=f"notice_reminder:{reminder.id}")
        assert message is not None
        assert message.reminder_id == reminder.id
        notice = session.get(Notice, reminder.notice_id)
        assert notice is not None
    (got,) = server.received
    assert sorted(got.rcpt_tos) == sorted([staff.email, head.email, gm.email])
    assert got.message["Subject"] == f"{reminder.subject_zh} / {reminder.subject_en}"
    text = unfold(got.message.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    html = unfold(got.message.get_body(("html",)).get_content())  # type: ignore[union-attr]
    for body in (text, html):
        assert notice.number in body
        assert dept in body
        assert "2026-11-19" in body
        assert f"/api/v1/notices/{notice.id}" in body
        assert "总经理" in body
        assert "General manager" in body
    assert "逾期天数：7" in text
    assert "Days overdue: 7" in text
    assert "升级级别：2" in text
    assert "Escalation level: 2" in text


def test_a_reminder_without_any_address_waits_in_the_outbox_until_one_is_set(
    db_url: str, db_session_factory: sessionmaker[Session]
) -> None:
    dept = unique("D")
    with db_session_factory() as session:
        staff = make_user(session, role="department", dept=dept, email=None)
        reminder = make_reminder(session, dept=dept, head=None, level=None, kind="overdue")
        with smtp_server() as server:
            settings = mail_settings(db_url, server.port, public_url="https://zhidu.example.cn/")
            flows.send_pending(session, settings=settings, now=NOW)
            message = service.find_by_source(session, source_key=f"notice_reminder:{reminder.id}")
            assert message is not None
            assert (message.status, message.recipients) == ("no_recipient", [])
            assert "email" in (message.last_error or "")
            session.refresh(reminder)
            assert reminder.sent_at is None
            account_flows.update_user(
                session, user_id=staff.id, changes={"email": "Staff@Example.CN"}, actor="t"
            )
            report = flows.send_pending(session, settings=settings, now=NOW + timedelta(minutes=15))
            assert (report.readdressed, report.sent) == (1, 1)
        session.refresh(reminder)
        assert reminder.sent_at == NOW + timedelta(minutes=15)
    (got,) = server.received
    assert got.rcpt_tos == ["Staff@example.cn"]
    html = got.message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert f'href="https://zhidu.example.cn/api/v1/notices/{reminder.notice_id}"' in html


def test_no_reminder_is_mailed_for_a_notice_the_department_has_answered(
    db_url: str, db_session_factory: sessionmaker[Session]
) -> None:
    dept = unique("D")
    with db_session_factory() as session:
        make_user(session, role="department", dept=dept, email="staff@example.cn")
        stale = make_reminder(
            session, dept=dept, head=None, level=None, kind="overdue", status="response_submitted"
        )
        report = flows.send_pending(session, settings=mail_settings(db_url, None), now=NOW)
        assert report.reminders_queued == 0
        assert service.find_by_source(session, source_key=f"notice_reminder:{stale.id}") is None


# --- users' email addresses -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        "no-at-sign",
        "a@b",
        "两@example.cn",
        "a b@example.cn",
        "a@exa mple.cn",
        "a@@example.cn",
        "x" * 250 + "@e.cn",
    ],
)
def test_a_bad_email_address_is_refused_with_a_reason(
    db_session_factory: sessionmaker[Session], bad: str
) -> None:
    with db_session_factory() as session, pytest.raises(InvalidAccountError) as caught:
        make_user(session, role="supervisor", email=bad)
    assert "email" in caught.value.message
    assert "邮箱" in caught.value.message_zh


def test_email_through_the_api(world: World) -> None:
    admin = world.headers("admin")
    created = world.client.post(
        "/api/v1/users",
        headers=admin,
        json={
            "username": unique("m"),
            "role": "manager",
            "scope_depts": ["D01"],
            "email": " Wang.Fang@Example.CN ",
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["email"] == "Wang.Fang@example.cn"
    user_id = created.json()["id"]
    bad = world.client.patch(f"/api/v1/users/{user_id}", headers=admin, json={"email": "not an address"})
    assert bad.status_code == 422
    assert "email" in bad.text
    cleared = world.client.patch(f"/api/v1/users/{user_id}", headers=admin, json={"email": None})
    assert cleared.status_code == 200
    assert cleared.json()["email"] is None
    assert world.client.get(f"/api/v1/users/{user_id}", headers=admin).json()["email"] is None
