"""Idempotency-Keys expire after `ZHIDU_IDEMPOTENCY_TTL_HOURS`: an expired key is unknown (the
request that brings it again is a new one, whatever it holds), and the scheduled job
`ingest.idempotency_purge` deletes expired keys. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

pytest.register_assert_rewrite("tests.api_fixtures")
pytest_plugins = ["tests.api_fixtures"]

from service.ingest import jobs  # noqa: E402
from service.ingest import service as ingest  # noqa: E402
from service.ingest.models import IdempotencyKey  # noqa: E402
from service.scheduling.config import load_config  # noqa: E402
from service.scheduling.registry import is_registered  # noqa: E402
from service.settings import Settings  # noqa: E402
from tests.api_fixtures import World, assert_error_shape  # noqa: E402
from tests.ingest_helpers import AS_OF, payment  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TTL = timedelta(hours=24)


class Clock:
    """The app's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(world: World) -> Clock:
    moving = Clock(AS_OF)
    world.app.state.clock = moving
    return moving


def submit(
    world: World, body: object, key: str, *, principal: str = "admin"
) -> tuple[int, dict[str, str], Any]:
    response = world.client.post(
        "/api/v1/records/payment", json=body, headers={**world.headers(principal), "Idempotency-Key": key}
    )
    return response.status_code, dict(response.headers), response.json()


def keys(world: World) -> list[tuple[str, datetime]]:
    with world.session_factory() as session:
        return [
            (k.key, k.created_at) for k in session.scalars(select(IdempotencyKey).order_by(IdempotencyKey.id))
        ]


def test_a_key_is_replayed_until_it_expires_then_the_request_is_new(world: World, clock: Clock) -> None:
    body = payment("PMX1", "POX1")
    status, _, first = submit(world, body, "expiring-1")
    assert status == 200
    assert first["counts"]["created"] == 1

    clock.now = AS_OF + TTL - timedelta(seconds=1)  # still remembered
    status, headers, again = submit(world, body, "expiring-1")
    assert (status, headers.get("idempotency-replayed")) == (200, "true")
    assert again == first

    clock.now = AS_OF + TTL  # expired: a new request, stored again (unchanged) and evaluated now
    status, headers, fresh = submit(world, body, "expiring-1")
    assert status == 200
    assert "idempotency-replayed" not in headers
    assert fresh["submission_id"] != first["submission_id"]
    assert fresh["counts"]["unchanged"] == 1
    assert fresh["evaluation"]["as_of"] == "2026-04-02T00:00:00Z"
    # The key now stands for the new request: one row, created at the new time, replaying it.
    assert keys(world) == [("expiring-1", AS_OF + TTL)]
    clock.now = AS_OF + TTL + timedelta(hours=1)
    status, headers, replayed = submit(world, body, "expiring-1")
    assert (status, headers.get("idempotency-replayed"), replayed) == (200, "true", fresh)


def test_an_expired_key_may_come_with_another_request(world: World, clock: Clock) -> None:
    assert submit(world, payment("PMX2", "POX2"), "expiring-2")[0] == 200
    status, _, body = submit(world, payment("PMX3", "POX3"), "expiring-2")
    assert status == 409  # still remembered: another request is refused
    assert_error_shape(body, "idempotency_key_reused")

    clock.now = AS_OF + TTL + timedelta(minutes=5)
    status, _, body = submit(world, payment("PMX3", "POX3"), "expiring-2")
    assert status == 200
    assert body["records"][0]["record_id"] == "PMX3"
    assert keys(world) == [("expiring-2", AS_OF + TTL + timedelta(minutes=5))]


def test_the_ttl_is_a_setting(world: World, clock: Clock) -> None:
    world.app.state.settings = world.app.state.settings.model_copy(update={"idempotency_ttl_hours": 2})
    body = payment("PMX4", "POX4")
    first = submit(world, body, "short-lived")[2]
    clock.now = AS_OF + timedelta(hours=1, minutes=59)
    assert submit(world, body, "short-lived")[1].get("idempotency-replayed") == "true"
    clock.now = AS_OF + timedelta(hours=2)
    status, headers, again = submit(world, body, "short-lived")
    assert status == 200
    assert "idempotency-replayed" not in headers
    assert again["submission_id"] != first["submission_id"]


@pytest.mark.parametrize("hours", [0, -1, 24 * 367, "a day"])
def test_a_bad_ttl_fails_at_start_up_naming_the_setting(hours: object) -> None:
    with pytest.raises(ValidationError) as error:
        Settings(idempotency_ttl_hours=hours)
    assert "idempotency_ttl_hours" in str(error.value)


def test_the_ttl_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().idempotency_ttl_hours == 24
    monkeypatch.setenv("ZHIDU_IDEMPOTENCY_TTL_HOURS", "72")
    assert Settings().idempotency_ttl_hours == 72


def _add_key(session: Session, user_id: int, key: str, created_at: datetime) -> None:
    session.add(
        IdempotencyKey(
            user_id=user_id,
            key=key,
            request_hash="0" * 64,
            status_code=200,
            response={},
            created_at=created_at,
            submission_id=None,
        )
    )


def test_the_purge_job_deletes_expired_keys_only(
    world: World, db_session_factory: sessionmaker[Session]
) -> None:
    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    user_id = world.users["admin"].id
    with db_session_factory() as session:
        _add_key(session, user_id, "old", now - TTL - timedelta(hours=3))
        _add_key(session, user_id, "just-expired", now - TTL)
        _add_key(session, user_id, "fresh", now - TTL + timedelta(seconds=1))
        _add_key(session, user_id, "new", now)
        session.commit()
    assert is_registered("ingest.idempotency_purge")
    with time_machine.travel(now, tick=False):
        result = jobs.purge_idempotency_keys(
            db_session_factory, fire_time=now, job_id="ingest.idempotency_purge"
        )
    assert result == {"deleted": 2, "expired_before": (now - TTL).isoformat()}
    assert sorted(k for k, _ in keys(world)) == ["fresh", "new"]
    with time_machine.travel(now, tick=False):  # a retried run deletes nothing more
        again = jobs.purge_idempotency_keys(
            db_session_factory, fire_time=now, job_id="ingest.idempotency_purge"
        )
    assert again["deleted"] == 0
    with db_session_factory() as session:
        assert session.scalar(select(func.count()).select_from(IdempotencyKey)) == 2
        assert ingest.delete_expired_keys(session, now=now + timedelta(days=2), ttl=TTL) == 2


def test_the_purge_is_scheduled_hourly() -> None:
    config = load_config(ROOT / "policies" / "schedules.yaml", default_timezone="Asia/Shanghai")
    schedule = config.get("ingest.idempotency_purge")
    assert schedule is not None
    assert schedule.kind == "ingest.idempotency_purge"
    assert schedule.enabled
    assert jobs.register_scheduled_jobs() == ["ingest.idempotency_purge"]
