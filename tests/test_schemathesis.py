"""schemathesis against the running app, in-process (ASGI), authenticated as a supervisor: for every
operation of the OpenAPI document, generated requests (valid and invalid) never get a 5xx, and every
response conforms to the document (status code, content type, headers, body schema).

Bounded: at most MAX_EXAMPLES generated requests per operation. On a database of its own (SQLite, and
PostgreSQL when configured), seeded with records and violations so that ids in paths sometimes exist.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.accounts import flows as account_flows
from service.api import create_app
from service.db.migrate import upgrade
from service.settings import Settings
from tests.conftest import _backends, fresh_database
from tests.ingest_helpers import AS_OF, approval, claim, payment, submit_as_system

MAX_EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
TOKEN: dict[str, str] = {}


@pytest.fixture(scope="module", params=_backends())
def api_schema(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    backend: str = request.param
    folder: Path = tmp_path_factory.mktemp(f"schemathesis-{backend}")
    with fresh_database(backend, folder) as url:
        upgrade(url)
        app = create_app(Settings(database_url=url))
        app.state.clock = lambda: AS_OF
        factory = app.state.session_factory
        with factory() as session:
            user = account_flows.create_user(session, username="fuzz", role="supervisor", actor="system")
            issued = account_flows.issue_token(session, user_id=user.id, name="fuzz", actor="system")
        assert issued is not None
        TOKEN["Authorization"] = f"Bearer {issued[1]}"
        settings_ = app.state.settings
        submit_as_system(
            factory, settings_, "expense_claim", [claim(f"C{i}") for i in range(5)], user_id=user.id
        )
        submit_as_system(factory, settings_, "approval", [approval("A1", "C1")], user_id=user.id)
        submit_as_system(factory, settings_, "payment", [payment("PM1", "PO1")], user_id=user.id)
        try:
            yield schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
        finally:
            app.state.engine.dispose()


MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]


def test_api_conforms_to_its_schema(api_schema: Any) -> None:
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 17
    for operation in operations:
        for mode in MODES:
            strategy = operation.as_strategy(generation_mode=mode)

            @given(case=strategy)
            @settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                derandomize=True,
                database=None,
                phases=[Phase.explicit, Phase.generate],
            )
            def run(case: Any) -> None:
                case.call_and_validate(headers={**(case.headers or {}), **TOKEN}, checks=CHECKS)

            try:
                run()
            except Unsatisfiable:  # nothing to make invalid (an operation without any input)
                continue
            except BaseException as exc:  # schemathesis raises a BaseExceptionGroup; report every operation
                failures.append(f"{operation.label} ({mode.value}): {exc}"[:3000])
    assert not failures, "\n\n".join(failures)
