"""Alembic environment for zhidu.

The database is, in order: `config.attributes["connection"]` (an open connection),
`config.attributes["url"]` (how `service.db.migrate` passes it), `alembic -x url=...`,
`sqlalchemy.url` in the config, else the settings' `ZHIDU_DATABASE_URL`.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.pool import NullPool

from service.db.base import engine_for, import_all_models
from service.settings import get_settings, normalize_database_url

config = context.config
target_metadata = import_all_models()

# Only the `alembic` command line configures logging from the ini file; when migrations run
# inside the application or the tests, their logging is left as it is.
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def database_url() -> str:
    url = (
        config.attributes.get("url")
        or context.get_x_argument(as_dictionary=True).get("url")
        or config.get_main_option("sqlalchemy.url")
    )
    return normalize_database_url(str(url)) if url else get_settings().database_url


def run_migrations_offline() -> None:
    """Emit the SQL instead of running it (`alembic upgrade head --sql`)."""
    url = database_url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_on(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: alembic rebuilds the table ("batch" mode) instead.
        render_as_batch=sqlite,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
        if sqlite:
            # Migrations run with foreign keys off (a table rebuild would otherwise fail or
            # cascade); check nothing was left dangling before committing.
            dangling = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if dangling:
                raise RuntimeError(f"migration left {len(dangling)} dangling foreign key(s): {dangling[:10]}")


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    engine = engine_for(database_url(), sqlite_foreign_keys=False, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            run_on(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
