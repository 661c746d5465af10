"""Shared test fixtures.

Database tests run on SQLite (a temporary file) and, when ZHIDU_TEST_DATABASE_URL names a
PostgreSQL database, on PostgreSQL as well: every fixture below is parametrised through `db_url`,
with test ids "sqlite" and "postgresql". Each PostgreSQL test session works in a schema of its own
(created and migrated at the start, dropped at the end), so concurrent runs against one database
do not interfere and nothing outside that schema is touched.

Each test runs inside a transaction that is rolled back afterwards; sessions made by
`db_session_factory` join it through savepoints, so flows may commit freely.
Tests using these fixtures are marked `db` automatically (`pytest -m "not db"` skips them).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from service.db.base import engine_for
from service.db.migrate import upgrade
from service.settings import normalize_database_url

PG_URL_ENV = "ZHIDU_TEST_DATABASE_URL"
PG_SCHEMA_PREFIX = "zhidu_test_"
STALE_SCHEMA_SECONDS = 24 * 3600  # schemas of killed runs older than this are dropped
DB_FIXTURES = frozenset(
    {"db_url", "db_engine", "db_connection", "db_session_factory", "db_session", "empty_db_url"}
)


def _backends() -> list[pytest.ParameterSet]:
    backends = [pytest.param("sqlite", id="sqlite")]
    if os.environ.get(PG_URL_ENV):
        backends.append(pytest.param("postgresql", id="postgresql"))
    return backends


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if DB_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.db)


def _drop_stale_schemas(connection: Connection) -> None:
    names = connection.execute(
        text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :prefix"),
        {"prefix": PG_SCHEMA_PREFIX.replace("_", r"\_") + "%"},
    ).scalars()
    cutoff = time.time() - STALE_SCHEMA_SECONDS
    for name in list(names):
        created = name.removeprefix(PG_SCHEMA_PREFIX).split("_", 1)[0]
        if created.isdigit() and int(created) < cutoff:
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@contextmanager
def fresh_database(backend: str, directory: Path) -> Iterator[str]:
    """The URL of an empty database of `backend`, removed afterwards.

    SQLite: a new file in `directory`. PostgreSQL: a new schema in ZHIDU_TEST_DATABASE_URL's
    database, made the only entry of the search path through the URL's `options`.
    """
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'zhidu.db'}"
        return
    base_url = normalize_database_url(os.environ[PG_URL_ENV])
    schema = f"{PG_SCHEMA_PREFIX}{int(time.time())}_{uuid.uuid4().hex[:8]}"
    admin = engine_for(base_url, poolclass=NullPool)
    try:
        with admin.begin() as connection:
            _drop_stale_schemas(connection)
            connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            # A connection leaked by a test must fail the drop, not hang the run.
            connection.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


@pytest.fixture(scope="session", params=_backends())
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database migrated to the newest revision, shared by the test session."""
    backend: str = request.param
    with fresh_database(backend, tmp_path_factory.mktemp(f"db-{backend}")) as url:
        upgrade(url)
        yield url


@pytest.fixture(scope="session")
def db_engine(db_url: str) -> Iterator[Engine]:
    engine = engine_for(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def db_connection(db_engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that is rolled back when the test ends."""
    with db_engine.connect() as connection:
        transaction = connection.begin()
        try:
            yield connection
        finally:
            if transaction.is_active:
                transaction.rollback()


@pytest.fixture
def db_session_factory(db_connection: Connection) -> sessionmaker[Session]:
    """Sessions joining the test's transaction: their commits and rollbacks act on savepoints."""
    return sessionmaker(bind=db_connection, join_transaction_mode="create_savepoint", expire_on_commit=False)


@pytest.fixture
def db_session(db_session_factory: sessionmaker[Session]) -> Iterator[Session]:
    with db_session_factory() as session:
        yield session


@pytest.fixture
def empty_db_url(db_url: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, unmigrated database of the same kind as `db_url` (for migration and CLI tests)."""
    with fresh_database(make_url(db_url).get_backend_name(), tmp_path) as url:
        yield url
