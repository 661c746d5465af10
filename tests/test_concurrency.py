"""Two clients submitting related records at the same time end with the same violations as when
they submit one after the other (store-and-evaluate is serialised, each evaluation sees what was
committed before). On a real database (a fresh SQLite file, or a fresh PostgreSQL schema), with
connections of their own: the test transaction of the other tests cannot show a race."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from service.accounts import flows as account_flows
from service.api import create_app
from service.db.migrate import upgrade
from service.settings import Settings
from service.violations.models import Violation
from tests.conftest import fresh_database
from tests.ingest_helpers import AS_OF, approval, claim, payment, receipt

BATCHES = 6
PER_BATCH = 12

Batch = tuple[str, list[dict[str, Any]]]


def streams() -> tuple[list[Batch], list[Batch]]:
    """Client A submits claims and payments; client B, at the same time, the approvals of those
    claims, claims reusing their invoices, and the goods receipts of those payments."""
    a: list[Batch] = []
    b: list[Batch] = []
    for i in range(BATCHES):
        ids = [f"C{i:02d}{k:02d}" for k in range(PER_BATCH)]
        a.append(("expense_claim", [claim(c, invoice=f"FP-{c}") for c in ids]))
        a.append(("payment", [payment(f"PM{i:02d}{k}", f"PO{i:02d}{k}") for k in range(3)]))
        b.append(("approval", [approval(f"A{c}", c) for c in ids[::2]]))
        b.append(
            (
                "expense_claim",
                [
                    claim(f"D{c}", invoice=f"FP-{c}", submitted_at="2026-03-03T10:00:00+08:00")
                    for c in ids[::3]
                ],
            )
        )
        b.append(("goods_receipt", [receipt(f"GR{i:02d}{k}", f"PO{i:02d}{k}") for k in range(0, 3, 2)]))
    return a, b


@contextmanager
def service_on(backend: str, folder: Path) -> Iterator[tuple[Any, dict[str, str]]]:
    """A migrated database of its own, the app on it, and a supervisor's token."""
    folder.mkdir(parents=True, exist_ok=True)
    with fresh_database(backend, folder) as url:
        upgrade(url)
        app = create_app(Settings(database_url=url))
        app.state.clock = lambda: AS_OF
        with app.state.session_factory() as session:
            user = account_flows.create_user(session, username="sync", role="supervisor", actor="system")
            issued = account_flows.issue_token(session, user_id=user.id, name="sync", actor="system")
        assert issued is not None
        try:
            yield app, {"Authorization": f"Bearer {issued[1]}"}
        finally:
            app.state.engine.dispose()


def send(client: TestClient, headers: dict[str, str], batches: list[Batch], errors: list[str]) -> None:
    for record_type, records in batches:
        response = client.post(f"/api/v1/records/{record_type}", json=records, headers=headers)
        if response.status_code != 200:
            errors.append(f"{record_type}: {response.status_code} {response.text[:300]}")


def violations(app: Any) -> set[tuple[str, str, str]]:
    with app.state.session_factory() as session:
        rows = session.query(Violation.rule_id, Violation.record_id, Violation.status).all()
    return {(r, i, s) for r, i, s in rows}


def still_open(found: set[tuple[str, str, str]]) -> set[tuple[str, str]]:
    """The violations that stand. (A closed one is history: whether a violation was opened and
    closed again, or never opened, depends on the order the records came in.)"""
    return {(r, i) for r, i, s in found if s == "open"}


def test_concurrent_related_submissions_end_as_sequential_ones(db_url: str, tmp_path: Path) -> None:
    backend = make_url(db_url).get_backend_name()
    a, b = streams()
    with service_on(backend, tmp_path / "sequential") as (app, headers):
        errors: list[str] = []
        with TestClient(app) as client:
            send(client, headers, a, errors)
            send(client, headers, b, errors)
        assert errors == []
        expected = violations(app)
    with service_on(backend, tmp_path / "concurrent") as (app, headers):
        errors = []
        start = threading.Barrier(2)

        def run(batches: list[Batch], instance: Any) -> None:
            with TestClient(instance) as client:
                start.wait()
                send(client, headers, batches, errors)

        # Two instances of the app (as two processes would be: engines and in-process queues of
        # their own), so only the database's lock keeps their submissions apart.
        second = create_app(app.state.settings)
        second.state.clock = app.state.clock

        threads = [threading.Thread(target=run, args=pair) for pair in ((a, app), (b, second))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        second.state.engine.dispose()
        assert errors == []
        got = violations(app)
    assert still_open(got) == still_open(expected)
    assert len(still_open(expected)) > 50
    rules = {r for r, _, s in expected if s == "open"}
    assert {"EXP-002", "EXP-009", "PUR-007"} <= rules
    closed = {r for r, _, s in expected if s == "closed"}
    assert {"EXP-002", "PUR-007"} <= closed  # later records closed violations of earlier ones
