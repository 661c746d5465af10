"""Shapes of scheduling data: run statuses and triggers, and what the API returns."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class RunStatus(StrEnum):
    STARTED = "started"  # claimed in the ledger; running (or its process died: see abandoned)
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the job raised; not retried automatically
    ABANDONED = "abandoned"  # its process stopped heartbeating and no retry is left
    MISSED = "missed"  # later than the schedule's misfire grace when it could have run: not run


class RunTrigger(StrEnum):
    SCHEDULE = "schedule"
    MANUAL = "manual"


class JobRunRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 17,
                    "job_id": "inspection.monthly",
                    "kind": "inspection.monthly",
                    "trigger": "schedule",
                    "fire_time": "2026-10-31T18:00:00Z",
                    "status": "succeeded",
                    "attempt": 1,
                    "runner": "zhidu-app-1:4242",
                    "requested_by": None,
                    "params": {},
                    "started_at": "2026-10-31T18:00:00.012Z",
                    "heartbeat_at": "2026-10-31T18:00:10.020Z",
                    "finished_at": "2026-10-31T18:00:21.530Z",
                    "result": {"records_checked": 120431, "findings": 87},
                    "error": None,
                }
            ]
        },
    )

    id: int
    job_id: str
    kind: str
    trigger: RunTrigger
    fire_time: datetime = Field(description="The scheduled time; for a manual run, when it was requested.")
    status: RunStatus
    attempt: int = Field(description="1, or more when a run abandoned by a dead process was retried.")
    runner: str = Field(description="host:pid of the process that ran it.")
    requested_by: str | None
    params: dict[str, Any]
    started_at: datetime
    heartbeat_at: datetime
    finished_at: datetime | None
    result: dict[str, Any] | None
    error: str | None


class LastRunRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    fire_time: datetime
    status: RunStatus
    trigger: RunTrigger


class ScheduleRead(BaseModel):
    job_id: str
    kind: str
    kind_registered: bool = Field(
        description="False: no code for this kind is installed; it is not scheduled."
    )
    cron: dict[str, str] = Field(description="APScheduler cron fields.")
    timezone: str
    misfire_grace_seconds: int
    enabled: bool
    params: dict[str, Any]
    description_zh: str | None
    description_en: str | None
    next_fire_time: datetime | None = Field(
        description="From the persisted job store (what the leader will run next); null if not scheduled."
    )
    last_run: LastRunRead | None


class LeaderRead(BaseModel):
    holder: str = Field(description="host:pid of the leading process.")
    mechanism: str = Field(description="`advisory` (PostgreSQL advisory lock) or `lease` (lease row).")
    acquired_at: datetime
    renewed_at: datetime
    expires_at: datetime
    active: bool = Field(
        description="advisory: a session holds the lock now; lease: the lease has not expired."
    )


class SchedulesRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "source": "policies/schedules.yaml",
                    "leader": {
                        "holder": "zhidu-app-1:4242",
                        "mechanism": "advisory",
                        "acquired_at": "2026-10-01T00:00:03Z",
                        "renewed_at": "2026-10-31T17:59:58Z",
                        "expires_at": "2026-10-31T18:00:28Z",
                        "active": True,
                    },
                    "schedules": [
                        {
                            "job_id": "inspection.monthly",
                            "kind": "inspection.monthly",
                            "kind_registered": True,
                            "cron": {"day": "1", "hour": "2", "minute": "0"},
                            "timezone": "Asia/Shanghai",
                            "misfire_grace_seconds": 21600,
                            "enabled": True,
                            "params": {},
                            "description_zh": "月度检查",
                            "description_en": "Monthly inspection",
                            "next_fire_time": "2026-11-30T18:00:00Z",
                            "last_run": None,
                        }
                    ],
                }
            ]
        }
    )

    source: str
    leader: LeaderRead | None
    schedules: list[ScheduleRead]
