"""A synthetic company: a year of consistent business records with known, injected violations.

`generate(out_dir, records=..., seed=...)` writes one file per record type (`<type>.csv` or
`<type>.parquet`), `ground_truth.csv` naming every violation present in the data, and
`manifest.json`. The same seed gives byte-identical files. Clean records keep clear of every rule's
thresholds and deadlines; each injected violation breaks exactly one rule.

Everything is vectorised with numpy (loops only over departments, warehouses, months and rules), so a
million records take seconds.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from service.synthetic.budgets import budget_frame, spending
from service.synthetic.clock import AS_OF, PERIOD_END, PERIOD_START, TZ_NAME, iso
from service.synthetic.context import Ctx, Plan
from service.synthetic.contracts import ContractPool, build_contracts, contract_frame, inject_contracts
from service.synthetic.expenses import build_claims, claim_frame, inject_claims
from service.synthetic.frames import RECORD_TYPES, Approvals, Frame, GroundTruth, Pool, write_table
from service.synthetic.operations import (
    COMPLAINT_FIXTURES,
    build_complaints,
    build_inventory,
    complaint_frame,
    inject_complaints,
    inject_inventory,
    inventory_frames,
)
from service.synthetic.org import DEPARTMENTS, Org, build_org, unique_companies
from service.synthetic.people import (
    build_hires,
    build_reviews,
    hire_frame,
    hire_times,
    inject_hires,
    inject_reviews,
    review_frame,
)
from service.synthetic.purchasing import (
    build_purchasing,
    build_suppliers,
    inject_purchasing,
    inject_suppliers,
    link_contracts,
    purchasing_frames,
    supplier_frame,
)

GENERATOR_VERSION = "1.0.0"
FORMATS = ("csv", "parquet")
RULES = (
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
)


@dataclass(frozen=True)
class Manifest:
    """What one run wrote. `to_json` is the content of manifest.json."""

    seed: int
    records_requested: int
    records_written: dict[str, int]
    records_written_total: int
    violation_rate: float
    violations: dict[str, int]
    fmt: str
    files: list[str]
    as_of: str
    timezone: str
    period_start: str
    period_end: str
    generator_version: str = GENERATOR_VERSION
    out_dir: Path | None = field(default=None, compare=False)

    @property
    def written(self) -> dict[str, int]:
        """Records written per type (same as `records_written`)."""
        return self.records_written

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("out_dir")
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n"


def department_frame(org: Org) -> Frame:
    n = len(DEPARTMENTS)
    idx = np.arange(n, dtype=np.int64)
    return Frame(
        "department",
        n,
        {
            "id": Pool([d[0] for d in DEPARTMENTS], idx),
            "name": Pool([d[1] for d in DEPARTMENTS], idx),
            "name_en": Pool([d[2] for d in DEPARTMENTS], idx),
            "head": Pool(org.names, org.head),
            "division_leader": Pool(org.names, org.division_leader),
        },
    )


def generate(
    out_dir: Path,
    *,
    records: int,
    seed: int,
    violation_rate: float = 0.05,
    fmt: str = "csv",
) -> Manifest:
    """Write a synthetic company of about `records` records (all types together) into `out_dir`."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, not {fmt!r}")
    if records < 1:
        raise ValueError("records must be positive")
    if not 0.0 <= violation_rate <= 0.1:
        raise ValueError("violation_rate must be between 0 and 0.1 (each rule's share of its subjects)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    plan = Plan.for_records(records)
    rng = np.random.default_rng([seed, 1])
    org = build_org(rng, plan.staff, plan.hires + 1, hire_times(rng, plan.hires))
    n_customers = max(60, min(5000, records // 200))
    companies = unique_companies(rng, plan.suppliers + n_customers)
    ctx = Ctx(seed, records, violation_rate, org, plan, companies, GroundTruth(), Approvals())

    sup = build_suppliers(ctx)
    pool = ContractPool()
    pur = build_purchasing(ctx, sup, pool)
    build_contracts(ctx, pool)
    pool.finalize()
    link_contracts(pur, pool)
    inject_purchasing(ctx, pur, sup, pool)
    inject_contracts(ctx, pool)
    inject_suppliers(ctx, sup)
    claims = build_claims(ctx)
    inject_claims(ctx, claims)
    inventory = build_inventory(ctx)
    inject_inventory(ctx, inventory)
    hires = build_hires(ctx)
    inject_hires(ctx, hires)
    reviews = build_reviews(ctx, hires)
    inject_reviews(ctx, reviews)

    frames: dict[str, Frame] = {"department": department_frame(org)}
    frames["expense_claim"] = claim_frame(ctx, claims)
    frames["contract"] = contract_frame(ctx, pool)
    frames["supplier"] = supplier_frame(ctx, sup)
    for frame in (*purchasing_frames(ctx, pur), *inventory_frames(ctx, inventory)):
        frames[frame.record_type] = frame
    frames["hire"] = hire_frame(ctx, hires)
    frames["performance_review"] = review_frame(ctx, reviews)
    spent = spending(claims.dept, claims.submitted, claims.amount) + spending(
        pur.po_dept[pur.pm_po], pur.pm_at, pur.pm_amount
    )
    frames["budget"] = budget_frame(ctx, spent)

    # Complaints fill up to the requested total.
    so_far = sum(f.n for f in frames.values()) + len(ctx.approvals)
    complaints = build_complaints(ctx, max(10, records - so_far - len(COMPLAINT_FIXTURES)))
    inject_complaints(ctx, complaints)
    frames["complaint"] = complaint_frame(ctx, complaints)
    frames["approval"] = ctx.approvals.frame(org.names)

    ext = "parquet" if fmt == "parquet" else "csv"
    written: dict[str, int] = {}
    files: list[str] = []
    for record_type in RECORD_TYPES:
        frame = frames.pop(record_type)
        write_table(frame.to_table(), out_dir / f"{record_type}.{ext}", fmt)
        written[record_type] = frame.n
        files.append(f"{record_type}.{ext}")
    truth = ctx.truth.table()
    write_table(truth, out_dir / "ground_truth.csv", "csv")
    files.append("ground_truth.csv")
    counts = ctx.truth.counts()

    manifest = Manifest(
        seed=seed,
        records_requested=records,
        records_written=written,
        records_written_total=sum(written.values()),
        violation_rate=violation_rate,
        violations={rule: counts.get(rule, 0) for rule in RULES},
        fmt=fmt,
        files=[*files, "manifest.json"],
        as_of=iso(AS_OF),
        timezone=TZ_NAME,
        period_start=iso(PERIOD_START),
        period_end=iso(PERIOD_END),
        out_dir=out_dir,
    )
    (out_dir / "manifest.json").write_text(manifest.to_json(), encoding="utf-8")
    return manifest


__all__ = ["GENERATOR_VERSION", "RULES", "Manifest", "generate"]
