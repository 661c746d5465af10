"""The policy library loads, and bad policy files get every error with file, line and policy."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rules.library import load_library
from rules.problems import InputError
from tests.helpers import POLICIES, policy_library

REQUIRED_RULES = [
    "EXP-001",
    "EXP-002",
    "EXP-003",
    "EXP-004",
    "EXP-005",
    "EXP-006",
    "EXP-007",
    "EXP-008",
    "EXP-009",
    "CON-001",
    "CON-002",
    "CON-003",
    "CON-004",
    "PUR-001",
    "PUR-002",
    "PUR-003",
    "PUR-004",
    "PUR-005",
    "PUR-006",
    "PUR-007",
    "PUR-008",
    "PUR-009",
    "INV-001",
    "INV-002",
    "CS-001",
    "CS-002",
    "CS-003",
    "HR-001",
    "HR-002",
    "HR-003",
    "HR-004",
    "FIN-001",
]


def test_the_library_loads_with_every_required_rule() -> None:
    lib = policy_library()
    assert {r.id for r in lib.rules} >= set(REQUIRED_RULES)
    assert set(lib.manuals) == {"m000", "m001", "m002", "m003", "m004"}
    for rule in lib.rules:
        assert rule.clauses
        assert all(c in lib.clauses for c in rule.clauses)
        assert rule.message.zh
        assert rule.message.en
        assert any(e.expect == "pass" for e in rule.examples)
        assert any(e.expect == "fail" for e in rule.examples)


def test_every_clause_has_both_languages_and_a_reason_when_not_checkable() -> None:
    for clause in policy_library().clauses.values():
        assert clause.text.zh.strip()
        assert clause.text.en.strip()
        if not clause.checkable:
            assert clause.why_not_checkable is not None


def test_penalty_ladder_grades_by_repetition() -> None:
    ladder = policy_library().penalties
    assert ladder.step_for("minor", 1).kind == "warning"
    assert ladder.step_for("major", 2).kind == "fine"
    assert ladder.step_for("major", 9).kind == "demotion"  # the last step repeats


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(POLICIES, target)
    return target


def problems_of(root: Path, **kwargs: object) -> list[str]:
    with pytest.raises(InputError) as info:
        load_library(root, **kwargs)  # type: ignore[arg-type]
    return [str(p) for p in info.value.problems]


def test_every_error_of_a_rule_file_is_reported_with_line_and_rule(policies: Path) -> None:
    (policies / "rules" / "broken.yaml").write_text(
        """rules:
  - id: ZZ-001
    title: {zh: 坏规则, en: Broken}
    clauses: [m001.9.9.9]
    record_type: expense_claim
    severity: major
    responsible: nobody
    rectify_days: 5
    require: {compare: {field: amout, op: gt, value: {param: nope}}}
    message: {zh: "{id} {missing_field}", en: "{id}"}
    examples: {pass: [{record: {}}], fail: [{record: {}}]}
  - id: bad id
    title: {zh: x, en: x}
""",
        encoding="utf-8",
    )
    found = problems_of(policies)
    text = "\n".join(found)
    assert "clause m001.9.9.9 does not exist" in text
    assert "responsible must be a field of expense_claim" in text
    assert "expense_claim has no field 'amout'" in text
    assert "{missing_field} is not a field" in text
    assert "id 'bad id' must look like EXP-001" in text
    assert "missing required key 'record_type'" in text
    assert all("broken.yaml" in line for line in found)
    assert any("line 9, ZZ-001" in line and "amout" in line for line in found)
    assert any("line 12" in line for line in found)


def test_yaml_syntax_error_names_the_line(policies: Path) -> None:
    (policies / "rules" / "syntax.yaml").write_text(
        "rules:\n  - id: X\n    title: [unclosed\n", encoding="utf-8"
    )
    found = problems_of(policies)
    assert any("syntax.yaml" in p and "YAML syntax error" in p and "line" in p for p in found)


def test_bad_overrides_and_parameters_are_all_reported(policies: Path) -> None:
    company = policies / "company.yaml"
    company.write_text(
        company.read_text(encoding="utf-8").replace(
            "overrides: {}",
            "overrides: {exp_division_leader_threshold: lots, no_such_param: 3, cs_resolve_days: -2}",
        ),
        encoding="utf-8",
    )
    found = "\n".join(problems_of(policies))
    assert "override exp_division_leader_threshold='lots'" in found
    assert "override of unknown parameter 'no_such_param'" in found
    assert "override cs_resolve_days=-2" in found


def test_params_file_overrides_and_changes_the_version(policies: Path, tmp_path: Path) -> None:
    base = load_library(policies)
    params = tmp_path / "params.yaml"
    params.write_text("exp_division_leader_threshold: 8000\n", encoding="utf-8")
    changed = load_library(policies, params_file=params)
    assert str(changed.parameters["exp_division_leader_threshold"].value) == "8000"
    assert changed.version != base.version


def test_company_may_apply_only_some_manuals(policies: Path) -> None:
    company = policies / "company.yaml"
    company.write_text(
        company.read_text(encoding="utf-8").replace("[m000, m001, m002, m003, m004]", "[m001]"),
        encoding="utf-8",
    )
    lib = load_library(policies)
    assert lib.rules
    assert all(any(lib.clauses[c].manual == "m001" for c in r.clauses) for r in lib.rules)
    assert len(lib.rules) < len(lib.all_rules)


def test_manual_problems_are_reported(policies: Path) -> None:
    path = policies / "manuals" / "m002.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("category: business", "category: bizness", 1),
        encoding="utf-8",
    )
    found = "\n".join(problems_of(policies))
    assert "m002.yaml" in found
    assert "category must be one of" in found
