"""Data-quality checks (`checks`): the suites load and report bad files precisely; the checks run
with great-expectations on a generated company, find injected problems with their exact record
ids, turn verdicts on unverifiable records into data-quality findings, keep concurrent runs
apart, print nothing, and `import checks` does not import great_expectations."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from checks.runner import CheckRun, run_checks
from checks.suites import REGISTRY, Suites, ValuesOf, load_suite_files, load_suites, suites_for_library
from checks.verdicts import UnverifiableVerdict, fields_read, split_verdicts
from rules.engine.encode import timestamp_ms
from rules.engine.verdict import Verdict
from rules.library import Library
from rules.problems import InputError, Problem, Problems
from rules.readers import read_data_dir
from service.evaluation.service import encode_all, evaluate_encoded
from service.synthetic import generate
from tests.helpers import POLICIES, ROOT, policy_library

# The one expectation a generated company fails by design: duplicated invoice numbers are what
# rule EXP-009 judges (see policies/checks/README.md).
INVOICE_UNIQUE = "DQ-EXP-014"


@dataclass(frozen=True)
class Company:
    folder: Path
    library: Library
    suites: Suites
    frames: dict[str, pd.DataFrame]
    as_of: pd.Timestamp


def suites() -> Suites:
    return suites_for_library(policy_library())


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> Company:
    folder = tmp_path_factory.mktemp("dq-company")
    manifest = generate(folder, records=3000, seed=21)
    lib = policy_library()
    frames = read_data_dir(folder, lib.model, lib.company.tz).frames
    return Company(folder, lib, suites(), frames, pd.Timestamp(manifest.as_of))


def run(c: Company, frames: dict[str, pd.DataFrame] | None = None) -> CheckRun:
    return run_checks(c.suites, frames or c.frames, as_of=c.as_of, tz=c.library.company.tz)


def copy_frames(c: Company) -> dict[str, pd.DataFrame]:
    return {k: v.copy() for k, v in c.frames.items()}


def failing_ids(result: CheckRun, expectation_id: str) -> set[str]:
    return result.outcome(expectation_id).record_ids


def verdicts_of(c: Company, frames: dict[str, pd.DataFrame]) -> list[Verdict]:
    encoded = encode_all(c.library, frames)
    return evaluate_encoded(c.library, encoded, as_of_ms=timestamp_ms(c.as_of), engine="batch")


# --- the suites ------------------------------------------------------------------------------------


def test_every_record_type_has_a_suite_that_loads() -> None:
    s = suites()
    lib = policy_library()
    assert set(s.by_type) == set(lib.model.names)
    ids = [e.id for e in s.expectations]
    assert len(ids) == len(set(ids))
    for suite in s:
        assert Path(suite.file).stem == suite.record_type
        assert suite.expectations, suite.record_type
        assert all(e.record_type == suite.record_type for e in suite.expectations)


def test_suites_cover_completeness_values_ranges_uniqueness_and_references() -> None:
    s = suites()
    model = policy_library().model

    def kinds(record_type: str, etype: str) -> list[dict[str, object]]:
        return [dict(e.kwargs) for e in s[record_type].expectations if e.type == etype]

    for rt in model.types.values():
        not_null = {k["column"] for k in kinds(rt.name, "expect_column_values_to_not_be_null")}
        assert set(rt.required_fields) <= not_null, rt.name
        assert {"column": "id"} in kinds(rt.name, "expect_column_values_to_be_unique"), rt.name
        in_set = {k["column"]: k["value_set"] for k in kinds(rt.name, "expect_column_values_to_be_in_set")}
        for f in rt.fields.values():
            if f.values:
                assert in_set[f.name] == list(f.values), (rt.name, f.name)
            if f.type.is_number and f.min is not None:
                bounded = {k["column"] for k in kinds(rt.name, "expect_column_values_to_be_between")}
                assert f.name in bounded, (rt.name, f.name)
        if rt.has_dept and rt.name != "department":
            assert in_set["dept"] == ValuesOf("department", "id"), rt.name
    refs = {
        (e.record_type, str(e.kwargs["column"]), r.type, dict(e.where).get("record_type"))
        for e in s.expectations
        for r in e.references
    }
    assert {
        ("purchase_order", "requisition_id", "purchase_requisition", None),
        ("purchase_order", "supplier_id", "supplier", None),
        ("goods_receipt", "po_id", "purchase_order", None),
        ("payment", "po_id", "purchase_order", None),
        ("inventory_count", "warehouse", "warehouse", None),
    } <= refs
    approvable = model["approval"].fields["record_type"].values or ()
    assert {("approval", "record_id", t, t) for t in approvable} <= refs
    invoice = s.expectation(INVOICE_UNIQUE)
    assert invoice.kwargs == {"column": "invoice_no"}
    assert invoice.rules == ("EXP-009",)
    assert not invoice.marks_unverifiable


def test_every_supported_expectation_type_exists_in_great_expectations() -> None:
    import great_expectations as gx

    for kind in REGISTRY.values():
        cls = getattr(gx.expectations, kind.class_name)
        fields = set(cls.__fields__)
        assert set(kind.kwargs) <= fields, (kind.name, set(kind.kwargs) - fields)


# --- bad suite files ----------------------------------------------------------------------------

HEAD = """\
suite:
  record_type: purchase_order
  title: {zh: 采购订单数据质量, en: Purchase order data quality}
  parameters:
    days: {value: 3, unit: {zh: 天, en: days}, label: {zh: 天数, en: Days}}
expectations:
"""
GOOD = """\
  - id: DQ-PO-001
    type: expect_column_values_to_not_be_null
    kwargs: {column: id}
    severity: critical
    message: {zh: "缺少编号", en: "No ID"}
"""


def problems_of(tmp_path: Path, files: dict[str, str]) -> list[Problem]:
    problems = Problems()
    paths = []
    for name, text in files.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    lib = policy_library()
    load_suite_files(
        paths, lib.model, problems, clause_ids=set(lib.clauses), rule_ids={r.id for r in lib.all_rules}
    )
    return list(problems)


def expectation(body: str) -> str:
    return HEAD + GOOD + textwrap.indent(textwrap.dedent(body), "  ")


@pytest.mark.parametrize(
    ("body", "line", "key", "words"),
    [
        (
            """\
            - id: DQ-PO-002
              type: expect_column_values_to_be_sparkly
              kwargs: {column: amount}
              severity: major
              message: {zh: 错, en: wrong}
            """,
            13,
            "type",
            "unknown expectation type 'expect_column_values_to_be_sparkly'",
        ),
        (
            """\
            - id: DQ-PO-002
              type: expect_column_values_to_not_be_null
              kwargs: {column: colour}
              severity: major
              message: {zh: 错, en: wrong}
            """,
            14,
            "kwargs.column",
            "'colour' is not a field of purchase_order",
        ),
        (
            """\
            - id: DQ-PO-002
              type: expect_column_values_to_be_in_set
              kwargs: {column: requisition_id, value_set: {ref: {type: requisition, field: id}}}
              severity: major
              message: {zh: 错, en: wrong}
            """,
            14,
            "kwargs.value_set.ref.type",
            "unknown referenced record type 'requisition'",
        ),
        (
            """\
            - id: DQ-PO-002
              type: expect_column_values_to_be_in_set
              kwargs: {column: requisition_id, value_set: {ref: {type: purchase_requisition, field: code}}}
              severity: major
              message: {zh: 错, en: wrong}
            """,
            14,
            "kwargs.value_set.ref.field",
            "'code' is not a field of purchase_requisition",
        ),
        (
            """\
            - id: DQ-PO-002
              type: expect_column_values_to_be_between
              kwargs: {column: buyer, min_value: 1}
              severity: major
              message: {zh: 错, en: wrong}
            """,
            14,
            "kwargs.column",
            "cannot check 'buyer' of type string",
        ),
        (
            """\
            - id: DQ-PO-002
              type: expect_column_values_to_be_between
              kwargs: {column: amount, min_value: {as_of: {days_before: 3}}}
              severity: major
              message: {zh: 错, en: wrong}
            """,
            14,
            "kwargs.min_value",
            "an as-of bound needs a timestamp or date column",
        ),
        (
            """\
            - id: DQ-PO-002
              type: expect_column_values_to_be_between
              kwargs: {column: ordered_at, max_value: {as_of: {days_after: {param: weeks}}}}
              severity: major
              message: {zh: 错, en: wrong}
            """,
            14,
            "kwargs.max_value.as_of.days_after",
            "unknown parameter 'weeks'",
        ),
        (
            """\
            - id: DQ-PO-002
              type: expect_column_values_to_be_unique
              kwargs: {column: id, tolerance: 2}
              severity: major
              message: {zh: 错, en: wrong}
            """,
            14,
            "kwargs.tolerance",
            "'tolerance' is not an argument of expect_column_values_to_be_unique",
        ),
        (
            """\
            - id: DQ-PO-002
              type: expect_column_values_to_be_unique
              kwargs: {column: id}
              severity: catastrophic
              message: {zh: 错, en: wrong}
            """,
            15,
            "severity",
            "severity must be one of",
        ),
        (
            """\
            - id: DQ-PO-002
              type: expect_column_values_to_be_unique
              kwargs: {column: id}
              severity: major
              message: {zh: 错, en: wrong}
              clauses: [m009.1.1]
            """,
            17,
            "clauses",
            "clause m009.1.1 does not exist",
        ),
        (
            """\
            - id: DQ-PO-002
              type: expect_column_values_to_be_unique
              kwargs: {column: id}
              severity: major
              message: {zh: 错, en: wrong}
              rules: [PUR-999]
            """,
            17,
            "rules",
            "rule PUR-999 does not exist",
        ),
        (
            """\
            - id: DQ-PO-002
              type: expect_column_values_to_be_unique
              kwargs: {column: id}
              severity: major
              message: {zh: "订单 {id} 的 {colour}", en: "order {id}"}
            """,
            16,
            "message",
            "message placeholder {colour}",
        ),
        (
            """\
            - id: DQ-PO-002
              type: expect_column_values_to_be_in_set
              kwargs: {column: requisition_id, value_set: {ref: {type: purchase_requisition, field: id}}}
              where: {buyer_kind: internal}
              severity: major
              message: {zh: 错, en: wrong}
            """,
            15,
            "where.buyer_kind",
            "'buyer_kind' is not a string, bool or int field of purchase_order",
        ),
        (
            """\
            - id: DQ-PO-002
              type: expect_column_values_to_not_be_null
              kwargs: {column: id}
              severity: major
            """,
            12,
            "message",
            "missing required key 'message'",
        ),
        (
            """\
            - id: DQ-PO-001
              type: expect_column_values_to_be_unique
              kwargs: {column: id}
              severity: major
              message: {zh: 错, en: wrong}
            """,
            12,
            "id",
            "expectation id DQ-PO-001 is already used",
        ),
    ],
    ids=[
        "unknown-type",
        "unknown-field",
        "unknown-referenced-type",
        "unknown-referenced-field",
        "wrong-column-type",
        "as-of-on-a-number",
        "unknown-parameter",
        "unknown-kwarg",
        "bad-severity",
        "unknown-clause",
        "unknown-rule",
        "unknown-placeholder",
        "unknown-where-field",
        "missing-message",
        "duplicate-id",
    ],
)
def test_a_bad_expectation_is_reported_with_file_line_id_and_key(
    tmp_path: Path, body: str, line: int, key: str, words: str
) -> None:
    found = problems_of(tmp_path, {"purchase_order.yaml": expectation(body)})
    assert len(found) == 1, [str(p) for p in found]
    p = found[0]
    assert p.file.endswith("purchase_order.yaml")
    assert p.policy == ("DQ-PO-001" if "already used" in words else "DQ-PO-002")
    assert (p.line, p.key) == (line, key), str(p)
    assert words in p.message_en, p.message_en
    assert p.message_zh


def test_every_problem_of_every_file_is_collected(tmp_path: Path) -> None:
    bad = expectation(
        """\
        - id: DQ-PO-002
          type: expect_column_values_to_be_sparkly
          kwargs: {column: amount}
          severity: major
          message: {zh: 错, en: wrong}
        - id: DQ-PO-003
          type: expect_column_values_to_be_between
          kwargs: {column: colour, min_value: 0}
          severity: huge
          message: {zh: 错, en: wrong}
        - id: PO-4
          type: expect_column_values_to_not_be_null
          kwargs: {column: id}
          severity: major
          message: {zh: 错, en: wrong}
        """
    )
    found = problems_of(
        tmp_path,
        {
            "purchase_order.yaml": bad,
            "payment.yaml": HEAD.replace("purchase_order", "payment") + "  - just a string\n",
            "sales_lead.yaml": HEAD.replace("purchase_order", "sales_lead")
            + GOOD.replace("PO-001", "SL-001"),
            "broken.yaml": "suite: [unclosed\n",
        },
    )
    where = {(Path(p.file).name, p.line, p.policy) for p in found}
    assert ("purchase_order.yaml", 13, "DQ-PO-002") in where
    assert ("purchase_order.yaml", 19, "DQ-PO-003") in where  # unknown column
    assert ("purchase_order.yaml", 20, "DQ-PO-003") in where  # severity
    assert ("purchase_order.yaml", 22, "PO-4") in where  # id format
    assert ("payment.yaml", 7, None) in where  # an expectation that is not a mapping
    assert any(
        Path(p.file).name == "sales_lead.yaml" and "unknown record type 'sales_lead'" in p.message_en
        for p in found
    )
    assert any(Path(p.file).name == "broken.yaml" and "YAML syntax error" in p.message_en for p in found)
    assert len(found) >= 7


@pytest.mark.parametrize(
    "text",
    [
        "[]\n",
        "suite: {record_type: [purchase_order]}\nexpectations: []\n",
        HEAD + "  - {id: DQ-PO-002, type: [x], kwargs: [column], severity: {}, message: zh}\n",
        HEAD
        + "  - {id: DQ-PO-002, type: expect_column_values_to_be_between, kwargs: {column: amount, min_value: {param: [days]}},"
        " severity: major, message: {zh: 错, en: wrong}, fields: amount, where: [a], clauses: m000, unverifiable: 1}\n",
        HEAD
        + "  - {id: DQ-PO-002, type: expect_column_values_to_be_in_set, kwargs: {column: [dept], value_set: 3},"
        " severity: major, message: {zh: 错, en: wrong}}\n",
        HEAD + "  - {id: DQ-PO-002, type: expect_compound_columns_to_be_unique, kwargs: {column_list: dept},"
        " severity: major, message: {zh: '{', en: wrong}}\n",
        HEAD.replace("parameters:", "parameters: [1]\n  derived: {x: 1}\n  extra:") + GOOD,
    ],
    ids=["list", "type-list", "odd-values", "odd-kinds", "odd-kwargs", "odd-columns", "odd-head"],
)
def test_odd_shapes_are_problems_not_crashes(tmp_path: Path, text: str) -> None:
    found = problems_of(tmp_path, {"purchase_order.yaml": text})
    assert found
    assert all(p.file.endswith("purchase_order.yaml") and p.message_zh for p in found)


def test_load_suites_raises_one_error_listing_every_problem(tmp_path: Path) -> None:
    (tmp_path / "purchase_order.yaml").write_text(
        expectation(
            """\
            - id: DQ-PO-002
              type: expect_column_values_to_be_sparkly
              kwargs: {column: amount}
              severity: major
              message: {zh: 错, en: wrong}
            """
        ),
        encoding="utf-8",
    )
    (tmp_path / "payment.yaml").write_text("suite: {record_type: payment}\n", encoding="utf-8")
    with pytest.raises(InputError) as raised:
        load_suites(tmp_path, policy_library().model)
    assert len(raised.value.problems) == 2
    assert "DQ-PO-002" in str(raised.value)


# --- running on a generated company --------------------------------------------------------------


def test_a_generated_company_passes_every_check(company: Company) -> None:
    result = run(company)
    assert result.counts["error"] == 0, [(o.id, o.detail) for o in result.by_status("error")]
    assert result.counts["not_evaluated"] == 0
    violated = {o.id for o in result.by_status("violated")}
    assert violated <= {INVOICE_UNIQUE}, [
        (o.id, sorted(o.record_ids)[:5]) for o in result.by_status("violated")
    ]
    assert result.unverifiable == {}

    # Duplicated invoice numbers: the check lists every claim of each group, EXP-009 judges the
    # later ones; the two agree and the check leaves EXP-009's violations standing.
    claims = company.frames["expense_claim"]
    shared = claims[claims["invoice_no"].notna() & claims["invoice_no"].duplicated(keep=False)]
    assert failing_ids(result, INVOICE_UNIQUE) == set(shared["id"])
    exp009 = {v.record_id for v in verdicts_of(company, company.frames) if v.rule == "EXP-009"}
    assert exp009
    assert exp009 < failing_ids(result, INVOICE_UNIQUE)
    violations, unverifiable = split_verdicts(
        verdicts_of(company, company.frames), company.library.rules, result.unverifiable
    )
    assert unverifiable == []
    assert exp009 <= {v.record_id for v in violations if v.rule == "EXP-009"}


def pick(frame: pd.DataFrame, n: int, offset: int = 0) -> list[str]:
    return [str(i) for i in frame["id"].iloc[offset : offset + n]]


def set_values(frame: pd.DataFrame, ids: list[str], column: str, value: Any) -> None:
    frame.loc[frame["id"].isin(ids), column] = value


def only(s: Suites, of: str, etype: str, column: str, where: dict[str, str] | None = None) -> str:
    """The id of the one expectation of record type `of`, of type `etype`, on `column`."""
    found = [
        e.id
        for e in s[of].expectations
        if e.type == etype and e.kwargs.get("column") == column and dict(e.where) == (where or {})
    ]
    assert len(found) == 1, (of, etype, column, found)
    return found[0]


def test_injected_problems_are_found_with_their_record_ids(company: Company) -> None:
    frames = copy_frames(company)
    claims, orders, approvals = frames["expense_claim"], frames["purchase_order"], frames["approval"]
    null_dept = pick(claims, 2, 10)
    bad_category = pick(claims, 1, 20)
    negative = pick(claims, 2, 30)
    set_values(claims, null_dept, "dept", pd.NA)
    set_values(claims, bad_category, "category", "bribe")
    set_values(claims, negative, "amount", -100)
    duplicated = pick(orders, 1, 5)[0]  # a second order with the same id
    frames["purchase_order"] = orders = pd.concat([orders, orders.iloc[[5]]])
    dangling_po = pick(orders, 2, 40)
    set_values(orders, dangling_po, "requisition_id", "PR-NOWHERE")
    claim_approvals = approvals[approvals["record_type"] == "expense_claim"]
    dangling_approval = pick(claim_approvals, 1, 3)
    set_values(approvals, dangling_approval, "record_id", "EC-NOWHERE")
    future = pick(frames["complaint"], 1, 7)
    set_values(
        frames["complaint"], future, "followed_up_at", company.as_of.tz_convert("UTC") + pd.Timedelta(days=2)
    )

    result = run(company, frames)
    s = company.suites
    between = "expect_column_values_to_be_between"
    amount_min = [
        e.id
        for e in s["expense_claim"].expectations
        if e.type == between and e.kwargs == {"column": "amount", "min_value": 0}
    ]
    followed_up_max = [
        e.id
        for e in s["complaint"].expectations
        if e.type == between and e.kwargs["column"] == "followed_up_at" and "max_value" in e.kwargs
    ]
    claims_now = frames["expense_claim"]
    shared = claims_now[claims_now["invoice_no"].notna() & claims_now["invoice_no"].duplicated(keep=False)]
    expected = {
        only(s, "expense_claim", "expect_column_values_to_not_be_null", "dept"): set(null_dept),
        only(s, "expense_claim", "expect_column_values_to_be_in_set", "category"): set(bad_category),
        amount_min[0]: set(negative),
        only(s, "purchase_order", "expect_column_values_to_be_unique", "id"): {duplicated},
        only(s, "purchase_order", "expect_column_values_to_be_in_set", "requisition_id"): set(dangling_po),
        only(
            s, "approval", "expect_column_values_to_be_in_set", "record_id", {"record_type": "expense_claim"}
        ): set(dangling_approval),
        followed_up_max[0]: set(future),
        INVOICE_UNIQUE: set(shared["id"]),  # unchanged: the generated duplicates only
    }
    got = {o.id: o.record_ids for o in result.by_status("violated")}
    assert got == expected
    # both rows sharing an id are listed, by position in the frame given
    rows = result.outcome(only(s, "purchase_order", "expect_column_values_to_be_unique", "id")).failing
    assert [(r.row, r.record_id) for r in rows] == [(5, duplicated), (len(orders) - 1, duplicated)]
    # unverifiable: the failing fields of each failing record (not for the invoice check)
    assert result.unverifiable[("expense_claim", null_dept[0])] == {"dept"}
    assert result.unverifiable[("expense_claim", negative[0])] == {"amount"}
    assert result.unverifiable[("purchase_order", dangling_po[0])] == {"requisition_id"}
    assert result.unverifiable[("purchase_order", duplicated)] == {"id"}
    assert result.unverifiable[("approval", dangling_approval[0])] == {"record_id"}
    assert result.unverifiable[("complaint", future[0])] == {"followed_up_at"}
    assert not any("invoice_no" in fields for fields in result.unverifiable.values())
    # messages name the record and the failing value, in both languages
    finding = next(
        f for f in result.findings() if f.expectation == amount_min[0] and f.record_id == negative[0]
    )
    assert negative[0] in finding.message.zh
    assert "-1.00" in finding.message.en
    assert finding.fields == ("amount",)


def test_a_verdict_needing_a_bad_field_becomes_a_data_quality_finding(company: Company) -> None:
    frames = copy_frames(company)
    orders = frames["purchase_order"]
    baseline = {(v.rule, v.record_id) for v in verdicts_of(company, company.frames)}
    judged = {i for _, i in baseline}
    clean = [i for i in pick(orders, len(orders)) if i not in judged]
    dangling = clean[:2]  # PUR-001 reads requisition_id: the dangling reference fails it
    set_values(orders, dangling, "requisition_id", "PR-NOWHERE")
    pur001 = sorted(i for r, i in baseline if r == "PUR-001")
    assert pur001, "the generated company has PUR-001 violations"
    bad_dept = pur001[:1]  # PUR-001 does not read dept: its violation stands
    set_values(orders, bad_dept, "dept", "NO-SUCH-DEPT")

    result = run(company, frames)
    verdicts = verdicts_of(company, frames)
    assert {("PUR-001", i) for i in dangling} <= {(v.rule, v.record_id) for v in verdicts}
    violations, findings = split_verdicts(verdicts, company.library.rules, result.unverifiable)

    assert {(f.rule, f.record_id) for f in findings} >= {("PUR-001", i) for i in dangling}
    assert all(isinstance(f, UnverifiableVerdict) and f.fields == ("requisition_id",) for f in findings)
    assert not any(v.record_id in dangling and v.rule == "PUR-001" for v in violations)
    assert ("PUR-001", bad_dept[0]) in {(v.rule, v.record_id) for v in violations}
    assert result.unverifiable[("purchase_order", bad_dept[0])] == {"dept"}
    assert len(violations) + len(findings) == len(verdicts)


def test_fields_read_follows_the_ir_into_exists_bodies_and_aggregates() -> None:
    lib = policy_library()
    assert fields_read(lib.rule("EXP-001").compiled) == {"invoice_no", "invoice_count"}
    # EXP-009 compares with record.submitted_at and record.id inside the related claim's body
    assert fields_read(lib.rule("EXP-009").compiled) == {"id", "invoice_no", "submitted_at"}
    assert fields_read(lib.rule("PUR-001").compiled) == {"requisition_id", "ordered_at"}
    # FIN-001 sums related spending by dept and year: no derived column leaks in
    assert fields_read(lib.rule("FIN-001").compiled) == {"amount", "dept", "year"}


def test_split_verdicts_keeps_order_and_needs_every_rule(company: Company) -> None:
    lib = company.library
    v1 = Verdict("EXP-001", "expense_claim", "C1", "minor")
    v2 = Verdict("EXP-001", "expense_claim", "C2", "minor")
    v3 = Verdict("EXP-007", "expense_claim", "C2", "major")
    bad = {("expense_claim", "C2"): {"invoice_count"}, ("expense_claim", "C9"): {"id"}}
    violations, findings = split_verdicts([v1, v2, v3], lib.rules, bad)
    assert violations == [v1, v3]
    assert findings == [UnverifiableVerdict(v2, ("invoice_count",))]
    v4 = Verdict("EXP-007", "expense_claim", "C9", "major")  # a failing id: no rule can stand
    assert split_verdicts([v4], {r.id: r for r in lib.rules}, bad)[1] == [UnverifiableVerdict(v4, ("id",))]
    with pytest.raises(KeyError):
        split_verdicts([Verdict("XYZ-001", "expense_claim", "C2", "minor")], lib.rules, bad)


def test_absent_tables_columns_and_rejected_arguments_are_outcomes_not_exceptions(company: Company) -> None:
    frames = {k: v for k, v in company.frames.items() if k not in ("complaint", "purchase_requisition")}
    frames["expense_claim"] = company.frames["expense_claim"].drop(columns=["paid_at"])
    frames["budget"] = company.frames["budget"].iloc[0:0]
    s = company.suites
    broken = replace(s.expectation("DQ-PO-007"), kwargs={"column": "amount", "min_value": "zero"})
    po = s["purchase_order"]
    patched = Suites(
        s.model,
        {
            **s.by_type,
            "purchase_order": replace(
                po, expectations=tuple(broken if e.id == "DQ-PO-007" else e for e in po.expectations)
            ),
        },
    )
    result = run_checks(patched, frames, as_of=company.as_of, tz=company.library.company.tz)
    complaint = [o for o in result.outcomes if o.record_type == "complaint"]
    assert complaint
    assert {o.status for o in complaint} == {"not_evaluated"}
    requisition_ref = result.outcome("DQ-PO-010")
    assert requisition_ref.status == "not_evaluated"
    assert "purchase_requisition" in (requisition_ref.detail or "")
    paid = result.outcome("DQ-EXP-017")
    assert paid.status == "error"
    assert "paid_at" in (paid.detail or "")
    assert result.outcome("DQ-EXP-019").status == "error"  # derived from paid_at
    assert result.outcome("DQ-PO-007").status == "error"
    assert "min_value" in (result.outcome("DQ-PO-007").detail or "")
    assert {o.status for o in result.outcomes if o.record_type == "budget"} == {"passed"}
    assert result.outcome("DQ-EXP-010").status == "passed"  # the rest of the suite still ran


def test_concurrent_runs_get_their_own_results(company: Company) -> None:
    clean = company.frames
    dirty = copy_frames(company)
    bad = pick(dirty["expense_claim"], 3, 50)
    set_values(dirty["expense_claim"], bad, "category", "bribe")
    category = "DQ-EXP-008"
    results: dict[str, list[CheckRun]] = {"clean": [], "dirty": []}
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def worker(name: str, frames: dict[str, pd.DataFrame]) -> Callable[[], None]:
        def go() -> None:
            try:
                barrier.wait()
                for _ in range(2):
                    results[name].append(run(company, frames))
            except BaseException as exc:
                errors.append(exc)

        return go

    threads = [threading.Thread(target=worker(n, f)) for n, f in (("clean", clean), ("dirty", dirty))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for r in results["clean"]:
        assert r.outcome(category).status == "passed"
        assert r.unverifiable == {}
    for r in results["dirty"]:
        assert r.outcome(category).record_ids == set(bad)
        assert set(r.unverifiable) == {("expense_claim", i) for i in bad}


# --- process-level properties -----------------------------------------------------------------


def python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_a_run_prints_nothing_no_progress_bars(company: Company) -> None:
    done = python(
        """
        import sys
        from pathlib import Path
        import pandas as pd
        from checks import run_checks, suites_for_library
        from rules.library import load_library
        from rules.readers import read_data_dir
        lib = load_library(Path(sys.argv[1]))
        frames = read_data_dir(Path(sys.argv[2]), lib.model, lib.company.tz).frames
        result = run_checks(suites_for_library(lib), frames, as_of=pd.Timestamp(sys.argv[3]), tz=lib.company.tz)
        assert result.counts["error"] == 0, result.counts
        """,
        str(POLICIES),
        str(company.folder),
        company.as_of.isoformat(),
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout == ""


def test_importing_checks_does_not_import_great_expectations() -> None:
    done = python(
        f"""
        import sys
        from pathlib import Path
        import checks, checks.suites, checks.runner, checks.verdicts
        from checks import fields_read, load_suites, split_verdicts
        from rules.library import load_library
        lib = load_library(Path({str(POLICIES)!r}))
        checks.suites_for_library(lib)
        loaded = sorted(m for m in sys.modules if m.split(".")[0] == "great_expectations")
        assert not loaded, loaded[:5]
        """
    )
    assert done.returncode == 0, done.stderr
