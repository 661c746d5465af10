"""The report routes on the scenario of `tests/report_scenario.py`: every document in every format
and language with its media type and file name, what each role sees (a department only its own,
a manager its scope; another department's document answers 404), and 404/422 in the API's one
error shape. (Every route × every principal: tests/access_reports.py.)"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import openpyxl
import pypdf
import pytest

from tests.api_fixtures import World, assert_error_shape
from tests.report_scenario import Scenario, build

pytest_plugins = ["tests.api_fixtures"]

NOW = datetime(2026, 12, 15, 12, tzinfo=UTC)


@pytest.fixture
def scenario(world: World) -> Scenario:
    world.app.state.clock = lambda: NOW
    return build(world.session_factory, world.app.state.settings)


def get(world: World, principal: str, path: str, status: int = 200, **params: Any) -> Any:
    response = world.client.get(f"/api/v1/reports{path}", params=params, headers=world.headers(principal))
    assert response.status_code == status, response.text[:800]
    return response


def csv_rows(content: bytes) -> list[dict[str, str]]:
    assert content.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))


def test_every_document_in_every_format(world: World, scenario: Scenario) -> None:
    media = {
        "html": "text/html; charset=utf-8",
        "pdf": "application/pdf",
        "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "csv": "text/csv; charset=utf-8",
    }
    documents = [
        ("/violations", {"period": "2026-10"}, ("html", "pdf", "xlsx", "csv")),
        ("/scorecards/D01", {"period": "2026-10"}, ("html", "pdf", "xlsx", "csv")),
        (f"/notices/{scenario.d01_notice}", {}, ("html", "pdf")),
        ("/digest", {"cadence": "weekly", "period": "2026-W43"}, ("html", "pdf", "xlsx", "csv")),
    ]
    for path, params, formats in documents:
        for fmt in formats:
            for lang in ("zh", "en"):
                response = get(world, "supervisor", path, **params, format=fmt, lang=lang)
                assert response.headers["content-type"] == media[fmt], (path, fmt)
                disposition = response.headers["content-disposition"]
                assert disposition.startswith("inline;" if fmt in ("html", "pdf") else "attachment;")
                ascii_name = disposition.split('filename="')[1].split('"')[0]
                assert ascii_name.isascii()
                assert ascii_name.endswith(f".{fmt}")
                utf8_name = unquote(disposition.split("filename*=UTF-8''")[1])
                assert utf8_name.endswith(f".{fmt}")
                if lang == "zh":
                    assert any("\u4e00" <= c <= "\u9fff" for c in utf8_name), utf8_name
                if fmt == "pdf":
                    text = "".join(
                        p.extract_text() for p in pypdf.PdfReader(io.BytesIO(response.content)).pages
                    )
                    assert ("部门D01" if lang == "zh" else "Dept D01") in text
                elif fmt == "xlsx":
                    assert openpyxl.load_workbook(io.BytesIO(response.content), read_only=True).sheetnames
                elif fmt == "csv":
                    assert csv_rows(response.content)
    # the violation report's CSV holds every finding of October
    rows = csv_rows(get(world, "admin", "/violations", period="2026-10", format="csv", lang="en").content)
    assert sorted(r["Record id"] for r in rows) == ["B1", "B2", "B3"]
    # without lang: the caller's language (zh by default)
    html = get(world, "supervisor", f"/notices/{scenario.d01_notice}").text
    assert "整改通知书" in html
    assert scenario.d01_notice in html
    pdf = get(world, "supervisor", f"/notices/{scenario.d01_notice}", format="pdf").content
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages).replace("\n", "")
    assert scenario.d01_notice in text
    assert "报销" in text


def test_what_each_role_sees(world: World, scenario: Scenario) -> None:
    def report_depts(principal: str, **params: Any) -> set[str]:
        content = get(
            world, principal, "/violations", period="2026-10", format="csv", lang="en", **params
        ).content
        return {r["Dept. code"] for r in csv_rows(content)}

    assert report_depts("supervisor") == {"D01", "D02"}
    assert report_depts("dept_a") == {"D01"}  # restricted to its own department
    assert report_depts("dept_b") == {"D02"}
    assert report_depts("manager_a") == {"D01"}
    assert report_depts("supervisor", dept="D02") == {"D02"}
    assert report_depts("supervisor", severity="minor", rule="EXP-001") == {"D01", "D02"}
    assert report_depts("supervisor", severity="critical") == set()
    for principal, target in [
        ("dept_a", "/violations?dept=D02"),
        ("manager_a", "/violations?dept=D02"),
        ("dept_b", "/scorecards/D01"),
        ("manager_a", "/scorecards/D02"),
        ("dept_b", f"/notices/{scenario.d01_notice}"),
        ("manager_a", f"/notices/{scenario.d02_notice}"),
        ("dept_a", "/digest?dept=D02"),
        ("manager_a", "/digest?dept=D03"),
    ]:
        path, _, query = target.partition("?")
        params = dict([query.split("=")]) if query else {}
        if path == "/digest":
            params["cadence"] = "monthly"
        body = get(world, principal, path, 404, period="2026-10", **params).json()
        assert_error_shape(body, "not_found")
    # hidden and missing say the same
    hidden = get(world, "dept_b", "/scorecards/D01", 404, period="2026-10").json()
    missing = get(world, "supervisor", "/scorecards/D99", 404, period="2026-10").json()
    assert hidden["error"]["message"] == "department D01 not found"
    assert missing["error"]["message"] == "department D99 not found"
    # a manager's digest covers its scope; the supervisor's every department
    digest = get(world, "manager_a", "/digest", cadence="weekly", period="2026-W43", format="csv", lang="en")
    assert csv_rows(digest.content) == [
        {"Department": "Dept D01", "Previous score": "80.0", "Current score": "87.5", "Change": "7.5"}
    ]
    everyone = get(
        world, "supervisor", "/digest", cadence="weekly", period="2026-W43", format="csv", lang="en"
    )
    assert [(r["Department"], r["Current score"]) for r in csv_rows(everyone.content)] == [
        ("Dept D01", "87.5"),
        ("Dept D02", "75.0"),
        ("Dept D03", "100.0"),
    ]


def test_bad_requests_answer_422_or_404_in_the_error_shape(world: World, scenario: Scenario) -> None:
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        ("/violations", {"period": "2026-13"}, 422, "the month must be 01-12"),
        ("/violations", {"period": "2026-10", "format": "docx"}, 422, "format"),
        ("/violations", {"period": "2026-10", "lang": "fr"}, 422, "lang"),
        ("/violations", {"period": "2026-10", "severity": "fatal"}, 422, "severity"),
        ("/violations", {}, 422, "period"),
        ("/scorecards/D01", {"period": "2027-W53"}, 422, "W01-W52"),
        ("/scorecards/D03", {"period": "2026-09"}, 404, "no records in 2026-09"),
        ("/scorecards/D99", {"period": "2026-10"}, 404, "department D99 not found"),
        (f"/notices/{scenario.d01_notice}", {"format": "xlsx"}, 422, "html or pdf, not xlsx"),
        (f"/notices/{scenario.d01_notice}", {"format": "csv"}, 422, "html or pdf, not csv"),
        ("/notices/ZG-2099-01-0001", {}, 404, "rectification notice ZG-2099-01-0001 not found"),
        ("/digest", {"cadence": "weekly", "period": "2026-10"}, 422, "like 2026-W43"),
        ("/digest", {"cadence": "monthly", "period": "2026-W43"}, 422, "like 2026-10"),
        ("/digest", {"cadence": "daily"}, 422, "cadence"),
    ]
    for path, params, status, words in cases:
        body = get(world, "supervisor", path, status, **params).json()
        error = assert_error_shape(body)
        assert words in str(error), (path, params, error)
        assert error["message_zh"]
    scored = get(world, "supervisor", "/scorecards/D03", 404, period="2026-09").json()["error"]
    assert scored["code"] == "no_score"


def test_the_default_digest_period_is_the_last_complete_one(world: World, scenario: Scenario) -> None:
    # now: Tuesday 2026-12-15 → the week of 7-13 December, the month of November
    weekly = get(world, "supervisor", "/digest", format="csv")
    assert "weekly-2026-W50" in weekly.headers["content-disposition"]
    monthly = get(world, "supervisor", "/digest", cadence="monthly", format="html", lang="en")
    assert "monthly-2026-11" in monthly.headers["content-disposition"]
    assert scenario.d02_notice in monthly.text  # issued in November
