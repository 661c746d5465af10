"""The `zhidu digests` and `zhidu mail` commands: subscriptions, building digests, sending the outbox."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from service.console import CLI_ACTOR, cli_settings, err, migrated_session, out
from service.digests.schemas import Cadence
from service.mail.schemas import MessageKind, MessageStatus

digests_app = typer.Typer(help="Managers' digest subscriptions and scheduled digests.", no_args_is_help=True)
mail_app = typer.Typer(help="Outgoing mail: the outbox and SMTP sending.", no_args_is_help=True)


def _fail(message: str, message_zh: str) -> typer.Exit:
    err.print(f"[red]{message}[/red] / {message_zh}", highlight=False)
    return typer.Exit(2)


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value is not None else ""


# --- digests ---------------------------------------------------------------------------------------


@digests_app.command("subscribe")
def digests_subscribe(
    username: str,
    cadence: Annotated[Cadence, typer.Option(help="weekly (last ISO week) or monthly (last month).")],
    dept: Annotated[
        list[str],
        typer.Option("--dept", help="A department of the digest (repeat); within the manager's scope."),
    ],
    lang: Annotated[
        str | None, typer.Option("--lang", help="zh or en (default: the manager's language).")
    ] = None,
) -> None:
    """Subscribe a manager to the weekly or monthly digest of some of its departments."""
    from service.accounts import service as accounts
    from service.digests import flows, service

    with migrated_session() as session:
        user = accounts.find_user(session, username=username.strip())
        if user is None:
            raise _fail(f"no user {username!r}", f"用户 {username!r} 不存在")
        try:
            sub = flows.subscribe(
                session, user_id=user.id, cadence=cadence.value, depts=dept, language=lang, actor=CLI_ACTOR
            )
        except service.SubscriptionError as exc:
            raise _fail(exc.message, exc.message_zh) from exc
        assert sub is not None
        out.print(
            f"subscribed {username} to the {sub.cadence} digest of {', '.join(sub.depts)} "
            f"({sub.language}; id {sub.id}) / 已订阅",
            highlight=False,
        )


@digests_app.command("list")
def digests_list() -> None:
    """Every subscription."""
    from service.digests import service

    with migrated_session() as session:
        rows, _ = service.list_subscriptions(session)
    table = Table(title=f"digest subscriptions / 摘要订阅 ({len(rows)})")
    for col in ("id", "user", "email", "cadence", "depts", "lang", "active", "created"):
        table.add_column(col)
    for sub, user in rows:
        table.add_row(
            str(sub.id),
            user.username,
            user.email or "(none / 未登记)",
            sub.cadence,
            ",".join(sub.depts),
            sub.language,
            "yes" if sub.active else "no",
            _when(sub.created_at),
        )
    out.print(table)


@digests_app.command("run")
def digests_run(
    cadence: Annotated[Cadence, typer.Option(help="weekly or monthly.")],
    today: Annotated[
        str | None,
        typer.Option(help="Build as if today were this date (YYYY-MM-DD): the period is the one before it."),
    ] = None,
    send: Annotated[bool, typer.Option(help="Send the outbox afterwards (--no-send: build only).")] = True,
) -> None:
    """Build the digests of every active subscription of a cadence into the outbox (once per
    subscription and period), then send what is due."""
    from service.digests import flows
    from service.mail import flows as mail_flows

    s = cli_settings()
    try:
        day = date.fromisoformat(today) if today else datetime.now(s.tz).date()
    except ValueError as exc:
        raise _fail(
            f"--today {today!r} is not a date YYYY-MM-DD", f"--today {today!r} 不是日期 YYYY-MM-DD"
        ) from exc
    with migrated_session() as session:
        built = flows.build_digests(session, settings=s, cadence=cadence.value, today=day)
        report = mail_flows.send_pending(session, settings=s) if send else None
    table = Table(title=f"{cadence.value} digests / 摘要 ({len(built)})")
    for col in ("subscription", "period", "message", "outcome"):
        table.add_column(col)
    for b in built:
        table.add_row(str(b.subscription_id), b.period, str(b.message_id or ""), b.outcome)
    out.print(table)
    if report is not None:
        _print_send_report(report.as_dict())


# --- mail ------------------------------------------------------------------------------------------


def _print_send_report(report: dict[str, Any]) -> None:
    out.print(
        "sent {sent}, failed attempts {failed_attempts} (gave up {gave_up}), outbox only {outbox_only}, "
        "reminders queued {reminders_queued}, re-addressed {readdressed} / 已发送等".format(**report),
        highlight=False,
    )
    for error in report["errors"]:
        err.print(f"  - {error}", markup=False, highlight=False)


@mail_app.command("send")
def mail_send() -> None:
    """Queue notice reminders and send every message that is due (ZHIDU_SMTP_*; without
    ZHIDU_SMTP_HOST they are kept in the outbox only). Exits 1 when an attempt failed."""
    from service.mail import flows

    with migrated_session() as session:
        report = flows.send_pending(session, settings=cli_settings())
    _print_send_report(report.as_dict())
    if report.failed_attempts:
        raise typer.Exit(1)


@mail_app.command("outbox")
def mail_outbox(
    status: Annotated[MessageStatus | None, typer.Option(help="Only this status.")] = None,
    kind: Annotated[MessageKind | None, typer.Option(help="Only this kind.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many, newest first.")] = 50,
) -> None:
    """The outbox, newest first."""
    from service.mail import service

    with migrated_session() as session:
        messages, total = service.list_messages(
            session,
            status=None if status is None else status.value,
            kind=None if kind is None else kind.value,
            limit=limit,
        )
    table = Table(title=f"outbox / 发件箱 ({len(messages)} of {total})")
    for col in ("id", "kind", "source", "to", "subject", "status", "attempts", "sent", "error"):
        table.add_column(col)
    for m in messages:
        table.add_row(
            str(m.id),
            m.kind,
            m.source_key,
            ", ".join(m.recipients),
            m.subject,
            m.status,
            str(m.attempts),
            _when(m.sent_at),
            (m.last_error or "")[:120],
        )
    out.print(table)


@mail_app.command("retry")
def mail_retry(message_id: int) -> None:
    """Queue a failed or outbox-only message again (sent by the next `zhidu mail send`)."""
    from service.mail import flows

    with migrated_session() as session:
        outcome = flows.requeue(session, message_id=message_id)
    if outcome is None:
        raise _fail(f"no message {message_id}", f"邮件 {message_id} 不存在")
    message, queued = outcome
    if not queued:
        raise _fail(
            f"message {message_id} is {message.status}: only failed or outbox_only messages are retried",
            f"邮件 {message_id} 状态为 {message.status}：只有 failed 或 outbox_only 的邮件可以重发",
        )
    out.print(f"message {message_id} queued again / 已重新排队")
