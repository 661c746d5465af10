"""Fixtures for API tests: the app on the test's database transaction, a client, and a `World` of
users, one per principal of the access matrix, each with a token.

Use from a test module with `pytest_plugins = ["tests.api_fixtures"]`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from service.accounts import flows as account_flows
from service.accounts.models import ApiToken, User
from service.api import create_app
from service.settings import Settings

DEPT_A = "D01"
DEPT_B = "D02"

# Who calls: five real roles and three ways of not being anyone.
ROLES = ("admin", "supervisor", "dept_a", "dept_b", "manager_a")
UNAUTHENTICATED = ("anonymous", "revoked", "disabled")
PRINCIPALS = ROLES + UNAUTHENTICATED

_USERS: dict[str, dict[str, Any]] = {
    "admin": {"role": "admin"},
    "supervisor": {"role": "supervisor"},
    "dept_a": {"role": "department", "dept": DEPT_A},
    "dept_b": {"role": "department", "dept": DEPT_B},
    "manager_a": {"role": "manager", "scope_depts": [DEPT_A]},
    # An admin whose token is revoked, and a deactivated admin with a valid token: had either
    # worked, it could do everything.
    "revoked": {"role": "admin"},
    "disabled": {"role": "admin"},
}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class World:
    """The app, a client, and a user with a token for every principal (none for `anonymous`)."""

    app: FastAPI
    client: TestClient
    session_factory: sessionmaker[Session]
    users: dict[str, User] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # principal -> secret
    token_rows: dict[str, ApiToken] = field(default_factory=dict)

    def headers(self, principal: str) -> dict[str, str]:
        secret = self.tokens.get(principal)
        return {"Authorization": f"Bearer {secret}"} if secret else {}

    def make_user(
        self,
        *,
        role: str = "department",
        dept: str | None = DEPT_A,
        scope_depts: tuple[str, ...] | list[str] = (),
        username: str | None = None,
    ) -> User:
        """A new committed user; `dept` is kept only for the department role."""
        with self.session_factory() as session:
            return account_flows.create_user(
                session,
                username=username or unique(role),
                role=role,
                dept=dept if role == "department" else None,
                scope_depts=scope_depts,
                actor="system",
            )

    def make_token(self, user: User, *, name: str = "test") -> tuple[ApiToken, str]:
        with self.session_factory() as session:
            issued = account_flows.issue_token(session, user_id=user.id, name=name, actor="system")
        assert issued is not None
        return issued


def build_world(app: FastAPI, client: TestClient, session_factory: sessionmaker[Session]) -> World:
    world = World(app=app, client=client, session_factory=session_factory)
    for principal, spec in _USERS.items():
        user = world.make_user(
            username=unique(principal.replace("_", "-")),
            role=spec["role"],
            dept=spec.get("dept"),
            scope_depts=spec.get("scope_depts", ()),
        )
        token, secret = world.make_token(user, name=principal)
        world.users[principal] = user
        world.tokens[principal] = secret
        world.token_rows[principal] = token
    with session_factory() as session:
        account_flows.revoke_token(session, token_id=world.token_rows["revoked"].id, actor="system")
        account_flows.update_user(
            session, user_id=world.users["disabled"].id, changes={"active": False}, actor="system"
        )
    return world


def api_settings(db_url: str, **overrides: Any) -> Settings:
    return Settings(database_url=db_url, **overrides)


def app_for(db_url: str, session_factory: sessionmaker[Session], **overrides: Any) -> FastAPI:
    """The app on the test's transaction: its sessions join it through savepoints."""
    app = create_app(api_settings(db_url, **overrides))
    app.state.session_factory = session_factory
    return app


@pytest.fixture
def api_app(db_url: str, db_session_factory: sessionmaker[Session]) -> FastAPI:
    return app_for(db_url, db_session_factory)


@pytest.fixture
def api_client(api_app: FastAPI) -> Iterator[TestClient]:
    # Unhandled errors become the 500 response a real client sees, instead of raising in the test.
    client = TestClient(api_app, raise_server_exceptions=False)
    yield client
    client.close()


@pytest.fixture
def world(api_app: FastAPI, api_client: TestClient, db_session_factory: sessionmaker[Session]) -> World:
    return build_world(api_app, api_client, db_session_factory)


def assert_error_shape(body: Any, code: str | None = None) -> dict[str, Any]:
    """`body` is the one error shape; returns its `error` object."""
    assert isinstance(body, dict), body
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "message_zh", "details"}, error
    assert isinstance(error["code"], str)
    assert error["code"]
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["message_zh"], str)
    assert error["message_zh"]
    assert isinstance(error["details"], list)
    if code is not None:
        assert error["code"] == code, error
    return dict(error)


def now() -> datetime:
    return datetime.now(UTC)
