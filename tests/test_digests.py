"""Digests: subscriptions (a manager's own, within its scope), the scheduled jobs (one digest per
subscription and period however often they run, then mailed through a real SMTP server), what a
digest holds for the manager's departments, previews, the outbox API, the schedules and the CLI."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from service.accounts import flows as account_flows
from service.accounts.models import User
from service.digests import flows, jobs
from service.mail import flows as mail_flows
from service.mail import service as mail_service
from service.mail.models import OutboxMessage
from service.scheduling.config import load_config
from service.scheduling.registry import is_registered
from service.settings import Settings, get_settings
from tests.access_digests import subscribe
from tests.api_fixtures import DEPT_A, DEPT_B, World, unique
from tests.report_scenario import build as build_report_scenario
from tests.test_mail import mail_settings, smtp_server, unfold

pytest_plugins = ["tests.api_fixtures"]

ROOT = Path(__file__).resolve().parents[1]
SHANGHAI = ZoneInfo("Asia/Shanghai")
SMTP_ENV = ("ZHIDU_SMTP_HOST", "ZHIDU_SMTP_PORT", "ZHIDU_SMTP_TLS", "ZHIDU_SMTP_USER", "ZHIDU_SMTP_PASSWORD")


def make_manager(
    factory: sessionmaker[Session], *, scope: list[str], email: str | None, language: str = "zh"
) -> User:
    with factory() as session:
        return account_flows.create_user(
            session,
            username=unique("manager"),
            role="manager",
            scope_depts=scope,
            display_name="王芳",
            language=language,
            email=email,
            actor="system",
        )


def messages_of(factory: sessionmaker[Session], subscription_id: int) -> list[OutboxMessage]:
    with factory() as session:
        return list(
            session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.subscription_id == subscription_id)
                .order_by(OutboxMessage.id)
            )
        )


# --- subscriptions through the API ---------------------------------------------------------------------


def test_a_manager_subscribes_itself_within_its_scope_only(world: World) -> None:
    me = world.headers("manager_a")  # scope: D01
    created = world.client.post(
        "/api/v1/digests/subscriptions", headers=me, json={"cadence": "weekly", "depts": [DEPT_A]}
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["user_id"], body["cadence"], body["depts"], body["language"], body["active"]) == (
        world.users["manager_a"].id,
        "weekly",
        [DEPT_A],
        "zh",
        True,
    )

    outside = world.client.post(
        "/api/v1/digests/subscriptions", headers=me, json={"cadence": "monthly", "depts": [DEPT_A, DEPT_B]}
    )
    assert outside.status_code == 422
    error = outside.json()["error"]
    assert error["code"] == "invalid_subscription"
    assert DEPT_B in error["message"]
    assert "scope" in error["message"]
    assert DEPT_B in error["message_zh"]

    twice = world.client.post(
        "/api/v1/digests/subscriptions", headers=me, json={"cadence": "weekly", "depts": [DEPT_A]}
    )
    assert twice.status_code == 409
    assert twice.json()["error"]["code"] == "subscription_exists"

    for bad in (
        {"cadence": "daily", "depts": [DEPT_A]},
        {"cadence": "monthly", "depts": []},
        {"cadence": "monthly"},
    ):
        assert world.client.post("/api/v1/digests/subscriptions", headers=me, json=bad).status_code == 422

    someone_else = world.client.post(
        "/api/v1/digests/subscriptions",
        headers=me,
        json={"user_id": world.users["admin"].id, "cadence": "monthly", "depts": [DEPT_A]},
    )
    assert someone_else.status_code == 403

    sub_id = body["id"]
    moved = world.client.patch(
        f"/api/v1/digests/subscriptions/{sub_id}", headers=me, json={"depts": [DEPT_B]}
    )
    assert moved.status_code == 422
    changed = world.client.patch(
        f"/api/v1/digests/subscriptions/{sub_id}", headers=me, json={"language": "en", "active": False}
    )
    assert changed.status_code == 200
    assert (changed.json()["language"], changed.json()["active"]) == ("en", False)


def test_admin_manages_every_managers_subscriptions_and_a_manager_sees_only_its_own(world: World) -> None:
    admin = world.headers("admin")
    other = world.make_user(role="manager", scope_depts=[DEPT_A, DEPT_B])
    made = world.client.post(
        "/api/v1/digests/subscriptions",
        headers=admin,
        json={"user_id": other.id, "cadence": "monthly", "depts": [DEPT_B, DEPT_A, DEPT_B], "language": "en"},
    )
    assert made.status_code == 201, made.text
    assert made.json()["depts"] == [DEPT_A, DEPT_B]
    sub_id = made.json()["id"]

    not_manager = world.client.post(
        "/api/v1/digests/subscriptions",
        headers=admin,
        json={"user_id": world.users["supervisor"].id, "cadence": "monthly", "depts": [DEPT_A]},
    )
    assert not_manager.status_code == 422
    assert "managers" in not_manager.json()["error"]["message"]
    nobody = world.client.post(
        "/api/v1/digests/subscriptions",
        headers=admin,
        json={"user_id": 10**12, "cadence": "monthly", "depts": ["X"]},
    )
    assert nobody.status_code == 422
    assert nobody.json()["error"]["code"] == "unknown_user"

    me = world.headers("manager_a")
    for method in ("GET", "PATCH", "DELETE"):
        hidden = world.client.request(method, f"/api/v1/digests/subscriptions/{sub_id}", headers=me, json={})
        assert hidden.status_code == 404, method
    assert world.client.get(f"/api/v1/digests/subscriptions/{sub_id}/preview", headers=me).status_code == 404
    assert world.client.get("/api/v1/digests/subscriptions", headers=me).json()["total"] == 0
    listed = world.client.get("/api/v1/digests/subscriptions?cadence=monthly", headers=admin).json()
    assert [s["id"] for s in listed["items"]] == [sub_id]
    removed = world.client.delete(f"/api/v1/digests/subscriptions/{sub_id}", headers=admin)
    assert removed.status_code == 200
    assert removed.json()["id"] == sub_id
    assert world.client.get(f"/api/v1/digests/subscriptions/{sub_id}", headers=admin).status_code == 404


def test_preview_renders_the_last_period_without_sending(world: World) -> None:
    sub = subscribe(world, world.users["manager_a"], cadence="monthly")
    me = world.headers("manager_a")
    html = world.client.get(f"/api/v1/digests/subscriptions/{sub.id}/preview", headers=me)
    assert html.status_code == 200, html.text
    assert html.headers["content-type"].startswith("text/html")
    last_month = (datetime.now(SHANGHAI).date().replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    assert last_month in html.text
    assert "cid:" not in html.text
    pdf = world.client.get(f"/api/v1/digests/subscriptions/{sub.id}/preview?format=pdf", headers=me)
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")
    assert (
        world.client.get(
            f"/api/v1/digests/subscriptions/{sub.id}/preview?format=xlsx", headers=me
        ).status_code
        == 422
    )
    assert world.client.get("/api/v1/outbox", headers=world.headers("admin")).json()["total"] == 0


# --- the scheduled jobs ------------------------------------------------------------------------------


@pytest.fixture
def process_settings(db_url: str, monkeypatch: pytest.MonkeyPatch) -> object:
    """The jobs read the process' settings (`get_settings`): point them at the test database."""
    monkeypatch.setenv("ZHIDU_DATABASE_URL", db_url)
    for name in SMTP_ENV:
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_the_weekly_job_makes_one_digest_per_period_however_often_it_runs_and_mails_it(
    db_session_factory: sessionmaker[Session], process_settings: pytest.MonkeyPatch
) -> None:
    manager = make_manager(db_session_factory, scope=[DEPT_A, DEPT_B], email="wang.fang@example.cn")
    with db_session_factory() as session:
        sub = flows.subscribe(session, user_id=manager.id, cadence="weekly", depts=[DEPT_A], actor="t")
    assert sub is not None
    monday = datetime(2026, 11, 23, 7, 0, tzinfo=SHANGHAI).astimezone(UTC)
    with smtp_server() as server:
        process_settings.setenv("ZHIDU_SMTP_HOST", "127.0.0.1")
        process_settings.setenv("ZHIDU_SMTP_PORT", str(server.port))
        process_settings.setenv("ZHIDU_SMTP_TLS", "false")
        get_settings.cache_clear()
        first = jobs.run_weekly_digests(db_session_factory, fire_time=monday, job_id="digests.weekly")
        again = jobs.run_weekly_digests(db_session_factory, fire_time=monday, job_id="digests.weekly")
        # A manual run later in the same week: the same period, still one digest.
        wednesday = jobs.run_weekly_digests(
            db_session_factory, fire_time=monday + timedelta(days=2), job_id="x"
        )
        assert (first["period"], first["digests"], first["mail"]["sent"]) == ("2026-W47", {"queued": 1}, 1)
        assert (again["period"], again["digests"], again["mail"]["sent"]) == ("2026-W47", {"exists": 1}, 0)
        assert wednesday["digests"] == {"exists": 1}
        (message,) = messages_of(db_session_factory, sub.id)
        assert (message.kind, message.period, message.status, message.recipients) == (
            "digest",
            "2026-W47",
            "sent",
            ["wang.fang@example.cn"],
        )
        assert message.source_key == f"digest:{sub.id}:2026-W47"
        assert first["messages"] == [message.id]
        # The next week is a new period: a second digest.
        following = jobs.run_weekly_digests(
            db_session_factory, fire_time=monday + timedelta(days=7), job_id="x"
        )
        assert (following["period"], following["digests"]) == ("2026-W48", {"queued": 1})
    assert [m.period for m in messages_of(db_session_factory, sub.id)] == ["2026-W47", "2026-W48"]
    assert len(server.received) == 2
    got = server.received[0]
    assert got.rcpt_tos == ["wang.fang@example.cn"]
    assert "2026-W47" in got.message["Subject"]
    assert got.message["Subject"] == message.subject
    assert any("\u4e00" <= ch <= "\u9fff" for ch in got.message["Subject"]), (
        "a zh digest has a Chinese subject"
    )
    html = unfold(got.message.get_body(("html",)).get_content())  # type: ignore[union-attr]
    assert html == unfold(message.html)


def test_the_monthly_job_covers_the_month_before_and_skips_paused_subscriptions(
    db_session_factory: sessionmaker[Session], process_settings: pytest.MonkeyPatch
) -> None:
    manager = make_manager(db_session_factory, scope=[DEPT_A], email=None, language="en")
    paused = make_manager(db_session_factory, scope=[DEPT_A], email="p@example.cn")
    with db_session_factory() as session:
        sub = flows.subscribe(session, user_id=manager.id, cadence="monthly", depts=[DEPT_A], actor="t")
        off = flows.subscribe(
            session, user_id=paused.id, cadence="monthly", depts=[DEPT_A], active=False, actor="t"
        )
    assert sub is not None
    assert off is not None
    assert sub.language == "en"  # the manager's language
    fire = datetime(2026, 12, 6, 7, 30, tzinfo=SHANGHAI).astimezone(UTC)
    result = jobs.run_monthly_digests(db_session_factory, fire_time=fire, job_id="digests.monthly")
    assert (result["period"], result["digests"]) == ("2026-11", {"no_recipient": 1})
    (message,) = messages_of(db_session_factory, sub.id)
    assert (message.status, message.language, message.recipients) == ("no_recipient", "en", [])
    assert messages_of(db_session_factory, off.id) == []
    # The manager gets an address: the waiting digest goes out (here: kept, no SMTP configured).
    with db_session_factory() as session:
        account_flows.update_user(session, user_id=manager.id, changes={"email": "m@example.cn"}, actor="t")
    sent = jobs.run_mail_send(db_session_factory, fire_time=fire, job_id="mail.send")
    assert (sent["readdressed"], sent["outbox_only"]) == (1, 1)
    (message,) = messages_of(db_session_factory, sub.id)
    assert (message.status, message.recipients) == ("outbox_only", ["m@example.cn"])


def test_a_digest_holds_only_the_managers_departments_and_follows_its_scope(
    db_url: str, db_session_factory: sessionmaker[Session], process_settings: pytest.MonkeyPatch
) -> None:
    settings = Settings(database_url=db_url)
    scenario = build_report_scenario(db_session_factory, settings)
    manager = make_manager(db_session_factory, scope=["D01", "D02"], email="gm@example.cn")
    with db_session_factory() as session:
        sub = flows.subscribe(session, user_id=manager.id, cadence="weekly", depts=["D01"], actor="t")
    assert sub is not None
    with db_session_factory() as session:
        # The week of 2026-10-19..25: D01's findings and score (87.5) make charts.
        (scores,) = flows.build_digests(
            session, settings=settings, cadence="weekly", today=date(2026, 10, 26)
        )
        # The week of 2026-11-09..15, when the October inspection issued both notices.
        (built,) = flows.build_digests(session, settings=settings, cadence="weekly", today=date(2026, 11, 16))
    assert (scores.period, scores.outcome, built.period, built.outcome) == (
        "2026-W43",
        "queued",
        "2026-W46",
        "queued",
    )
    week43, message = messages_of(db_session_factory, sub.id)
    assert "87.5" in week43.text
    assert scenario.d01_notice in message.html
    assert scenario.d01_notice in message.text
    assert scenario.d02_notice not in message.html
    with db_session_factory() as session:
        images = mail_service.images_of(session, message_id=week43.id)
    assert images, "the week has findings and scores: charts"
    for image in images:
        assert f"cid:{image.cid}" in week43.html
        assert image.content.startswith(b"\x89PNG\r\n\x1a\n")
    # The manager no longer reads D01: the next digest is not made (nothing it may read).
    with db_session_factory() as session:
        account_flows.update_user(session, user_id=manager.id, changes={"scope_depts": ["D02"]}, actor="t")
        (skipped,) = flows.build_digests(
            session, settings=settings, cadence="weekly", today=date(2026, 11, 23)
        )
    assert (skipped.period, skipped.outcome, skipped.message_id) == ("2026-W47", "skipped_scope", None)
    with db_session_factory() as session:
        assert mail_flows.send_pending(session, settings=mail_settings(db_url, None)).outbox_only == 2


def test_digest_jobs_are_registered_and_scheduled() -> None:
    assert all(is_registered(k) for k in ("digests.weekly", "digests.monthly", "mail.send"))
    assert jobs.register_scheduled_jobs() == ["digests.monthly", "digests.weekly", "mail.send"]
    cfg = load_config(ROOT / "policies" / "schedules.yaml", default_timezone="Asia/Shanghai")
    at = datetime(2026, 10, 15, 12, 0, tzinfo=SHANGHAI)  # a Thursday
    weekly, monthly, send = cfg.get("digests.weekly"), cfg.get("digests.monthly"), cfg.get("mail.send")
    assert weekly is not None
    assert monthly is not None
    assert send is not None
    assert weekly.next_fire_time(at) == datetime(2026, 10, 19, 7, 0, tzinfo=SHANGHAI)  # Monday
    # After the monthly inspection (the 6th, 02:00).
    inspection = cfg.get("inspection.monthly")
    assert inspection is not None
    assert monthly.next_fire_time(at) == datetime(2026, 11, 6, 7, 30, tzinfo=SHANGHAI)
    assert inspection.next_fire_time(at) < monthly.next_fire_time(at)
    # Mail goes out 5 minutes after the daily notice sweep (08:00) queued the reminders.
    assert send.next_fire_time(datetime(2026, 10, 16, 8, 0, tzinfo=SHANGHAI)) == datetime(
        2026, 10, 16, 8, 5, tzinfo=SHANGHAI
    )


# --- the outbox API ----------------------------------------------------------------------------------


def test_the_outbox_shows_a_manager_its_own_digests_with_html_and_images(world: World, db_url: str) -> None:
    mine = subscribe(world, world.users["manager_a"])
    other_manager = world.make_user(role="manager", scope_depts=[DEPT_A])
    theirs = subscribe(world, other_manager)
    with world.session_factory() as session:
        flows.build_digests(
            session, settings=Settings(database_url=db_url), cadence="weekly", today=date(2026, 11, 23)
        )
    (my_message,) = messages_of(world.session_factory, mine.id)
    (their_message,) = messages_of(world.session_factory, theirs.id)

    me = world.headers("manager_a")
    listed = world.client.get("/api/v1/outbox", headers=me).json()
    assert [m["id"] for m in listed["items"]] == [my_message.id]
    assert listed["items"][0]["status"] == "no_recipient"  # the test users have no email
    detail = world.client.get(f"/api/v1/outbox/{my_message.id}", headers=me)
    assert detail.status_code == 200
    body = detail.json()
    assert body["html"] == my_message.html
    assert body["text"] == my_message.text
    assert body["images"] == len(body["image_parts"])  # no data, no chart: see the scenario test
    for part in body["image_parts"]:
        assert f"cid:{part['cid']}" in body["html"]
        assert part["size"] > 0
    assert world.client.get(f"/api/v1/outbox/{their_message.id}", headers=me).status_code == 404

    supervisor = world.headers("supervisor")
    every = world.client.get("/api/v1/outbox?kind=digest&status=no_recipient", headers=supervisor).json()
    assert {m["id"] for m in every["items"]} == {my_message.id, their_message.id}
    assert world.client.get("/api/v1/outbox?status=sent", headers=supervisor).json()["total"] == 0
    assert world.client.get("/api/v1/outbox?status=lost", headers=supervisor).status_code == 422
    refused = world.client.post(f"/api/v1/outbox/{my_message.id}/retry", headers=supervisor)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "not_retryable"


# --- the command line ---------------------------------------------------------------------------------


def test_cli_subscribes_lists_runs_and_shows_the_outbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.cli import app

    monkeypatch.setenv("ZHIDU_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    for name in SMTP_ENV:
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    cli = CliRunner()
    try:
        made = cli.invoke(
            app,
            [
                "users",
                "create",
                "wang",
                "--role",
                "manager",
                "--scope",
                "D01,D02",
                "--email",
                "wang@example.cn",
            ],
        )
        assert made.exit_code == 0, made.output
        bad_email = cli.invoke(app, ["users", "create", "li", "--role", "supervisor", "--email", "li@"])
        assert bad_email.exit_code == 2
        assert "not an email address" in bad_email.output

        outside = cli.invoke(app, ["digests", "subscribe", "wang", "--cadence", "weekly", "--dept", "D03"])
        assert outside.exit_code == 2
        assert "D03" in outside.output
        ok = cli.invoke(
            app,
            [
                "digests",
                "subscribe",
                "wang",
                "--cadence",
                "weekly",
                "--dept",
                "D01",
                "--dept",
                "D02",
                "--lang",
                "en",
            ],
        )
        assert ok.exit_code == 0, ok.output
        assert "D01, D02" in ok.stdout
        assert (
            cli.invoke(
                app, ["digests", "subscribe", "nobody", "--cadence", "weekly", "--dept", "D01"]
            ).exit_code
            == 2
        )

        listed = cli.invoke(app, ["digests", "list"])
        assert listed.exit_code == 0
        assert "wang@example.cn" in listed.stdout

        ran = cli.invoke(app, ["digests", "run", "--cadence", "weekly", "--today", "2026-11-23"])
        assert ran.exit_code == 0, ran.output
        assert "2026-W47" in ran.stdout
        assert "queued" in ran.stdout
        assert "outbox only 1" in ran.stdout
        rerun = cli.invoke(app, ["digests", "run", "--cadence", "weekly", "--today", "2026-11-25"])
        assert "exists" in rerun.stdout
        assert (
            cli.invoke(app, ["digests", "run", "--cadence", "weekly", "--today", "23.11.2026"]).exit_code == 2
        )

        outbox = cli.invoke(app, ["mail", "outbox", "--status", "outbox_only"])
        assert outbox.exit_code == 0, outbox.output
        assert "digest:1:2026-W47" in outbox.stdout
        assert "wang@example.cn" in outbox.stdout
        sent = cli.invoke(app, ["mail", "send"])
        assert sent.exit_code == 0, sent.output
        assert "sent 0" in sent.stdout
        assert cli.invoke(app, ["mail", "retry", "1"]).exit_code == 0
        assert cli.invoke(app, ["mail", "retry", "1"]).exit_code == 2  # queued: nothing to retry
        assert cli.invoke(app, ["mail", "retry", "99"]).exit_code == 2
    finally:
        get_settings.cache_clear()
