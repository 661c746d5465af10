"""Tables: `submissions` (one upload of one record type) and `records` (every version of every record)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base
from service.db.types import BigIntPK, JSONDocument, UTCDateTime


class Submission(Base):
    """One batch: the records of one type from one upload, and what became of them."""

    __tablename__ = "submissions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    record_type: Mapped[str] = mapped_column(String(64))
    submitted_by: Mapped[str] = mapped_column(String)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String)  # a file name, or "api"
    stored: Mapped[int] = mapped_column(default=0)  # new records (version 1)
    unchanged: Mapped[int] = mapped_column(default=0)  # identical to the current version: nothing written
    versioned: Mapped[int] = mapped_column(default=0)  # changed records (a new version)
    rejected: Mapped[int] = mapped_column(default=0)  # rows refused by validation before storage

    __table_args__ = (Index(None, "submitted_at"),)

    def __repr__(self) -> str:
        return f"Submission(id={self.id!r}, record_type={self.record_type!r}, source={self.source!r})"


class Record(Base):
    """One version of one business record. The current version has `is_current`; older ones are kept."""

    __tablename__ = "records"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    record_type: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[str] = mapped_column(String)  # the business id (the payload's `id`)
    dept: Mapped[str | None] = mapped_column(String)
    version: Mapped[int]
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    content_hash: Mapped[str] = mapped_column(String(64))  # sha256 hex of the canonical payload
    submitted_by: Mapped[str] = mapped_column(String)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String)
    is_current: Mapped[bool]
    submission_id: Mapped[int | None] = mapped_column(BigIntPK, ForeignKey("submissions.id"), index=True)

    __table_args__ = (
        UniqueConstraint("record_type", "record_id", "version"),
        CheckConstraint("version >= 1", name="version_positive"),
        Index("ix_records_record_type_record_id_is_current", "record_type", "record_id", "is_current"),
        Index("ix_records_record_type_dept", "record_type", "dept"),
    )

    def __repr__(self) -> str:
        return (
            f"Record(record_type={self.record_type!r}, record_id={self.record_id!r}, "
            f"version={self.version!r}, is_current={self.is_current!r})"
        )


class RecordKeyField(Base):
    """A (record type, field) whose values are indexed in `record_keys`: the fields the rules in
    force join on. Registered (and back-filled) by the evaluation runtime; `upsert_records` keeps
    `record_keys` up to date for every registered field, whoever calls it."""

    __tablename__ = "record_key_fields"

    record_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    field: Mapped[str] = mapped_column(String(64), primary_key=True)


class RecordKey(Base):
    """One value of one registered field of the CURRENT version of a record (rows of older
    versions are deleted when a record is versioned). A related-record look-up is an index scan on
    (record_type, field, value) instead of a scan of every payload."""

    __tablename__ = "record_keys"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    record_pk: Mapped[int] = mapped_column(BigIntPK, ForeignKey("records.id"), index=True)
    record_type: Mapped[str] = mapped_column(String(64))
    field: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(String)  # see `service.records.service.key_text`

    __table_args__ = (Index("ix_record_keys_record_type_field_value", "record_type", "field", "value"),)
