"""Both engines give the same verdicts, and they find the generator's injected violations
exactly: no misses, no false alarms."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.engine.encode import encode_frame, timestamp_ms
from rules.readers import read_data_dir
from rules.validate import validate_frame
from service.evaluation.service import encode_all, evaluate_encoded
from service.synthetic import generate
from tests.helpers import policy_library

LEVEL_SEVERITY = {"warning": "minor", "violation": "major"}


def ground_truth(folder: Path) -> set[tuple[str, str, str]]:
    truth = pd.read_csv(folder / "ground_truth.csv", dtype=str, keep_default_na=False)
    out = set()
    for row in truth.itertuples():
        level = str(row.detail).split(":", 1)[0].strip()
        severity = LEVEL_SEVERITY[level] if row.rule == "FIN-001" else ""
        out.add((row.rule, row.record_id, severity))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_engines_agree_and_find_the_ground_truth_exactly(tmp_path: Path, seed: int) -> None:
    lib = policy_library()
    manifest = generate(tmp_path, records=4000, seed=seed)
    dataset = read_data_dir(tmp_path, lib.model, lib.company.tz)
    encoded = encode_all(lib, dataset.frames)
    as_of_ms = timestamp_ms(pd.Timestamp(manifest.as_of))

    batch = evaluate_encoded(lib, encoded, as_of_ms=as_of_ms, engine="batch")
    stream = evaluate_encoded(lib, encoded, as_of_ms=as_of_ms, engine="stream")
    assert sorted(batch) == sorted(stream)

    found = {(v.rule, v.record_id, v.severity if v.rule == "FIN-001" else "") for v in batch}
    truth = ground_truth(tmp_path)
    assert found - truth == set(), "false alarms"
    assert truth - found == set(), "missed violations"
    assert {r for r, _, _ in truth} >= {r.id for r in lib.rules}, "every rule has an injected case"


# --- hypothesis: random claims and approvals, including missing values and ties ------------------

STEPS = ["dept_head", "finance", "division_leader", "general_manager"]
times = st.sampled_from(
    ["2026-03-01T09:00:00", "2026-03-01T09:00:00", "2026-03-02T09:00:00", "2026-03-20T09:00:00", ""]
)
people = st.sampled_from(["张三", "李四", "王五"])


@st.composite
def claims_and_approvals(draw: st.DrawFn) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    n = draw(st.integers(1, 6))
    claims = [
        {
            "id": f"C{i}",
            "dept": "FIN",
            "applicant": draw(people),
            "category": "travel",
            "amount": draw(st.sampled_from(["100.00", "5000.00", "5000.01", "20000.00", "25000.00"])),
            "invoice_no": draw(st.sampled_from(["", "FP1", "FP2"])),
            "invoice_count": draw(st.sampled_from(["0", "1"])),
            "submitted_at": draw(times.filter(bool)),
            "paid_at": draw(times),
        }
        for i in range(n)
    ]
    approvals = [
        {
            "id": f"A{j}",
            "record_type": draw(st.sampled_from(["expense_claim", "contract"])),
            "record_id": f"C{draw(st.integers(0, n))}",
            "step": draw(st.sampled_from(STEPS)),
            "approver": draw(people),
            "decision": draw(st.sampled_from(["approved", "approved", "rejected"])),
            "decided_at": draw(times.filter(bool)),
        }
        for j in range(draw(st.integers(0, 10)))
    ]
    return claims, approvals


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=claims_and_approvals(),
    as_of=st.sampled_from(["2026-03-05T00:00:00+08:00", "2026-04-30T00:00:00+08:00"]),
)
def test_engines_agree_on_random_expense_cases(
    data: tuple[list[dict[str, str]], list[dict[str, str]]], as_of: str
) -> None:
    lib = policy_library()
    tz = lib.company.tz
    claims, approvals = data
    encoded = {}
    for rtype, rows in (("expense_claim", claims), ("approval", approvals)):
        rt = lib.model[rtype]
        raw = pd.DataFrame(rows, columns=list(rt.fields), dtype=object)
        result = validate_frame(rt, raw, source=rtype, tz=tz)
        assert not result.problems, result.problems
        encoded[rtype] = encode_frame(rt, result.frame)
    as_of_ms = timestamp_ms(pd.Timestamp(as_of))
    batch = evaluate_encoded(lib, encoded, as_of_ms=as_of_ms, engine="batch")
    stream = evaluate_encoded(lib, encoded, as_of_ms=as_of_ms, engine="stream")
    assert sorted(batch) == sorted(stream)
