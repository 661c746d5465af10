"""What every `zhidu` command group shares: the two consoles, the settings (exit code 2 when they
are invalid) and a session on the database, migrated to the newest revision first."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from sqlalchemy.orm import Session

from service.settings import Settings, get_settings

out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, soft_wrap=True, width=None if sys.stderr.isatty() else 200)

CLI_ACTOR = "system"  # actor of audit events for changes made with the command line


def cli_settings() -> Settings:
    try:
        return get_settings()
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        err.print(f"[red]invalid settings / 配置无效:[/red] {exc}")
        raise typer.Exit(2) from exc


@contextmanager
def migrated_session() -> Iterator[Session]:
    """A session on ZHIDU_DATABASE_URL, migrated to the newest revision first."""
    from service.db.base import engine_for, session_factory
    from service.db.migrate import upgrade

    settings = cli_settings()
    upgrade(settings.database_url)
    engine = engine_for(settings.database_url)
    try:
        with session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()
