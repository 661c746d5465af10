"""Storage plumbing: the declarative base, engines, sessions, portable types and migrations."""

from service.db.base import Base, engine_for, import_all_models, session_factory

__all__ = ["Base", "engine_for", "import_all_models", "session_factory"]
