"""The access matrix: for every route of the API, the exact status each principal gets.

`tests/test_api_access.py` walks every route of the app (`app.routes`) × every principal of
`tests.api_fixtures.PRINCIPALS` (admin, supervisor, dept_a, dept_b, manager_a, anonymous, revoked,
disabled) and asserts the status registered here, so a new route without an entry FAILS, and so
does an entry whose route is gone.

Adding routes: register one `Access` per (method, path template), here in a section of your own or
in a module `tests/access_<domain>.py` (imported automatically; it must not start with `test_`):

    from tests.access_matrix import Access, Call, expect, register

    register(
        "GET",
        "/api/v1/records/{record_type}/{record_id}",
        Access(
            # Department data: another department's answers 404, never 403, never the data.
            expect=expect(admin=200, supervisor=200, dept_a=200, dept_b=404, manager_a=200),
            build=lambda world, principal: Call(path={"record_type": "expense_claim", "record_id": make_claim(world, DEPT_A)}),
            check=lambda world, principal, response: ...,  # optional: look at the body too
        ),
    )

`build(world, principal)` runs before each request: it may create what the request needs (through
`world.session_factory`, flows or services; everything is rolled back after the test) and returns
the `Call` (path parameters, query, JSON or other body, extra headers). The principal's token is
added by the test. `expect(...)` gives the unauthenticated principals 401 unless told otherwise;
presets: `public`, `authenticated`, `admin_only`, `supervisors`.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.api_fixtures import DEPT_A, DEPT_B, PRINCIPALS, ROLES, UNAUTHENTICATED, World, unique

RouteKey = tuple[str, str]  # (method, path template as in app.routes)


@dataclass(frozen=True)
class Call:
    """What to send, besides the method, the path template and the principal's token."""

    path: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, Any] | None = None
    json: Any = None
    content: bytes | None = None
    data: Mapping[str, Any] | None = None
    files: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


Builder = Callable[[World, str], Call]
Check = Callable[[World, str, httpx.Response], None]


def no_input(_world: World, _principal: str) -> Call:
    return Call()


@dataclass(frozen=True)
class Access:
    expect: Mapping[str, int]  # principal -> status code
    build: Builder = no_input
    check: Check | None = None


ACCESS: dict[RouteKey, Access] = {}


def register(method: str, path: str, access: Access) -> None:
    key = (method.upper(), path)
    if key in ACCESS:
        raise ValueError(f"{method} {path} is registered twice in the access matrix")
    missing = set(PRINCIPALS) - set(access.expect)
    extra = set(access.expect) - set(PRINCIPALS)
    if missing or extra:
        raise ValueError(
            f"{method} {path}: expect must name every principal (missing {missing}, unknown {extra})"
        )
    ACCESS[key] = access


def expect(
    *, admin: int, supervisor: int, dept_a: int, dept_b: int, manager_a: int, unauthenticated: int = 401
) -> dict[str, int]:
    """Status per principal; anonymous, revoked and disabled all get `unauthenticated`."""
    statuses = {
        "admin": admin,
        "supervisor": supervisor,
        "dept_a": dept_a,
        "dept_b": dept_b,
        "manager_a": manager_a,
    }
    return {**statuses, **dict.fromkeys(UNAUTHENTICATED, unauthenticated)}


def public(status: int = 200) -> dict[str, int]:
    return dict.fromkeys(PRINCIPALS, status)


def authenticated(status: int = 200) -> dict[str, int]:
    return expect(**dict.fromkeys(ROLES, status))


def admin_only(status: int = 200) -> dict[str, int]:
    return expect(admin=status, supervisor=403, dept_a=403, dept_b=403, manager_a=403)


def supervisors(status: int = 200) -> dict[str, int]:
    """Admin and supervisor."""
    return expect(admin=status, supervisor=status, dept_a=403, dept_b=403, manager_a=403)


# --- system and docs ----------------------------------------------------------------------------

register("GET", "/api/v1/health", Access(expect=public()))
register("GET", "/api/v1/openapi.json", Access(expect=public()))
register("GET", "/api/v1/docs", Access(expect=public()))

# --- accounts -----------------------------------------------------------------------------------


def _check_me(world: World, principal: str, response: httpx.Response) -> None:
    if response.status_code != 200:
        return
    body = response.json()
    user = world.users[principal]
    assert body["user"]["username"] == user.username
    assert body["token"]["id"] == world.token_rows[principal].id
    assert "secret" not in body["token"]
    assert "token_hash" not in body["token"]
    visible = {
        "admin": None,
        "supervisor": None,
        "dept_a": [DEPT_A],
        "dept_b": [DEPT_B],
        "manager_a": [DEPT_A],
    }
    assert body["visible_depts"] == visible[principal]


def _new_user(_world: World, _principal: str) -> Call:
    return Call(json={"username": unique("new"), "role": "supervisor"})


def _target_user(world: World, _principal: str) -> Call:
    return Call(path={"user_id": world.users["dept_a"].id})


def _fresh_user(world: World, _principal: str) -> Call:
    return Call(path={"user_id": world.make_user().id}, json={"display_name": "新名字"})


def _fresh_user_token(world: World, _principal: str) -> Call:
    return Call(path={"user_id": world.make_user().id}, json={"name": "matrix"})


def _fresh_token(world: World, _principal: str) -> Call:
    token, _ = world.make_token(world.make_user())
    return Call(path={"token_id": token.id})


def _check_user_read(world: World, principal: str, response: httpx.Response) -> None:
    if response.status_code == 200:
        assert response.json()["id"] == world.users["dept_a"].id


def _check_tokens_listed(world: World, principal: str, response: httpx.Response) -> None:
    if response.status_code == 200:
        tokens = response.json()
        assert [t["id"] for t in tokens] == [world.token_rows["dept_a"].id]
        assert all("secret" not in t and "token_hash" not in t for t in tokens)


register("GET", "/api/v1/me", Access(expect=authenticated(), check=_check_me))
register("GET", "/api/v1/users", Access(expect=admin_only()))
register("POST", "/api/v1/users", Access(expect=admin_only(201), build=_new_user))
register(
    "GET", "/api/v1/users/{user_id}", Access(expect=admin_only(), build=_target_user, check=_check_user_read)
)
register("PATCH", "/api/v1/users/{user_id}", Access(expect=admin_only(), build=_fresh_user))
register("POST", "/api/v1/users/{user_id}/tokens", Access(expect=admin_only(201), build=_fresh_user_token))
register(
    "GET",
    "/api/v1/users/{user_id}/tokens",
    Access(expect=admin_only(), build=_target_user, check=_check_tokens_listed),
)
register("DELETE", "/api/v1/tokens/{token_id}", Access(expect=admin_only(), build=_fresh_token))

# --- audit --------------------------------------------------------------------------------------

register("GET", "/api/v1/audit", Access(expect=supervisors()))
register("GET", "/api/v1/audit/verify", Access(expect=supervisors()))


# --- other domains: tests/access_<domain>.py ----------------------------------------------------


def _load_extensions() -> None:
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if module.name.startswith("access_") and module.name != "access_matrix":
            importlib.import_module(f"tests.{module.name}")


_load_extensions()
