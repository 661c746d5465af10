"""The FastAPI application: `create_app(settings)`.

Routers are found, not listed: every `service/<domain>/views.py` exposing `router: APIRouter` is
mounted under /api/v1 (in module name order), so adding a domain's routes needs no change here.
Every error, including 404/405/413/422 and unhandled exceptions, answers in one shape:
`{"error": {"code", "message", "message_zh", "details"}}`.
"""

from __future__ import annotations

import gc
import importlib
import importlib.metadata
import importlib.util
import logging
import pkgutil
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from types import ModuleType
from typing import Any

from anyio import to_thread
from fastapi import APIRouter, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.engine import make_url
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.deps import (
    ApiError,
    ErrorResponse,
    SessionDep,
    error_body,
    status_phrase,
)
from service.db.base import engine_for, session_factory
from service.evaluation.runtime import runtime_for
from service.scheduling import lifecycle as scheduling
from service.settings import Settings, get_settings

API_PREFIX = "/api/v1"
TITLE = "zhidu 制度 compliance API"
DESCRIPTION = """\
Departments submit business records; the service judges them against the company's management
manuals (制度) and records violations; the supervision group, managers and departments read what
was found. Every change is written to a hash-chained audit trail.

**Authentication**: every endpoint except `/health` and these docs needs
`Authorization: Bearer <token>`; an admin issues tokens (`zhidu tokens issue USER`).

**Roles**: `admin` (accounts, tokens, policy overrides), `supervisor` (every department, manages
violations), `department` (its own department only), `manager` (the departments in its scope).
Data of a department you may not see answers **404**, as if it did not exist.

**Errors** all have one shape: `{"error": {"code", "message", "message_zh", "details"}}`.
"""
# A domain's views.py may describe its tag with `openapi_tag = {"name": ..., "description": ...}`.
SYSTEM_TAG = {"name": "system", "description": "Health of the service."}
_ERROR_SCHEMA_NAME = "ErrorResponse"

# Routes run in a thread pool (they are sync). Its size bounds the requests in progress: beyond it
# requests wait their turn in arrival order, instead of all sharing the interpreter at once, which
# stretches every one of them (the CPU-bound ones, submissions, hold the GIL most of the time).
API_THREADS = 16

log = logging.getLogger("zhidu.api")


def api_version() -> str:
    try:
        return importlib.metadata.version("zhidu")
    except importlib.metadata.PackageNotFoundError:
        return "0.1.0"


# --- errors --------------------------------------------------------------------------------------

_HTTP_ERRORS: dict[int, tuple[str, str, str]] = {
    400: ("bad_request", "bad request", "请求有误"),
    401: ("unauthenticated", "authentication required", "需要身份认证"),
    403: ("forbidden", "forbidden", "无权访问"),
    404: ("not_found", "not found", "未找到"),
    405: ("method_not_allowed", "method not allowed", "不支持该请求方法"),
    406: ("not_acceptable", "not acceptable", "无法提供所请求的格式"),
    409: ("conflict", "conflict", "冲突"),
    413: ("payload_too_large", "request body too large", "请求体过大"),
    415: ("unsupported_media_type", "unsupported media type", "不支持的内容类型"),
    429: ("too_many_requests", "too many requests", "请求过于频繁"),
    503: ("unavailable", "service unavailable", "服务暂不可用"),
}


def error_response(
    status_code: int,
    code: str,
    message: str,
    message_zh: str,
    details: list[Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        error_body(code, message, message_zh, jsonable_encoder(details or [])),
        status_code=status_code,
        headers=headers,
    )


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(jsonable_encoder(exc.body()), status_code=exc.status_code, headers=exc.headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if isinstance(exc, BodyTooLarge):
        return exc.response()
    if exc.status_code == 400:
        # FastAPI and Starlette answer 400 when they cannot parse a body (not UTF-8 JSON, broken
        # multipart: routes raise ApiError instead): invalid input like any other, the documented 422.
        why = exc.detail if isinstance(exc.detail, str) and exc.detail else "malformed body"
        return error_response(
            422,
            "validation_error",
            f"the request is invalid: the body cannot be parsed ({why})",
            f"请求无效：无法解析请求体（{why}）",
            [{"loc": ["body"], "message": why, "type": "body_unparsable"}],
        )
    status = exc.status_code
    code, message, message_zh = _HTTP_ERRORS.get(status, ("error", status_phrase(status).lower(), "请求失败"))
    where = f"{request.method} {request.url.path}"
    if status == 404 and exc.detail == status_phrase(404):
        message, message_zh = f"no such endpoint: {where}", f"接口不存在：{where}"
    elif status == 405:
        allowed = exc.headers.get("Allow", "") if exc.headers else ""
        message = f"method {request.method} is not allowed on {request.url.path}" + (
            f"; allowed: {allowed}" if allowed else ""
        )
        message_zh = f"{request.url.path} 不支持 {request.method} 方法" + (
            f"；支持：{allowed}" if allowed else ""
        )
    elif isinstance(exc.detail, str) and exc.detail and exc.detail != status_phrase(status):
        message = exc.detail
    return error_response(status, code, message, message_zh, headers=exc.headers)


def _field_path(loc: Any) -> str:
    return ".".join(str(part) for part in loc) if isinstance(loc, list | tuple) else str(loc)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {
            "loc": list(error.get("loc", ())),
            "message": str(error.get("msg", "")).removeprefix("Value error, "),
            "type": str(error.get("type", "")),
        }
        for error in exc.errors()
    ]
    first = details[0] if details else {"loc": [], "message": ""}
    summary = f"{_field_path(first['loc'])}: {first['message']}" if details else ""
    more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
    more_zh = f"（另有 {len(details) - 1} 处）" if len(details) > 1 else ""
    return error_response(
        422,
        "validation_error",
        f"the request is invalid: {summary}{more}",
        f"请求无效：{summary}{more_zh}",
        details,
    )


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    reference = uuid.uuid4().hex[:12]
    log.error("unhandled error %s on %s %s", reference, request.method, request.url.path, exc_info=exc)
    return error_response(
        500,
        "internal_error",
        f"internal error; the service logged it with reference {reference}",
        f"服务器内部错误；已记录，参考编号 {reference}",
        [{"reference": reference}],
    )


# --- request body limit --------------------------------------------------------------------------


class BodyTooLarge(StarletteHTTPException):
    """The body exceeded the limit while streaming. An HTTPException, so FastAPI's body reading
    lets it through to the handlers instead of turning it into a 400."""

    def __init__(self, limit: int, declared: int | None = None) -> None:
        super().__init__(status_code=413, detail="request body too large")
        self.limit = limit
        self.declared = declared

    def response(self) -> JSONResponse:
        size = _human_bytes(self.limit)
        details: list[Any] = [{"limit_bytes": self.limit}]
        if self.declared is not None:
            details[0]["content_length"] = self.declared
        return error_response(
            413,
            "payload_too_large",
            f"request body too large: the limit is {size} ({self.limit} bytes)",
            f"请求体过大：上限为 {size}（{self.limit} 字节）",
            details,
        )


class BodySizeLimitMiddleware:
    """Refuse request bodies over `max_bytes` with 413: at once when Content-Length says so, and
    while streaming otherwise (chunked bodies, or a Content-Length that understates)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await BodyTooLarge(self.max_bytes, declared).response()(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge as exc:
            if started:
                raise
            await exc.response()(scope, receive, send)


def _human_bytes(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} B"


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


# --- OpenAPI -------------------------------------------------------------------------------------


def _error_ref() -> dict[str, Any]:
    return {
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{_ERROR_SCHEMA_NAME}"}}}
    }


_STANDARD_ERRORS = {
    "401": "Missing, invalid, expired or revoked token",
    "403": "Your role may not do this",
    "404": "Not found, or in a department you may not see",
    "413": "Request body too large",
    "422": "Invalid request",
    "500": "Internal error (nothing internal is disclosed)",
}


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, plus the error shape on every operation: 401/403 where a token is
    needed, 404 where the path has parameters, 413 where there is a body, 422 where there is input,
    500 everywhere (FastAPI's own 422 schema is replaced: ours is not its shape)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    error_schema = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in error_schema.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components.setdefault(_ERROR_SCHEMA_NAME, error_schema)
    for path, item in schema.get("paths", {}).items():
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            codes = ["500"]
            if operation.get("security"):
                codes += ["401", "403"]
            if "{" in path:
                codes.append("404")
            if "requestBody" in operation:
                codes.append("413")
            if operation.get("parameters") or "requestBody" in operation or "422" in responses:
                codes.append("422")
            for code in codes:
                entry = responses.setdefault(code, {"description": _STANDARD_ERRORS[code]})
                if code == "422" or "content" not in entry:
                    entry.update(_error_ref())
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    app.openapi_schema = schema
    return schema


# --- routes --------------------------------------------------------------------------------------


class Health(BaseModel):
    status: str
    version: str
    database: str


system_router = APIRouter(tags=["system"])


@system_router.get(
    "/health",
    summary="Is the service up and its database reachable",
    response_model=Health,
    responses={503: {"model": ErrorResponse, "description": "The database is unreachable"}},
)
def health(session: SessionDep) -> Health:
    try:
        session.execute(text("SELECT 1"))
    except Exception as exc:
        log.warning("health check: database unreachable: %s", exc)
        raise ApiError(
            "the database is unreachable", "数据库无法访问", code="unavailable", status_code=503
        ) from None
    return Health(status="ok", version=api_version(), database=session.get_bind().dialect.name)


def discover_views() -> list[ModuleType]:
    """Every `service/<domain>/views.py` (it must define `router = APIRouter(...)`), by name."""
    import service

    modules: list[ModuleType] = []
    for info in sorted(pkgutil.iter_modules(service.__path__), key=lambda m: m.name):
        name = f"service.{info.name}.views"
        if not info.ispkg or importlib.util.find_spec(name) is None:
            continue
        module = importlib.import_module(name)
        if not isinstance(getattr(module, "router", None), APIRouter):
            raise TypeError(f"{name} must define `router = APIRouter(...)`")
        modules.append(module)
    return modules


def _pool_options(url: str) -> dict[str, Any]:
    """A connection for every thread that may run a route, so no request waits for one, and a few
    more for the scheduler's jobs. An in-memory SQLite database has a pool of its own."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        return {}
    return {"pool_size": API_THREADS, "max_overflow": 8}


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API for `settings` (default: the environment's). Its engine, session factory and
    settings are on `app.state` (`engine`, `session_factory`, `settings`); tests may replace
    `app.state.session_factory`. The engine is disposed when the app shuts down."""
    settings = settings or get_settings()
    views = discover_views()
    tags = [SYSTEM_TAG, *(m.openapi_tag for m in views if isinstance(getattr(m, "openapi_tag", None), dict))]
    engine = engine_for(settings.database_url, **_pool_options(settings.database_url))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        to_thread.current_default_thread_limiter().total_tokens = API_THREADS
        if getattr(_app.state, "load_runtime_at_start", False):
            await to_thread.run_sync(runtime_for, settings)
            # The policy library, compiled rules and imports are millions of long-lived objects:
            # frozen, the collector's full passes stop walking them (each walk stalled a request by
            # 150-500 ms under load).
            gc.collect()
            gc.freeze()
        scheduling.start(_app)  # only in apps enabled by `zhidu serve`; tests build apps without it
        try:
            yield
        finally:
            scheduling.stop(_app)
            engine.dispose()

    app = FastAPI(
        title=TITLE,
        description=DESCRIPTION,
        version=api_version(),
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        openapi_tags=tags,
        lifespan=lifespan,
        exception_handlers={
            ApiError: _api_error,
            StarletteHTTPException: _http_error,
            RequestValidationError: _validation_error,
            Exception: _unhandled,
        },
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = session_factory(engine)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_upload_bytes)
    app.include_router(system_router, prefix=API_PREFIX)
    for module in views:
        app.include_router(module.router, prefix=API_PREFIX)
    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]
    return app


def create_served_app(settings: Settings | None = None) -> FastAPI:
    """What `zhidu serve` runs, in each of its worker processes (uvicorn imports it by name): the
    API for `settings` (default: the environment's), with this process's scheduler enabled (the
    processes elect one leader among them), which loads the policy library before it serves, so no
    request waits for that."""
    app = scheduling.enable(create_app(settings))
    app.state.load_runtime_at_start = True
    return app
