"""Access matrix entries of the report documents (see tests/access_matrix.py): everyone reads the
documents of the departments it sees; another department's scorecard or notice answers 404; the
violation report and the digest of a department user or a manager hold only its departments."""

from __future__ import annotations

import csv
import io

import httpx
import openpyxl

from tests.access_matrix import Access, Call, authenticated, expect, register
from tests.api_fixtures import DEPT_A, DEPT_B, World
from tests.ingest_helpers import violation_in

OF_A = expect(admin=200, supervisor=200, dept_a=200, dept_b=404, manager_a=200)
# violation_in's payments are paid in March 2026 (tests/ingest_helpers.py)
PERIOD = "2026-03"
SEES = {
    "admin": {DEPT_A, DEPT_B},
    "supervisor": {DEPT_A, DEPT_B},
    "dept_a": {DEPT_A},
    "dept_b": {DEPT_B},
    "manager_a": {DEPT_A},
}


def _violations_of_both(world: World, _principal: str) -> Call:
    violation_in(world, dept=DEPT_A)
    violation_in(world, dept=DEPT_B)
    return Call(params={"period": PERIOD, "format": "csv", "lang": "en"})


def _check_violations(_world: World, principal: str, response: httpx.Response) -> None:
    if response.status_code != 200:
        return
    assert response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    # every department the caller sees has a finding here; no other department appears
    codes = {row["Dept. code"] for row in rows}
    assert codes == SEES[principal], (principal, codes)


def _scorecard_of_a(world: World, _principal: str) -> Call:
    violation_in(world, dept=DEPT_A)
    return Call(path={"dept": DEPT_A}, params={"period": PERIOD, "format": "pdf"})


def _check_pdf(_world: World, _principal: str, response: httpx.Response) -> None:
    if response.status_code == 200:
        assert response.headers["content-type"] == "application/pdf"
        assert response.content.startswith(b"%PDF")
        assert "filename*=UTF-8''" in response.headers["content-disposition"]


def _notice_of_a(world: World, _principal: str) -> Call:
    # imported here: access_inspections imports the matrix, which imports this module
    from tests.access_inspections import notice_for

    return Call(path={"number": notice_for(world, dept=DEPT_A).number}, params={"format": "html"})


def _check_notice(_world: World, _principal: str, response: httpx.Response) -> None:
    if response.status_code == 200:
        assert response.headers["content-type"].startswith("text/html")
        number = response.request.url.path.rsplit("/", 1)[-1]
        assert number in response.text
        assert "整改通知书" in response.text


def _digest(world: World, _principal: str) -> Call:
    violation_in(world, dept=DEPT_A)
    return Call(params={"cadence": "monthly", "period": PERIOD, "format": "xlsx", "lang": "en"})


def _check_digest(world: World, principal: str, response: httpx.Response) -> None:
    if response.status_code != 200:
        return
    assert response.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    book = openpyxl.load_workbook(io.BytesIO(response.content), read_only=True)
    summary = [
        tuple(c for c in row if c is not None) for row in book[book.sheetnames[0]].iter_rows(values_only=True)
    ]
    text = " ".join(str(c) for row in summary for c in row)
    assert world.users[principal].display_name in text
    for dept in {DEPT_A, DEPT_B} - SEES[principal]:
        assert dept not in text, (principal, text)


register(
    "GET",
    "/api/v1/reports/violations",
    Access(expect=authenticated(), build=_violations_of_both, check=_check_violations),
)
register(
    "GET", "/api/v1/reports/scorecards/{dept}", Access(expect=OF_A, build=_scorecard_of_a, check=_check_pdf)
)
register(
    "GET", "/api/v1/reports/notices/{number}", Access(expect=OF_A, build=_notice_of_a, check=_check_notice)
)
register("GET", "/api/v1/reports/digest", Access(expect=authenticated(), build=_digest, check=_check_digest))
