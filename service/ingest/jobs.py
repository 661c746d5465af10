"""Job kinds for the scheduler (`service.scheduling`): found by `discover_job_kinds`, which imports
this module; `register_scheduled_jobs()` registers them (again: a no-op).

- `ingest.idempotency_purge`: delete the Idempotency-Keys older than `ZHIDU_IDEMPOTENCY_TTL_HOURS`
  (they are unknown already, see `service.ingest.service.has_expired`; this keeps the table small).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from service.ingest import service
from service.scheduling.registry import register_job_kind
from service.settings import get_settings

SessionFactory = Callable[[], Session]


def purge_idempotency_keys(
    session_factory: SessionFactory, *, fire_time: datetime, job_id: str, **_params: Any
) -> dict[str, Any]:
    """Delete the keys expired now (the run's time, not the fire time: a late run catches up).
    Deleting is idempotent, so a retried run is harmless."""
    ttl = timedelta(hours=get_settings().idempotency_ttl_hours)
    now = datetime.now(UTC)
    with session_factory() as session:
        deleted = service.delete_expired_keys(session, now=now, ttl=ttl)
        session.commit()
    return {"deleted": deleted, "expired_before": service.key_cutoff(now, ttl).isoformat()}


def register_scheduled_jobs() -> list[str]:
    """Register this domain's job kinds (idempotent); their names."""
    kinds = {"ingest.idempotency_purge": purge_idempotency_keys}
    for name, func in kinds.items():
        register_job_kind(name, func)
    return sorted(kinds)


register_scheduled_jobs()
