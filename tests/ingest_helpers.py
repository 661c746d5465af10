"""Helpers for ingestion and violation tests: record builders, submitting through the API or the
flow, and reading what was stored."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.evaluation.runtime import Runtime, runtime_for
from service.ingest import flows, service
from service.records.models import Record, Submission
from service.settings import Settings
from service.violations.models import Violation
from tests.api_fixtures import DEPT_A, World, unique

# Judging time of the scenarios: well after every record below (time limits have passed).
AS_OF = datetime(2026, 4, 1, tzinfo=UTC)


def claim(rid: str, *, dept: str = DEPT_A, invoice: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": rid,
        "dept": dept,
        "applicant": "张三",
        "category": "travel",
        "amount": "1280.00",
        "invoice_no": invoice or f"FP-{rid}",
        "invoice_count": 1,
        "submitted_at": "2026-03-01T10:00:00+08:00",
        "paid_at": "2026-03-20T10:00:00+08:00",
        **extra,
    }


def approval(
    aid: str, claim_id: str, *, step: str = "dept_head", decision: str = "approved", **extra: Any
) -> dict[str, Any]:
    return {
        "id": aid,
        "record_type": "expense_claim",
        "record_id": claim_id,
        "step": step,
        "approver": "王经理",
        "decision": decision,
        "decided_at": "2026-03-02T10:00:00+08:00",
        **extra,
    }


def payment(pid: str, po_id: str, *, dept: str = DEPT_A, **extra: Any) -> dict[str, Any]:
    return {
        "id": pid,
        "dept": dept,
        "po_id": po_id,
        "amount": "100.00",
        "paid_at": "2026-03-10T10:00:00+08:00",
        **extra,
    }


def receipt(
    gid: str, po_id: str, *, dept: str = DEPT_A, result: str = "accepted", **extra: Any
) -> dict[str, Any]:
    return {
        "id": gid,
        "dept": dept,
        "po_id": po_id,
        "received_at": "2026-03-08T10:00:00+08:00",
        "quantity": 5,
        "result": result,
        "user_dept_signed": True,
        "qc_signed": True,
        **extra,
    }


def runtime(world: World) -> Runtime:
    settings: Settings = world.app.state.settings
    return runtime_for(settings)


def submit_as_system(
    session_factory: sessionmaker[Session],
    settings: Settings,
    record_type: str,
    records: list[dict[str, Any]],
    *,
    now: datetime = AS_OF,
    user_id: int,
    actor: str = "system",
) -> dict[str, Any]:
    """Store and evaluate records through the flow (no HTTP): what the API does for a supervisor."""
    rt = runtime_for(settings)
    library = rt.library
    checked = service.check_json(library.model[record_type], records, tz=library.company.tz, dept=None)
    with session_factory() as session:
        result = flows.submit(
            session, runtime=rt, checked=checked, partial=False, user_id=user_id, actor=actor, now=now
        )
    return result.body


def violation_in(world: World, *, dept: str = DEPT_A, record_id: str | None = None) -> int:
    """The id of an open PUR-007 violation of a new payment of `dept` (no goods receipt)."""
    pid = record_id or unique("PM")
    body = submit_as_system(
        world.session_factory,
        world.app.state.settings,
        "payment",
        [payment(pid, f"PO-{pid}", dept=dept)],
        user_id=world.users["supervisor"].id,
    )
    opened = [v for v in body["violations"]["opened"] if v["rule"] == "PUR-007"]
    assert opened, body
    return int(opened[0]["id"])


def post(world: World, principal: str, record_type: str, body: Any, **params: Any) -> httpx.Response:
    return world.client.post(
        f"/api/v1/records/{record_type}", json=body, params=params or None, headers=world.headers(principal)
    )


def count(session: Session, model: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def counts(session: Session) -> tuple[int, int, int]:
    """(records, submissions, violations) rows."""
    return count(session, Record), count(session, Submission), count(session, Violation)


def open_violations(session: Session) -> set[tuple[str, str]]:
    """(rule, record id) of the open violations."""
    return {
        (r, i)
        for r, i in session.execute(
            select(Violation.rule_id, Violation.record_id).where(Violation.status == "open")
        )
    }


def status_of(session: Session, rule: str, record_id: str) -> str | None:
    return session.scalar(
        select(Violation.status).where(Violation.rule_id == rule, Violation.record_id == record_id)
    )
