"""The `zhidu` command line, end to end on a generated company."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from service.cli import app
from service.settings import get_settings
from service.synthetic import generate

runner = CliRunner()


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("ZHIDU_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("company")
    manifest = generate(folder, records=3000, seed=11)
    return folder, manifest.as_of


def test_evaluate_json_has_every_documented_key_and_matches_the_ground_truth(
    company: tuple[Path, str],
) -> None:
    folder, as_of = company
    result = runner.invoke(app, ["evaluate", str(folder), "--as-of", as_of, "--format", "json"])
    assert result.exit_code == 0, result.output
    findings = json.loads(result.stdout)
    keys = {
        "rule",
        "record_type",
        "record_id",
        "dept",
        "severity",
        "clauses",
        "responsible",
        "message_zh",
        "message_en",
    }
    assert findings
    assert all(keys <= set(f) for f in findings)
    truth = pd.read_csv(folder / "ground_truth.csv", dtype=str)
    assert {(f["rule"], f["record_id"]) for f in findings} == set(
        zip(truth["rule"], truth["record_id"], strict=True)
    )
    exp4 = next(f for f in findings if f["rule"] == "EXP-004")
    assert "5,000.00" in exp4["message_zh"]
    assert "CNY" in exp4["message_en"]


def test_the_streaming_engine_prints_the_same_findings(company: tuple[Path, str]) -> None:
    folder, as_of = company
    outputs = [
        runner.invoke(
            app, ["evaluate", str(folder), "--as-of", as_of, "--format", "csv", "--engine", engine]
        ).stdout
        for engine in ("batch", "stream")
    ]
    assert outputs[0] == outputs[1]
    assert outputs[0].startswith(
        "rule,record_type,record_id,dept,severity,clauses,responsible,message_zh,message_en"
    )


def test_bad_input_exits_2_and_lists_every_problem(tmp_path: Path) -> None:
    (tmp_path / "expense_claim.csv").write_text(
        "id,dept,applicant,category,amount,invoice_no,invoice_count,submitted_at,paid_at\n"
        "C1,FIN,张三,travel,12.345,FP1,1,2026-13-01,\n"
        "C2,FIN,李四,luxury,10,FP2,1,2026-01-01T09:00:00,\n",
        encoding="gb18030",
    )
    (tmp_path / "unknown_type.csv").write_text("id\n1\n", encoding="utf-8")
    result = runner.invoke(app, ["evaluate", str(tmp_path)])
    assert result.exit_code == 2
    text = result.stderr
    assert "4 problem(s)" in text
    assert "row 1: amount: '12.345' has more than 2 decimal places" in text
    assert "row 1: submitted_at: '2026-13-01'" in text
    assert "'luxury' is not one of" in text
    assert "unknown_type" in text


def test_a_bad_as_of_is_refused(company: tuple[Path, str]) -> None:
    result = runner.invoke(app, ["evaluate", str(company[0]), "--as-of", "yesterday"])
    assert result.exit_code == 2
    assert "not an ISO 8601 timestamp" in result.stderr


def test_params_file_changes_the_verdicts(company: tuple[Path, str], tmp_path: Path) -> None:
    folder, as_of = company
    params = tmp_path / "params.yaml"
    params.write_text("exp_division_leader_threshold: 1000000\n", encoding="utf-8")
    result = runner.invoke(
        app, ["evaluate", str(folder), "--as-of", as_of, "--format", "json", "--params", str(params)]
    )
    assert result.exit_code == 0, result.output
    assert not [f for f in json.loads(result.stdout) if f["rule"] == "EXP-004"]
    params.write_text("exp_division_leader_threshold: lots\n", encoding="utf-8")
    bad = runner.invoke(app, ["evaluate", str(folder), "--params", str(params)])
    assert bad.exit_code == 2
    assert "override exp_division_leader_threshold='lots'" in bad.stderr


def test_rules_test_runs_every_example_on_both_engines() -> None:
    result = runner.invoke(app, ["rules", "test"])
    assert result.exit_code == 0, result.output
    assert " 0 failed" in result.stdout
    assert "engines: batch, stream" in result.stdout


def test_policies_show_and_coverage() -> None:
    shown = runner.invoke(app, ["policies", "show", "m001.7.1.4"])
    assert shown.exit_code == 0
    assert "EXP-004" in shown.stdout
    assert "exp_division_leader_threshold" in shown.stdout
    coverage = runner.invoke(app, ["policies", "coverage", "--format", "json"])
    rows = json.loads(coverage.stdout)
    assert {r["status"] for r in rows} == {"enforced", "gap", "not_checkable"}
    assert {r["manual"] for r in rows} == {"m000", "m001", "m002", "m003", "m004"}
    missing = runner.invoke(app, ["policies", "show", "m009.1"])
    assert missing.exit_code == 2


def test_load_stores_once_and_reloading_is_a_no_op(company: tuple[Path, str]) -> None:
    folder, _ = company
    first = runner.invoke(app, ["load", str(folder)])
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, ["load", str(folder)])
    assert again.exit_code == 0, again.output
    line = next(row for row in again.stdout.splitlines() if "expense_claim" in row)
    assert line.split("│")[2].strip() == "0"  # nothing stored the second time


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--dir", str(tmp_path / "demo"), "--records", "3000"])
    assert result.exit_code == 0, result.output
    assert "0 missed, 0 false alarms" in result.stdout
