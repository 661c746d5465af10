"""`zhidu report violations|scorecard|notice|digest` on the scenario of `tests/report_scenario.py`:
the files written (and parsed back), the default file name, and bad input exiting with code 2
and a specific message in en and zh."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pypdf
import pytest
from typer.testing import CliRunner

from service.db.base import engine_for, session_factory
from service.db.migrate import upgrade
from service.settings import Settings, get_settings
from tests.report_scenario import Scenario, build


@pytest.fixture
def cli_env(empty_db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("ZHIDU_DATABASE_URL", empty_db_url)
    get_settings.cache_clear()
    yield empty_db_url
    get_settings.cache_clear()


@pytest.fixture
def scenario(cli_env: str) -> Iterator[Scenario]:
    upgrade(cli_env)
    engine = engine_for(cli_env)
    try:
        yield build(session_factory(engine), Settings(database_url=cli_env))
    finally:
        engine.dispose()


def run(*args: str) -> tuple[int, str]:
    from service.cli import app

    result = CliRunner().invoke(app, ["report", *args])
    return result.exit_code, result.output


def test_the_report_commands_write_every_document(
    scenario: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "reports" / "october.csv"
    code, output = run(
        "violations", "--period", "2026-10", "--format", "csv", "--lang", "en", "--out", str(target)
    )
    assert code == 0, output
    assert str(target) in output
    raw = target.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert sorted(r["Record id"] for r in rows) == ["B1", "B2", "B3"]
    code, output = run(
        "violations",
        "--period",
        "2026-10",
        "--dept",
        "D02",
        "--format",
        "csv",
        "--lang",
        "en",
        "--out",
        str(target),
    )
    assert code == 0, output
    assert [r["Record id"] for r in csv.DictReader(io.StringIO(target.read_text(encoding="utf-8-sig")))] == [
        "B3"
    ]

    card = tmp_path / "card.xlsx"
    code, output = run(
        "scorecard", "--dept", "D01", "--period", "2026-10", "--format", "xlsx", "--out", str(card)
    )
    assert code == 0, output
    book = openpyxl.load_workbook(card, read_only=True)
    cells = [c for sheet in book.worksheets for row in sheet.iter_rows(values_only=True) for c in row]
    assert 84.6 in cells  # the inspection's score of D01 for October

    letter = tmp_path / "notice.pdf"
    code, output = run("notice", scenario.d01_notice, "--format", "pdf", "--out", str(letter))
    assert code == 0, output
    text = "".join(p.extract_text() for p in pypdf.PdfReader(letter).pages)
    assert scenario.d01_notice in text

    monkeypatch.chdir(tmp_path)
    code, output = run(
        "digest", "--dept", "D01", "--dept", "D02", "--cadence", "weekly", "--period", "2026-W43"
    )
    assert code == 0, output
    written = tmp_path / "digest-weekly-2026-W43.html"
    assert written.exists()
    html = written.read_text(encoding="utf-8")
    assert "87.5" in html
    assert "75.0" in html


BAD_INPUT = [
    (("violations", "--period", "2026-13"), "the month must be 01-12"),
    (("violations", "--period", "2026-10", "--severity", "fatal"), "unknown severity fatal"),
    (("scorecard", "--dept", "D99", "--period", "2026-10"), "no department D99"),
    (("scorecard", "--dept", "D03", "--period", "2026-09"), "no records in 2026-09"),
    (("notice", "ZG-2099-01-0001"), "no rectification notice ZG-2099-01-0001"),
    (("notice", "ZG-2026-11-0001", "--format", "xlsx"), "html or pdf, not xlsx"),
    (("digest", "--dept", "D01", "--cadence", "monthly", "--period", "2026-W43"), "like 2026-10"),
]


def test_bad_input_exits_with_code_2(scenario: Scenario) -> None:
    for args, words in BAD_INPUT:
        code, output = run(*args)
        assert code == 2, (args, output)
        assert words in " ".join(output.split()), (args, output)


def test_a_bad_format_is_refused_by_the_parser(cli_env: str) -> None:
    code, output = run("violations", "--period", "2026-10", "--format", "docx")
    assert code == 2
    assert "docx" in output
