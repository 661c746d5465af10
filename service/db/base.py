"""The declarative base, engines and sessions.

Supported databases: SQLite (a file; the default) and PostgreSQL through psycopg 3.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

# Constraint names are deterministic, so migrations can name what they alter or drop
# (SQLite batch mode needs named constraints).
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SQLITE_BUSY_TIMEOUT_MS = 10_000


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def engine_for(url: str | URL, *, sqlite_foreign_keys: bool = True, **kwargs: Any) -> Engine:
    """Create an engine for `url` (sqlite or postgresql+psycopg).

    SQLite connections get: foreign keys enforced (unless `sqlite_foreign_keys=False`, which
    migrations use so batch table rebuilds do not trip or cascade), WAL journal (readers do not
    block the writer), a busy timeout instead of immediate "database is locked", and real
    transactions: SQLAlchemy emits BEGIN itself, so SELECTs, DDL and SAVEPOINTs take part in the
    enclosing transaction (the sqlite3 module's legacy mode does not begin before those).
    """
    url = make_url(url)
    if url.get_backend_name() != "sqlite":
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(url, **kwargs)

    engine = create_engine(url, **kwargs)
    in_memory = url.database in (None, "", ":memory:")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see `_on_begin`)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA foreign_keys = {'ON' if sqlite_foreign_keys else 'OFF'}")
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            if not in_memory:
                cursor.execute("PRAGMA journal_mode = WAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")

    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for `engine`. Objects stay readable after commit (flows return them to callers)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def import_all_models() -> MetaData:
    """Import every domain's `service/<domain>/models.py` and return the complete metadata.

    Migrations (autogenerate) and the model/migration agreement test need every table registered;
    discovering the domain folders means a new domain cannot be forgotten here.
    """
    import service

    for module in pkgutil.iter_modules(service.__path__):
        if module.ispkg:
            name = f"service.{module.name}.models"
            if importlib.util.find_spec(name) is not None:
                importlib.import_module(name)
    return Base.metadata
