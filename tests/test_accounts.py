"""Accounts: users, roles and departments, tokens stored hashed, authentication, the department
scope, the admin endpoints, the `zhidu users` / `zhidu tokens` commands and `zhidu serve`."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool
from typer.testing import CliRunner

from rules.validate import content_hash
from service.accounts import flows, service
from service.accounts.models import ApiToken, User
from service.accounts.schemas import UserCreate, UserUpdate
from service.api.deps import NotFoundError, Scope, require_roles, visible_depts
from service.audit.models import AuditEvent
from service.audit.service import digest, verify_chain
from service.db.base import engine_for, session_factory
from service.records import service as records
from service.records.models import Record
from service.settings import get_settings
from tests.helpers import ROOT

pytest.register_assert_rewrite("tests.api_fixtures")
pytest_plugins = ["tests.api_fixtures"]

from tests.api_fixtures import DEPT_A, DEPT_B, World, assert_error_shape, unique  # noqa: E402

NOW = datetime(2025, 3, 1, 9, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
TOKEN_RE = re.compile(r"zd_[A-Za-z0-9_-]{43}")


def make_user(session: Session, role: str = "department", **kwargs: Any) -> User:
    if role == "department":
        kwargs.setdefault("dept", DEPT_A)
    if role == "manager":
        kwargs.setdefault("scope_depts", [DEPT_A])
    return service.create_user(
        session, username=kwargs.pop("username", unique(role)), role=role, actor="root", now=NOW, **kwargs
    )


def events_for(session: Session, entity_type: str, entity_id: int) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.entity_type == entity_type, AuditEvent.entity_id == str(entity_id))
            .order_by(AuditEvent.seq)
        )
    )


# --- users --------------------------------------------------------------------------------------


def test_create_user_defaults_and_audit(db_session: Session) -> None:
    user = make_user(db_session, "manager", scope_depts=[" D02", "D01", "D02"], language="en")
    assert user.display_name == user.username
    assert user.active is True
    assert user.scope_depts == ["D01", "D02"]
    assert user.language == "en"
    [event] = events_for(db_session, "user", user.id)
    assert (event.action, event.actor, event.before_digest) == ("user.created", "root", None)
    assert event.after_digest == digest(service.user_state(user))
    assert event.detail == {
        "username": user.username,
        "role": "manager",
        "dept": None,
        "scope_depts": ["D01", "D02"],
    }


@pytest.mark.parametrize(
    ("role", "kwargs", "fragment"),
    [
        ("department", {"dept": None}, "needs a dept"),
        ("manager", {"scope_depts": []}, "needs scope_depts"),
        ("supervisor", {"scope_depts": ["D01"]}, "managers only"),
        ("emperor", {}, "unknown role"),
        ("admin", {"language": "fr"}, "unknown language"),
    ],
)
def test_create_user_refuses_inconsistent_roles(
    db_session: Session, role: str, kwargs: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(service.InvalidAccountError, match=fragment) as caught:
        service.create_user(db_session, username=unique("x"), role=role, actor="root", now=NOW, **kwargs)
    assert caught.value.message_zh


def test_usernames_are_unique(db_session: Session) -> None:
    make_user(db_session, "admin", username="root-admin")
    with pytest.raises(service.UsernameTakenError):
        make_user(db_session, "supervisor", username="root-admin")


def test_database_enforces_the_role_rules(db_session: Session) -> None:
    with pytest.raises(IntegrityError), db_session.begin_nested():
        db_session.execute(
            insert(User).values(
                username="no-dept",
                display_name="x",
                role="department",
                dept=None,
                scope_depts=[],
                language="zh",
                active=True,
                created_at=NOW,
            )
        )
    with pytest.raises(IntegrityError), db_session.begin_nested():
        db_session.execute(
            insert(User).values(
                username="bad-role",
                display_name="x",
                role="emperor",
                dept=None,
                scope_depts=[],
                language="zh",
                active=True,
                created_at=NOW,
            )
        )


def test_schemas_check_the_role_rules() -> None:
    with pytest.raises(ValueError, match="needs a dept"):
        UserCreate(username="li", role="department")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pattern"):
        UserCreate(username="Li Wei", role="admin")  # type: ignore[arg-type]
    assert UserUpdate(dept=None).changes() == {"dept": None}
    assert UserUpdate(display_name="x").changes() == {"display_name": "x"}


def test_update_user_audits_what_changed(db_session: Session) -> None:
    user = make_user(db_session, "department")
    before = service.user_state(user)
    service.update_user(
        db_session,
        user=user,
        changes={"role": "manager", "scope_depts": [DEPT_A, DEPT_B]},
        actor="root",
        now=NOW + timedelta(hours=1),
    )
    assert (user.role, user.scope_depts, user.dept) == ("manager", [DEPT_A, DEPT_B], DEPT_A)
    created, updated = events_for(db_session, "user", user.id)
    assert updated.action == "user.updated"
    assert updated.before_digest == digest(before) == created.after_digest
    assert updated.after_digest == digest(service.user_state(user))
    assert updated.detail["changed"] == {"role": "manager", "scope_depts": [DEPT_A, DEPT_B]}


def test_update_user_clears_the_scope_of_an_ex_manager(db_session: Session) -> None:
    user = make_user(db_session, "manager")
    service.update_user(db_session, user=user, changes={"role": "supervisor"}, actor="root", now=NOW)
    assert (user.role, user.scope_depts) == ("supervisor", [])


def test_update_user_refuses_inconsistency_and_unknown_fields(db_session: Session) -> None:
    user = make_user(db_session, "department")
    with pytest.raises(service.InvalidAccountError, match="needs a dept"):
        service.update_user(db_session, user=user, changes={"dept": None}, actor="root", now=NOW)
    with pytest.raises(service.InvalidAccountError, match="cannot change username"):
        service.update_user(db_session, user=user, changes={"username": "x"}, actor="root", now=NOW)
    assert user.dept == DEPT_A


def test_unchanged_update_writes_nothing(db_session: Session) -> None:
    user = make_user(db_session, "department")
    service.update_user(db_session, user=user, changes={"dept": DEPT_A}, actor="root", now=NOW)
    assert len(events_for(db_session, "user", user.id)) == 1


def test_the_last_active_admin_stays(db_session: Session) -> None:
    for other in db_session.scalars(select(User).where(User.role == "admin")):
        other.active = False
    first = make_user(db_session, "admin")
    for changes in ({"active": False}, {"role": "supervisor"}):
        with pytest.raises(service.LastAdminError, match="last active admin"):
            service.update_user(db_session, user=first, changes=changes, actor="root", now=NOW)
    second = make_user(db_session, "admin")
    service.update_user(db_session, user=first, changes={"active": False}, actor="root", now=NOW)
    with pytest.raises(service.LastAdminError):
        service.update_user(db_session, user=second, changes={"active": False}, actor="root", now=NOW)


# --- tokens -------------------------------------------------------------------------------------


def test_tokens_are_stored_hashed_and_the_secret_nowhere(db_session: Session) -> None:
    user = make_user(db_session, "supervisor")
    token, secret = service.issue_token(db_session, user=user, name="erp", actor="root", now=NOW)
    assert TOKEN_RE.fullmatch(secret)
    assert token.prefix == secret[:8]
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    db_session.flush()
    for table in ("api_tokens", "audit_events", "users"):
        rows = db_session.execute(text(f"SELECT * FROM {table}")).all()
        dumped = repr(rows)
        assert secret not in dumped
        assert secret[8:] not in dumped
    [event] = events_for(db_session, "token", token.id)
    assert event.action == "token.issued"
    assert event.detail == {"user": user.username, "name": "erp", "prefix": token.prefix, "expires_at": None}


def test_each_token_is_new(db_session: Session) -> None:
    user = make_user(db_session, "supervisor")
    secrets = {service.issue_token(db_session, user=user, actor="root", now=NOW)[1] for _ in range(20)}
    assert len(secrets) == 20


def test_authenticate(db_session: Session) -> None:
    user = make_user(db_session, "department")
    token, secret = service.issue_token(db_session, user=user, actor="root", now=NOW)
    assert service.authenticate(db_session, secret=secret, now=NOW) == (user, token)
    for bad, reason in [
        ("zd_" + "x" * 43, "unknown token"),
        (secret[:-1], "unknown token"),
        ("Bearer " + secret, "not a zhidu API token"),
        ("zd_" + "x" * 500, "not a zhidu API token"),
    ]:
        with pytest.raises(service.AuthenticationError, match=reason):
            service.authenticate(db_session, secret=bad, now=NOW)


def test_expired_revoked_and_deactivated_tokens_fail(db_session: Session) -> None:
    user = make_user(db_session, "department")
    _, expiring = service.issue_token(
        db_session, user=user, expires_at=NOW + timedelta(days=1), actor="root", now=NOW
    )
    service.authenticate(db_session, secret=expiring, now=NOW + timedelta(hours=23))
    with pytest.raises(service.AuthenticationError, match="expired"):
        service.authenticate(db_session, secret=expiring, now=NOW + timedelta(days=1))

    revoked, secret = service.issue_token(db_session, user=user, actor="root", now=NOW)
    service.revoke_token(db_session, token=revoked, actor="root", now=NOW)
    service.revoke_token(db_session, token=revoked, actor="root", now=NOW + timedelta(days=1))  # no-op
    assert revoked.revoked_at == NOW
    assert [e.action for e in events_for(db_session, "token", revoked.id)] == [
        "token.issued",
        "token.revoked",
    ]
    with pytest.raises(service.AuthenticationError, match="revoked"):
        service.authenticate(db_session, secret=secret, now=NOW)

    _, valid = service.issue_token(db_session, user=user, actor="root", now=NOW)
    service.update_user(db_session, user=user, changes={"active": False}, actor="root", now=NOW)
    with pytest.raises(service.AuthenticationError, match="deactivated"):
        service.authenticate(db_session, secret=valid, now=NOW)
    with pytest.raises(service.InactiveUserError):
        service.issue_token(db_session, user=user, actor="root", now=NOW)


def test_expiry_must_be_in_the_future(db_session: Session) -> None:
    user = make_user(db_session, "department")
    with pytest.raises(service.InvalidAccountError, match="future"):
        service.issue_token(db_session, user=user, expires_at=NOW, actor="root", now=NOW)


def test_use_is_recorded_at_most_once_a_minute(db_session: Session) -> None:
    user = make_user(db_session, "department")
    token, secret = service.issue_token(db_session, user=user, actor="root", now=NOW)
    db_session.commit()

    def last_used() -> datetime | None:
        return db_session.scalar(select(ApiToken.last_used_at).where(ApiToken.id == token.id))

    flows.authenticate(db_session, secret=secret, now=NOW)
    assert last_used() == NOW
    flows.authenticate(db_session, secret=secret, now=NOW + timedelta(seconds=30))
    assert last_used() == NOW
    flows.authenticate(db_session, secret=secret, now=NOW + timedelta(seconds=61))
    assert last_used() == NOW + timedelta(seconds=61)
    # Using a token is not a change: nothing audited.
    assert [e.action for e in events_for(db_session, "token", token.id)] == ["token.issued"]


def test_flows_commit_and_audit_in_one_transaction(db_session: Session) -> None:
    user = flows.create_user(db_session, username=unique("flow"), role="supervisor", actor="root")
    issued = flows.issue_token(db_session, user_id=user.id, name="n", expires_in_days=30, actor="root")
    assert issued is not None
    token, _ = issued
    assert token.expires_at is not None
    assert timedelta(days=29) < token.expires_at - datetime.now(UTC) <= timedelta(days=30)
    assert flows.revoke_token(db_session, token_id=token.id, actor="root") is token
    assert flows.update_user(db_session, user_id=10**12, changes={}, actor="root") is None
    assert flows.issue_token(db_session, user_id=10**12, actor="root") is None
    assert flows.revoke_token(db_session, token_id=10**12, actor="root") is None
    assert flows.disable_user(db_session, username="nobody-at-all", actor="root") is None
    # A refused change leaves nothing behind, audit event included.
    count = db_session.scalar(select(func.count()).select_from(AuditEvent))
    with pytest.raises(service.UsernameTakenError):
        flows.create_user(db_session, username=user.username, role="admin", actor="root")
    assert db_session.scalar(select(func.count()).select_from(AuditEvent)) == count
    assert verify_chain(db_session) == []


# --- department scope ---------------------------------------------------------------------------


def test_visible_depts_per_role(db_session: Session) -> None:
    assert visible_depts(make_user(db_session, "admin")) is None
    assert visible_depts(make_user(db_session, "supervisor")) is None
    assert visible_depts(make_user(db_session, "department", dept=DEPT_B)) == {DEPT_B}
    assert visible_depts(make_user(db_session, "manager", scope_depts=[DEPT_A, "D07"])) == {DEPT_A, "D07"}


def test_scope_filters_department_data(db_session: Session) -> None:
    payloads = [{"id": "S1", "dept": DEPT_A}, {"id": "S2", "dept": DEPT_B}, {"id": "S3"}]
    records.upsert_records(
        db_session,
        record_type="scope_test",
        payloads=payloads,
        hashes=[content_hash(p) for p in payloads],
        submitted_by="t",
        source="t",
        now=NOW,
    )

    def seen(user: User) -> list[str]:
        scope = Scope.of(user)
        query = select(Record.record_id).where(Record.record_type == "scope_test", scope.where(Record.dept))
        return sorted(db_session.scalars(query))

    assert seen(make_user(db_session, "supervisor")) == ["S1", "S2", "S3"]
    assert seen(make_user(db_session, "department", dept=DEPT_A)) == ["S1"]
    assert seen(make_user(db_session, "department", dept=DEPT_B)) == ["S2"]
    assert seen(make_user(db_session, "manager", scope_depts=[DEPT_A, DEPT_B])) == ["S1", "S2"]
    assert seen(make_user(db_session, "manager", scope_depts=["D09"])) == []
    assert Scope(frozenset()).where(Record.dept) is not None  # an empty scope filters out everything

    scope = Scope.of(make_user(db_session, "department", dept=DEPT_A))
    assert scope.can_see(DEPT_A)
    assert not scope.can_see(DEPT_B)
    assert not scope.can_see(None)
    scope.require(DEPT_A)
    with pytest.raises(NotFoundError) as caught:
        scope.require(DEPT_B)
    assert caught.value.status_code == 404
    hidden = NotFoundError("record R1 not found", "记录 R1 不存在")
    with pytest.raises(NotFoundError, match="record R1 not found"):
        scope.require(None, hidden)


def test_require_roles_knows_the_roles() -> None:
    with pytest.raises(ValueError, match="known roles"):
        require_roles("emperor")
    with pytest.raises(ValueError, match="known roles"):
        require_roles()


# --- API ----------------------------------------------------------------------------------------


def test_admin_manages_a_user_and_its_tokens(world: World) -> None:
    client, admin = world.client, world.headers("admin")
    response = client.post(
        "/api/v1/users",
        json={"username": "li.wei", "display_name": "李伟", "role": "department", "dept": DEPT_B},
        headers=admin,
    )
    assert response.status_code == 201, response.text
    user = response.json()
    assert user["dept"] == DEPT_B
    assert user["active"] is True

    response = client.post(f"/api/v1/users/{user['id']}/tokens", json={"name": "erp"}, headers=admin)
    assert response.status_code == 201
    issued = response.json()
    assert TOKEN_RE.fullmatch(issued["secret"])
    assert issued["prefix"] == issued["secret"][:8]
    assert issued["status"] == "active"
    bearer = {"Authorization": f"Bearer {issued['secret']}"}
    me = client.get("/api/v1/me", headers=bearer).json()
    assert me["user"]["username"] == "li.wei"
    assert me["visible_depts"] == [DEPT_B]
    assert me["token"]["last_used_at"] is not None

    response = client.patch(
        f"/api/v1/users/{user['id']}",
        json={"role": "manager", "scope_depts": [DEPT_A, DEPT_B]},
        headers=admin,
    )
    assert response.status_code == 200
    assert client.get("/api/v1/me", headers=bearer).json()["visible_depts"] == [DEPT_A, DEPT_B]

    assert (
        client.patch(f"/api/v1/users/{user['id']}", json={"active": False}, headers=admin).status_code == 200
    )
    response = client.get("/api/v1/me", headers=bearer)
    assert response.status_code == 401
    assert "deactivated" in response.json()["error"]["message"]
    assert (
        client.patch(f"/api/v1/users/{user['id']}", json={"active": True}, headers=admin).status_code == 200
    )
    assert client.get("/api/v1/me", headers=bearer).status_code == 200

    tokens = client.get(f"/api/v1/users/{user['id']}/tokens", headers=admin).json()
    assert [t["id"] for t in tokens] == [issued["id"]]
    assert "secret" not in tokens[0]
    assert "token_hash" not in tokens[0]

    for _ in range(2):  # revoking is idempotent
        response = client.delete(f"/api/v1/tokens/{issued['id']}", headers=admin)
        assert response.status_code == 200
        assert response.json()["status"] == "revoked"
    response = client.get("/api/v1/me", headers=bearer)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert_error_shape(response.json(), "invalid_token")

    audit = client.get(
        "/api/v1/audit", params={"actor": world.users["admin"].username, "limit": 50}, headers=admin
    ).json()
    assert [e["action"] for e in reversed(audit["items"])] == [
        "user.created",
        "token.issued",
        "user.updated",
        "user.updated",
        "user.updated",
        "token.revoked",
    ]


def test_admin_endpoint_errors(world: World) -> None:
    client, admin = world.client, world.headers("admin")
    response = client.post("/api/v1/users", json={"username": "x-dept", "role": "department"}, headers=admin)
    assert response.status_code == 422
    error = assert_error_shape(response.json(), "validation_error")
    assert "needs a dept" in error["message"]

    taken = world.users["dept_a"].username
    response = client.post("/api/v1/users", json={"username": taken, "role": "admin"}, headers=admin)
    assert response.status_code == 409
    assert_error_shape(response.json(), "username_taken")

    response = client.patch(f"/api/v1/users/{world.users['dept_a'].id}", json={"dept": None}, headers=admin)
    assert response.status_code == 422
    assert_error_shape(response.json(), "invalid_account")

    disabled = world.users["disabled"]
    response = client.post(f"/api/v1/users/{disabled.id}/tokens", json={}, headers=admin)
    assert response.status_code == 409
    assert_error_shape(response.json(), "user_inactive")

    for method, path, body in [
        ("GET", "/api/v1/users/999999999", None),
        ("PATCH", "/api/v1/users/999999999", {"active": False}),
        ("POST", "/api/v1/users/999999999/tokens", {}),
        ("GET", "/api/v1/users/999999999/tokens", None),
        ("DELETE", "/api/v1/tokens/999999999", None),
    ]:
        response = client.request(method, path, json=body, headers=admin)
        assert response.status_code == 404, (method, path)
        assert_error_shape(response.json(), "not_found")

    response = client.post(
        f"/api/v1/users/{world.users['supervisor'].id}/tokens", json={"expires_in_days": 0}, headers=admin
    )
    assert response.status_code == 422


def test_the_last_admin_cannot_be_removed_through_the_api(world: World) -> None:
    with world.session_factory() as session:
        for user in session.scalars(select(User).where(User.role == "admin", User.active.is_(True))):
            if user.id != world.users["admin"].id:
                flows.update_user(session, user_id=user.id, changes={"active": False}, actor="root")
    me = world.users["admin"]
    response = world.client.patch(
        f"/api/v1/users/{me.id}", json={"role": "supervisor"}, headers=world.headers("admin")
    )
    assert response.status_code == 409
    error = assert_error_shape(response.json(), "last_admin")
    assert me.username in error["message"]


def test_users_are_paginated(world: World) -> None:
    response = world.client.get(
        "/api/v1/users", params={"limit": 3, "offset": 2}, headers=world.headers("admin")
    )
    page = response.json()
    assert len(page["items"]) == 3
    assert page["total"] >= len(world.users)
    ids = [u["id"] for u in page["items"]]
    assert ids == sorted(ids)
    response = world.client.get("/api/v1/users", params={"limit": 501}, headers=world.headers("admin"))
    assert response.status_code == 422


# --- CLI ----------------------------------------------------------------------------------------


@pytest.fixture
def cli_db(empty_db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("ZHIDU_DATABASE_URL", empty_db_url)
    get_settings.cache_clear()
    yield empty_db_url
    get_settings.cache_clear()


def test_cli_users_and_tokens(cli_db: str) -> None:
    from service.cli import app

    runner = CliRunner()

    def run(*args: str, code: int = 0) -> Any:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, (args, result.output)
        return result

    run("users", "create", "admin", "--role", "admin")
    secret = run("tokens", "issue", "admin").stdout.strip()
    assert TOKEN_RE.fullmatch(secret), secret
    run("users", "create", "li.wei", "--role", "department", "--dept", "D01", "--name", "李伟")
    run("users", "create", "wang", "--role", "manager", "--scope", "D01, D02", "--lang", "en")
    result = run("users", "create", "zhao", "--role", "department", code=2)
    assert "needs a dept" in result.output
    assert "部门" in result.output
    assert "taken" in run("users", "create", "admin", "--role", "admin", code=2).output
    assert "emperor" in run("users", "create", "x", "--role", "emperor", code=2).output

    listing = run("users", "list").stdout
    assert "li.wei" in listing
    assert "D01,D02" in listing
    issued = run("tokens", "issue", "li.wei", "--name", "erp", "--expires-days", "30")
    assert "not shown again" in issued.stderr
    run("tokens", "issue", "nobody", code=2)

    engine = engine_for(cli_db, poolclass=NullPool)
    try:
        with session_factory(engine)() as session:
            user, _ = service.authenticate(session, secret=secret, now=datetime.now(UTC))
            assert (user.username, user.role) == ("admin", "admin")
            li_token = session.scalars(select(ApiToken).where(ApiToken.name == "erp")).one()
            assert li_token.expires_at is not None

        tokens = run("tokens", "list").stdout
        assert "admin" in tokens
        assert "erp" in tokens
        assert secret not in tokens
        assert "erp" in run("tokens", "list", "li.wei").stdout
        assert "erp" not in run("tokens", "list", "admin").stdout
        run("tokens", "list", "nobody", code=2)

        run("tokens", "revoke", str(li_token.id))
        run("tokens", "revoke", "999999", code=2)
        assert "revoked" in run("tokens", "list", "li.wei").stdout
        run("users", "disable", "li.wei")
        run("users", "disable", "nobody", code=2)
        assert "last active admin" in run("users", "disable", "admin", code=2).output

        with session_factory(engine)() as session:
            actions = session.execute(
                select(AuditEvent.actor, AuditEvent.action).order_by(AuditEvent.seq)
            ).all()
            assert [tuple(a) for a in actions] == [
                ("system", "user.created"),
                ("system", "token.issued"),
                ("system", "user.created"),
                ("system", "user.created"),
                ("system", "token.issued"),
                ("system", "token.revoked"),
                ("system", "user.updated"),
            ]
            assert verify_chain(session) == []
        assert "intact" in run("audit", "verify").stdout
    finally:
        engine.dispose()


# --- zhidu serve --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_migrates_and_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from service.cli import app

    url = f"sqlite:///{tmp_path / 'serve.db'}"
    monkeypatch.setenv("ZHIDU_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        assert runner.invoke(app, ["users", "create", "admin", "--role", "admin"]).exit_code == 0
        secret = runner.invoke(app, ["tokens", "issue", "admin"]).stdout.strip()
    finally:
        get_settings.cache_clear()
    port = _free_port()
    env = {**os.environ, "ZHIDU_DATABASE_URL": url, "ZHIDU_LOG_LEVEL": "warning", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-c", "from service.cli import app; app()", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}/api/v1"
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"{base}/health", timeout=2)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    output = process.stdout.read().decode() if process.stdout else ""
                    pytest.fail(f"zhidu serve did not start: {output}")
                time.sleep(0.2)
        assert health.json()["status"] == "ok"
        me = httpx.get(f"{base}/me", headers={"Authorization": f"Bearer {secret}"}, timeout=5)
        assert me.status_code == 200
        assert me.json()["user"]["username"] == "admin"
        assert httpx.get(f"{base}/me", timeout=5).status_code == 401
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()


# --- concurrency --------------------------------------------------------------------------------


def test_concurrent_admin_requests_all_succeed_and_keep_the_chain(empty_db_url: str) -> None:
    """Several clients at once through the real app stack (authentication with its use record,
    audited flows) on a real database: no "database is locked", no fork in the audit chain."""
    from concurrent.futures import ThreadPoolExecutor

    from fastapi.testclient import TestClient

    from service.api import create_app
    from service.db.migrate import upgrade
    from service.settings import Settings

    upgrade(empty_db_url)
    engine = engine_for(empty_db_url, poolclass=NullPool)
    try:
        with session_factory(engine)() as session:
            admin = flows.create_user(session, username="admin", role="admin", actor="system")
            issued = flows.issue_token(session, user_id=admin.id, actor="system")
            assert issued is not None
            headers = {"Authorization": f"Bearer {issued[1]}"}
        app = create_app(Settings(database_url=empty_db_url))

        def client_work(n: int) -> list[int]:
            # No `with`: the app's lifespan (engine disposal) must not end with the first client.
            client = TestClient(app, raise_server_exceptions=False)
            statuses = []
            for i in range(8):
                response = client.post(
                    "/api/v1/users", json={"username": f"c{n}-{i}", "role": "supervisor"}, headers=headers
                )
                statuses.append(response.status_code)
                statuses.append(client.get("/api/v1/me", headers=headers).status_code)
            client.close()
            return statuses

        try:
            with ThreadPoolExecutor(max_workers=4) as pool:
                results = list(pool.map(client_work, range(4)))
        finally:
            app.state.engine.dispose()  # what the lifespan does at shutdown
        assert all(status in (200, 201) for statuses in results for status in statuses), results
        with session_factory(engine)() as session:
            assert session.scalar(select(func.count()).select_from(User)) == 33
            assert session.scalar(select(func.count()).select_from(AuditEvent)) == 34
            assert verify_chain(session) == []
    finally:
        engine.dispose()
