"""The API's access matrix (every route × every principal, see tests/access_matrix.py), the request
size limit, the one error shape, and the OpenAPI document."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from service.api import create_app
from service.settings import Settings

# The helpers' asserts are rewritten (informative failures) only if registered before import.
pytest.register_assert_rewrite("tests.api_fixtures", "tests.access_matrix")
pytest_plugins = ["tests.api_fixtures"]

from tests.access_matrix import ACCESS, Call, RouteKey  # noqa: E402
from tests.api_fixtures import PRINCIPALS, World, app_for, assert_error_shape, build_world  # noqa: E402


def app_route_keys(app: FastAPI) -> list[RouteKey]:
    """(method, path template) of every route of `app` (HEAD and OPTIONS aside). Included routers
    are walked through FastAPI's route contexts, which give each route its full path."""
    keys: set[RouteKey] = set()
    for route in iter_route_contexts(app.routes):
        methods, path = route.methods, route.path
        if not methods or path is None:
            continue
        keys.update((method, path) for method in methods - {"HEAD", "OPTIONS"})
    return sorted(keys, key=lambda key: (key[1], key[0]))


# Built once at collection: the routes as the application really has them.
ROUTES = app_route_keys(create_app(Settings(database_url="sqlite:///:memory:")))


def send(world: World, route: RouteKey, principal: str, call: Call) -> httpx.Response:
    method, template = route
    return world.client.request(
        method,
        template.format(**call.path),
        params=call.params,
        json=call.json,
        content=call.content,
        data=call.data,
        files=call.files,
        headers={**world.headers(principal), **call.headers},
    )


# --- the matrix ---------------------------------------------------------------------------------


@pytest.mark.parametrize("principal", PRINCIPALS)
@pytest.mark.parametrize("route", ROUTES, ids=[f"{method} {path}" for method, path in ROUTES])
def test_access_matrix(world: World, route: RouteKey, principal: str) -> None:
    entry = ACCESS.get(route)
    if entry is None:
        pytest.fail(
            f"{route[0]} {route[1]} has no entry in the access matrix: register it in tests/access_matrix.py "
            "or tests/access_<domain>.py with the status each principal gets"
        )
    response = send(world, route, principal, entry.build(world, principal))
    expected = entry.expect[principal]
    assert response.status_code == expected, (
        f"{route[0]} {route[1]} as {principal}: expected {expected}, got {response.status_code}: {response.text[:500]}"
    )
    if response.status_code >= 400:
        assert_error_shape(response.json())
    if response.status_code == 401:
        assert response.headers["WWW-Authenticate"].startswith('Bearer realm="zhidu"')
    if entry.check is not None:
        entry.check(world, principal, response)


def test_matrix_has_no_entry_for_a_missing_route() -> None:
    stale = sorted(set(ACCESS) - set(ROUTES))
    assert not stale, f"access matrix entries for routes the app does not have: {stale}"


def test_matrix_routes_are_found() -> None:
    # The walk sees the routes of every domain, not only some.
    assert ("GET", "/api/v1/me") in ROUTES
    assert ("DELETE", "/api/v1/tokens/{token_id}") in ROUTES
    assert ("GET", "/api/v1/audit") in ROUTES
    assert ("GET", "/api/v1/openapi.json") in ROUTES


# --- request size limit -------------------------------------------------------------------------

LIMIT = 4096


@pytest.fixture
def small_limit_client(db_url: str, db_session_factory: sessionmaker[Session]) -> TestClient:
    return TestClient(
        app_for(db_url, db_session_factory, max_upload_bytes=LIMIT), raise_server_exceptions=False
    )


def test_413_on_content_length(small_limit_client: TestClient) -> None:
    response = small_limit_client.post(
        "/api/v1/users", content=b"x" * (LIMIT + 1), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    error = assert_error_shape(response.json(), "payload_too_large")
    assert str(LIMIT) in error["message"]
    assert str(LIMIT) in error["message_zh"]
    assert error["details"] == [{"limit_bytes": LIMIT, "content_length": LIMIT + 1}]


def test_413_on_a_streamed_body_without_length(small_limit_client: TestClient) -> None:
    def chunks() -> Any:
        for _ in range(10):
            yield b" " * 1000

    response = small_limit_client.post(
        "/api/v1/users", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    error = assert_error_shape(response.json(), "payload_too_large")
    assert error["details"] == [{"limit_bytes": LIMIT}]


def test_413_comes_before_authentication_and_routing(small_limit_client: TestClient) -> None:
    response = small_limit_client.put("/api/v1/no-such-endpoint", content=b"x" * (LIMIT + 1))
    assert response.status_code == 413


def test_a_body_at_the_limit_is_accepted(db_url: str, db_session_factory: sessionmaker[Session]) -> None:
    app = app_for(db_url, db_session_factory, max_upload_bytes=LIMIT)
    client = TestClient(app, raise_server_exceptions=False)
    world = build_world(app, client, db_session_factory)
    body = json.dumps({"username": "at-limit", "role": "supervisor"}).encode()
    exact = body[:-1] + b" " * (LIMIT - len(body)) + b"}"  # JSON padded with blanks to the limit
    assert len(exact) == LIMIT
    headers = {**world.headers("admin"), "Content-Type": "application/json"}
    response = client.post("/api/v1/users", content=exact, headers=headers)
    assert response.status_code == 201, response.text
    response = client.post("/api/v1/users", content=exact + b" ", headers=headers)
    assert response.status_code == 413


# --- the error shape ----------------------------------------------------------------------------


def test_unknown_path_is_404_in_the_error_shape(api_client: TestClient) -> None:
    response = api_client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    error = assert_error_shape(response.json(), "not_found")
    assert "/api/v1/no-such-thing" in error["message"]


def test_missing_resource_is_404_in_the_error_shape(world: World) -> None:
    response = world.client.get("/api/v1/users/987654321", headers=world.headers("admin"))
    assert response.status_code == 404
    error = assert_error_shape(response.json(), "not_found")
    assert "987654321" in error["message"]
    assert "987654321" in error["message_zh"]


def test_wrong_method_is_405_with_allow(api_client: TestClient) -> None:
    response = api_client.put("/api/v1/me")
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET"
    error = assert_error_shape(response.json(), "method_not_allowed")
    assert "PUT" in error["message"]
    assert "GET" in error["message"]


def test_invalid_body_is_422_listing_every_field(world: World) -> None:
    response = world.client.post(
        "/api/v1/users",
        json={"username": "Bad Name!", "role": "emperor", "surprise": 1},
        headers=world.headers("admin"),
    )
    assert response.status_code == 422
    error = assert_error_shape(response.json(), "validation_error")
    locs = {tuple(d["loc"]) for d in error["details"]}
    assert {("body", "username"), ("body", "role"), ("body", "surprise")} <= locs
    assert all(set(d) == {"loc", "message", "type"} for d in error["details"])
    assert error["message"].startswith("the request is invalid: body.")
    assert "more" in error["message"]


def test_malformed_json_is_422(world: World) -> None:
    response = world.client.post(
        "/api/v1/users",
        content=b'{"username": ',
        headers={**world.headers("admin"), "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert_error_shape(response.json(), "validation_error")


def test_invalid_path_parameter_is_422(world: World) -> None:
    for bad in ("abc", "0", str(2**64)):
        response = world.client.get(f"/api/v1/users/{bad}", headers=world.headers("admin"))
        assert response.status_code == 422, bad
        assert_error_shape(response.json(), "validation_error")


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "unauthenticated"),
        ("Basic YWRtaW46YWRtaW4=", "unauthenticated"),
        ("Bearer", "unauthenticated"),
        ("Bearer not-a-token", "invalid_token"),
        ("Bearer zd_" + "A" * 43, "invalid_token"),
    ],
)
def test_401_with_www_authenticate(api_client: TestClient, header: str | None, code: str) -> None:
    response = api_client.get("/api/v1/me", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="zhidu"')
    if code == "invalid_token":
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert_error_shape(response.json(), code)


def test_403_names_the_role_needed(world: World) -> None:
    response = world.client.get("/api/v1/users", headers=world.headers("supervisor"))
    assert response.status_code == 403
    error = assert_error_shape(response.json(), "forbidden")
    assert "admin" in error["message"]
    assert "supervisor" in error["message"]


def test_unhandled_error_is_500_without_internals(
    db_url: str, db_session_factory: sessionmaker[Session]
) -> None:
    app = app_for(db_url, db_session_factory)

    @app.get("/api/v1/test-only-boom")
    def boom() -> None:
        raise RuntimeError("secret-internal-detail password=hunter2 at /srv/zhidu/db.py")

    response = TestClient(app, raise_server_exceptions=False).get("/api/v1/test-only-boom")
    assert response.status_code == 500
    error = assert_error_shape(response.json(), "internal_error")
    for leak in ("hunter2", "secret-internal", "RuntimeError", "Traceback", "db.py"):
        assert leak not in response.text
    assert error["details"][0]["reference"] in error["message"]


# --- OpenAPI ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    client = TestClient(create_app(Settings(database_url="sqlite:///:memory:")))
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def test_openapi_has_title_description_version(openapi: dict[str, Any]) -> None:
    info = openapi["info"]
    assert "zhidu" in info["title"]
    assert info["description"]
    assert info["version"]
    assert openapi["openapi"].startswith("3.")
    schemes = openapi["components"]["securitySchemes"]
    assert schemes["BearerToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["BearerToken"]["description"],
    }


def test_every_operation_has_a_summary_and_response_schemas(openapi: dict[str, Any]) -> None:
    operations = [
        (path, method, op) for path, item in openapi["paths"].items() for method, op in item.items()
    ]
    assert len(operations) >= 11
    for path, method, op in operations:
        where = f"{method.upper()} {path}"
        assert op.get("summary"), f"{where} has no summary"
        assert op.get("tags"), f"{where} has no tag"
        assert "500" in op["responses"], where
        for status, response in op["responses"].items():
            content = response.get("content", {})
            if status.startswith(("4", "5")):
                schema = content.get("application/json", {}).get("schema")
                assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, f"{where} {status}"
            else:  # JSON, or a document (HTML, PDF, XLSX, CSV) described as a string
                assert content, f"{where} response {status} has no content"
                assert all(c.get("schema") for c in content.values()), (
                    f"{where} response {status} has no schema"
                )
        if op.get("security"):
            assert {"401", "403"} <= set(op["responses"]), where
        if "{" in path:
            assert "404" in op["responses"], where
        if "requestBody" in op:
            assert {"413", "422"} <= set(op["responses"]), where


def test_openapi_error_schema_is_the_one_shape(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    error = schemas["ErrorResponse"]
    assert error["required"] == ["error"]
    body = schemas["ErrorBody"]
    assert set(body["properties"]) == {"code", "message", "message_zh", "details"}
    assert error.get("examples")


def test_schemas_carry_examples(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    for name in (
        "UserCreate",
        "UserUpdate",
        "UserRead",
        "TokenCreate",
        "TokenIssued",
        "AuditEventRead",
        "ChainReportRead",
    ):
        assert schemas[name].get("examples"), f"{name} has no examples"


def test_health_says_when_the_database_is_unreachable(tmp_path: Path) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'missing-dir' / 'zhidu.db'}"))
    response = TestClient(app, raise_server_exceptions=False).get("/api/v1/health")
    assert response.status_code == 503
    error = assert_error_shape(response.json(), "unavailable")
    assert "missing-dir" not in response.text
    assert error["message_zh"] == "数据库无法访问"
