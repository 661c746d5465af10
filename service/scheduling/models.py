"""Tables: `job_runs` (the run ledger), `scheduler_leases` (who leads the scheduler) and
`apscheduler_jobs` (APScheduler's persisted job store, declared here so migrations own it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    Unicode,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base
from service.db.types import BigIntPK, JSONDocument, UTCDateTime

RUN_STATUSES = ("started", "succeeded", "failed", "abandoned", "missed")
RUN_TRIGGERS = ("schedule", "manual")


class JobRun(Base):
    """One run of a job: a scheduled fire time, or an on-demand request.

    The row is inserted, in a transaction of its own, BEFORE the job runs. The unique key
    (job_id, fire_time, trigger) lets exactly one process insert it: whoever gets a unique
    violation knows someone else has run, or is running, that fire time and skips it.
    """

    __tablename__ = "job_runs"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    job_id: Mapped[str] = mapped_column(String(128))  # the schedule's id (manual runs: the target)
    kind: Mapped[str] = mapped_column(String(64))  # the registered job kind that ran
    trigger: Mapped[str] = mapped_column(String(16))  # schedule | manual
    fire_time: Mapped[datetime] = mapped_column(UTCDateTime)  # scheduled time; manual: requested time
    status: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer)  # 1, or 2.. when an abandoned run was retried
    runner: Mapped[str] = mapped_column(String(200))  # host:pid of the process running it
    requested_by: Mapped[str | None] = mapped_column(String(128))  # manual runs: the username
    params: Mapped[dict[str, Any]] = mapped_column(JSONDocument)  # keyword arguments of the job
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)  # renewed while the job runs
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("job_id", "fire_time", "trigger"),
        CheckConstraint(
            "status IN ('started', 'succeeded', 'failed', 'abandoned', 'missed')", name="status_known"
        ),
        CheckConstraint("trigger IN ('schedule', 'manual')", name="trigger_known"),
        CheckConstraint("attempt >= 1", name="attempt_positive"),
        Index(None, "fire_time"),
        Index("ix_job_runs_status_heartbeat_at", "status", "heartbeat_at"),
    )

    def __repr__(self) -> str:
        return (
            f"JobRun(id={self.id!r}, job_id={self.job_id!r}, fire_time={self.fire_time!r}, "
            f"trigger={self.trigger!r}, status={self.status!r})"
        )


class SchedulerLease(Base):
    """Who leads the scheduler. With `lease` leadership (SQLite) the row IS the lock: a holder
    renews `expires_at`, anyone may take an expired lease. With the PostgreSQL advisory lock the
    lock decides and the row only shows who holds it."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    mechanism: Mapped[str] = mapped_column(String(16))  # lease | advisory
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime)
    renewed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"SchedulerLease(name={self.name!r}, holder={self.holder!r}, expires_at={self.expires_at!r})"


# APScheduler 3's SQLAlchemyJobStore table, column for column (apscheduler/jobstores/sqlalchemy.py).
# The job store would create it on start; creating it in the migration instead keeps the schema
# under Alembic (and the model/migration agreement test) and lets the store find it existing.
apscheduler_jobs = Table(
    "apscheduler_jobs",
    Base.metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
)
