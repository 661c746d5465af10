"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

# A JSON document: JSONB on PostgreSQL (indexable, compared by value; object keys are not kept
# in input order), JSON text on SQLite.
JSONDocument: TypeEngine[Any] = JSON().with_variant(JSONB(), "postgresql")

# A 64-bit surrogate key; on SQLite it must be INTEGER to be the auto-incrementing rowid.
BigIntPK: TypeEngine[int] = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A point in time, stored as UTC, always returned timezone-aware in UTC.

    PostgreSQL: `timestamp with time zone`. SQLite (no time type): the UTC wall time as text.
    Naive datetimes are refused: their meaning depends on a zone the database cannot know.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused: pass a timezone-aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
