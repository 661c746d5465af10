"""Tables: `users` (people and systems calling the API) and `api_tokens` (their Bearer tokens)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base
from service.db.types import BigIntPK, JSONDocument, UTCDateTime


class User(Base):
    """An account. Users are never deleted (audit events name them): they are deactivated."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))  # admin | supervisor | department | manager
    dept: Mapped[str | None] = mapped_column(String(64))  # required for the department role
    scope_depts: Mapped[list[str]] = mapped_column(JSONDocument)  # the departments a manager reads
    language: Mapped[str] = mapped_column(String(2))  # zh | en
    email: Mapped[str | None] = mapped_column(String(254))  # where digests and reminders go
    active: Mapped[bool]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("role IN ('admin', 'supervisor', 'department', 'manager')", name="role_known"),
        CheckConstraint("language IN ('zh', 'en')", name="language_known"),
        CheckConstraint("role <> 'department' OR dept IS NOT NULL", name="department_has_dept"),
    )

    def __repr__(self) -> str:
        return f"User(id={self.id!r}, username={self.username!r}, role={self.role!r}, dept={self.dept!r})"


class ApiToken(Base):
    """A Bearer token. Only the sha256 of the secret is kept; `prefix` identifies it in lists."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(8))  # the secret's first 8 characters
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the secret
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"ApiToken(id={self.id!r}, user_id={self.user_id!r}, prefix={self.prefix!r})"
