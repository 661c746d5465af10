"""The service's configuration: one typed settings object, read from `ZHIDU_*` environment variables.

Invalid values fail at start-up with a message naming the variable, never later at first use.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

REPO_POLICIES_DIR = Path(__file__).resolve().parents[1] / "policies"
MiB = 1024 * 1024

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

# Accepted drivers per backend; the first is used when the URL names none.
_DRIVERS: dict[str, tuple[str, ...]] = {
    "sqlite": ("pysqlite",),
    "postgresql": ("psycopg",),
}
_BACKEND_ALIASES = {"postgres": "postgresql"}


def default_database_url() -> str:
    """A SQLite file `zhidu.db` in the current working directory (an absolute path)."""
    return f"sqlite:///{Path.cwd() / 'zhidu.db'}"


def normalize_database_url(value: str) -> str:
    """Check `value` is a SQLite or PostgreSQL (psycopg 3) URL; name the driver explicitly.

    `postgresql://` and `postgres://` become `postgresql+psycopg://` (SQLAlchemy would otherwise
    pick psycopg2, which zhidu does not install). Raises ValueError with a user-facing message.
    """
    try:
        url = make_url(value.strip())
    except ArgumentError as exc:
        raise ValueError(f"cannot parse database URL {value!r}: {exc}") from None
    backend = _BACKEND_ALIASES.get(url.get_backend_name(), url.get_backend_name())
    drivers = _DRIVERS.get(backend)
    if drivers is None:
        raise ValueError(
            f"unsupported database {url.get_backend_name()!r}: use sqlite:///path/to/zhidu.db "
            "or postgresql+psycopg://user:password@host:5432/dbname"
        )
    driver = url.get_driver_name() if "+" in url.drivername else drivers[0]
    if driver not in drivers:
        raise ValueError(
            f"unsupported driver {driver!r} for {backend}: use {backend}+{drivers[0]}:// "
            f"(zhidu uses synchronous {drivers[0]})"
        )
    if backend == "sqlite" and url.database in (None, ""):
        raise ValueError(
            "a SQLite URL needs a file: sqlite:///relative/path.db or sqlite:////absolute/path.db"
        )
    return url.set(drivername=f"{backend}+{driver}").render_as_string(hide_password=False)


class Settings(BaseSettings):
    """Everything configurable. Each field `x` is read from the environment variable `ZHIDU_X`."""

    model_config = SettingsConfigDict(env_prefix="ZHIDU_", extra="ignore", frozen=True, validate_default=True)

    database_url: str = Field(default_factory=default_database_url)
    timezone: str = "Asia/Shanghai"
    policies_dir: Path = REPO_POLICIES_DIR
    # The company's choices; the file need not exist (callers fall back to the library defaults).
    # Unless set, it follows `policies_dir`.
    company_file: Path = REPO_POLICIES_DIR / "company.yaml"
    max_upload_bytes: int = Field(default=20 * MiB, gt=0)
    # How long a submission's Idempotency-Key is remembered: a retry after that is a new request.
    idempotency_ttl_hours: int = Field(default=24, ge=1, le=24 * 366)
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_tls: bool = True
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    # The From of outgoing mail; unset: smtp_user if it is an address, else zhidu@<smtp_host>.
    smtp_from: str | None = None
    # The application's address as people reach it, for links in mail (e.g. https://zhidu.example.cn).
    public_url: str | None = None
    log_level: LogLevel = "INFO"

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        return normalize_database_url(value)

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        name = value.strip()
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}: use an IANA name such as Asia/Shanghai or UTC"
            ) from None
        return name

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @model_validator(mode="before")
    @classmethod
    def _company_file_follows_policies_dir(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("company_file") in (None, "") and data.get("policies_dir"):
            return {**data, "company_file": Path(data["policies_dir"]) / "company.yaml"}
        return data

    @model_validator(mode="after")
    def _check_smtp(self) -> Settings:
        if (self.smtp_user or self.smtp_password) and not self.smtp_host:
            raise ValueError("ZHIDU_SMTP_USER / ZHIDU_SMTP_PASSWORD are set but ZHIDU_SMTP_HOST is not")
        return self

    @property
    def tz(self) -> ZoneInfo:
        """The company's time zone (dates without an offset are in this zone)."""
        return ZoneInfo(self.timezone)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read once. Tests construct `Settings(...)` directly instead."""
    return Settings()
