"""File uploads (`POST /api/v1/uploads`): every supported format through the CLI's readers, the
record type from the form or the file name, unreadable files, size limit. SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook
from sqlalchemy.orm import Session, sessionmaker

pytest.register_assert_rewrite("tests.api_fixtures")
pytest_plugins = ["tests.api_fixtures"]

from service.records import service as records  # noqa: E402
from tests.api_fixtures import World, app_for, assert_error_shape, build_world  # noqa: E402
from tests.ingest_helpers import AS_OF, claim  # noqa: E402

COLUMNS = list(claim("X"))


@pytest.fixture(autouse=True)
def fixed_clock(world: World) -> None:
    world.app.state.clock = lambda: AS_OF


def upload(
    world: World,
    name: str,
    data: bytes,
    *,
    principal: str = "admin",
    record_type: str | None = None,
    **params: Any,
) -> Any:
    return world.client.post(
        "/api/v1/uploads",
        files={"file": (name, data, "application/octet-stream")},
        data={"record_type": record_type} if record_type else None,
        params=params or None,
        headers=world.headers(principal),
    )


def payload(world: World, record_id: str) -> dict[str, Any] | None:
    with world.session_factory() as session:
        record = records.current_record(session, record_type="expense_claim", record_id=record_id)
        return None if record is None else dict(record.payload)


def csv_text(rows: list[dict[str, Any]]) -> str:
    lines = [",".join(COLUMNS)] + [",".join(str(r.get(c) or "") for c in COLUMNS) for r in rows]
    return "\n".join(lines) + "\n"


def test_csv(world: World) -> None:
    response = upload(world, "expense_claim.csv", csv_text([claim("U1"), claim("U2")]).encode())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["source"] == "expense_claim.csv"
    assert [r["record_id"] for r in body["records"]] == ["U1", "U2"]
    assert body["evaluation"]["judged"] == {"expense_claim": 2}


def test_gbk_csv(world: World) -> None:
    rows = [claim("G1", applicant="欧阳娜娜"), claim("G2", applicant="司马光")]
    response = upload(world, "expense_claim.csv", csv_text(rows).encode("gbk"))
    assert response.status_code == 200, response.text
    assert (payload(world, "G1") or {})["applicant"] == "欧阳娜娜"
    assert (payload(world, "G2") or {})["applicant"] == "司马光"


def test_xlsx_keeps_formulas_as_text(world: World) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(COLUMNS)
    sheet.append([claim("X1")[c] for c in COLUMNS])
    row = claim("X2")
    row["applicant"] = '=HYPERLINK("http://evil.example","click")'
    sheet.append([row[c] for c in COLUMNS])
    buffer = io.BytesIO()
    book.save(buffer)
    response = upload(world, "claims.xlsx", buffer.getvalue(), record_type="expense_claim")
    assert response.status_code == 200, response.text
    assert (payload(world, "X2") or {})["applicant"] == row["applicant"]


def test_json_and_jsonl(world: World) -> None:
    as_json = json.dumps([claim("J1"), claim("J2")], ensure_ascii=False).encode()
    assert upload(world, "expense_claim.json", as_json).status_code == 200
    as_jsonl = "\n".join(json.dumps(claim(f"L{i}"), ensure_ascii=False) for i in range(3)).encode()
    response = upload(world, "expense_claim.jsonl", as_jsonl)
    assert response.status_code == 200, response.text
    assert response.json()["counts"]["created"] == 3


def test_parquet(world: World) -> None:
    frame = pd.DataFrame([claim("Q1"), claim("Q2", invoice_count=3)])
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    response = upload(world, "expense_claim.parquet", buffer.getvalue())
    assert response.status_code == 200, response.text
    assert (payload(world, "Q2") or {})["invoice_count"] == 3


def test_rejected_rows_of_a_file_name_their_rows(world: World) -> None:
    text = csv_text([claim("R1"), claim("R2", amount="abc"), claim("R3")])
    response = upload(world, "expense_claim.csv", text.encode())
    assert response.status_code == 422
    details = assert_error_shape(response.json(), "rejected_rows")["details"]
    assert [(d["row"], d["record_id"], d["field"]) for d in details] == [(2, "R2", "amount")]
    partial = upload(world, "expense_claim.csv", text.encode(), partial="true")
    assert partial.status_code == 200
    assert partial.json()["counts"]["created"] == 2


def test_the_form_field_names_the_type(world: World) -> None:
    assert upload(world, "export-2026-03.csv", csv_text([claim("N1")]).encode()).status_code == 422
    response = upload(
        world, "export-2026-03.csv", csv_text([claim("N1")]).encode(), record_type="expense_claim"
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("expense_claim.txt", b"id\nX\n", "unsupported file type"),
        ("expense_claim.xlsx", b"not a zip", "not a valid .xlsx"),
        ("expense_claim.json", b'{"records": [1, 2', "invalid JSON"),
        ("expense_claim.csv", b"", "empty"),
        ("expense_claim.parquet", b"PAR1garbage", "not a valid parquet"),
    ],
)
def test_an_unreadable_file_is_422(world: World, name: str, data: bytes, reason: str) -> None:
    response = upload(world, name, data, partial="true")
    assert response.status_code == 422
    details = assert_error_shape(response.json(), "rejected_rows")["details"]
    assert any(reason in d["message"] for d in details), details
    assert all(d["message_zh"] for d in details)


def test_an_upload_over_the_limit_is_413(db_url: str, db_session_factory: sessionmaker[Session]) -> None:
    limit = 4096
    app = app_for(db_url, db_session_factory, max_upload_bytes=limit)
    client = TestClient(app, raise_server_exceptions=False)
    world = build_world(app, client, db_session_factory)
    data = csv_text([claim(f"B{i}") for i in range(100)]).encode()
    assert len(data) > limit
    response = client.post(
        "/api/v1/uploads",
        files={"file": ("expense_claim.csv", data, "text/csv")},
        headers=world.headers("admin"),
    )
    assert response.status_code == 413
    assert_error_shape(response.json(), "payload_too_large")
    assert payload(world, "B0") is None
