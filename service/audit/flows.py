"""Use cases of the audit trail. Appending happens inside other domains' flows (through
`service.audit.service.append_event`, in their transaction); these read it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from service.audit import service
from service.audit.models import AuditEvent
from service.audit.schemas import ChainReport


def verify(session: Session) -> ChainReport:
    """Verify the whole chain (read only: nothing to commit)."""
    return service.verify_chain_report(session)


def browse(
    session: Session,
    *,
    actor: str | None = None,
    action: str | None = None,
    entity_type: str | None = None,
    entity_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[AuditEvent], int]:
    """One page of events, newest first, and the number matching."""
    return service.list_events(
        session,
        actor=actor,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
