"""Expense claims, their approval chains, and the EXP rules.

Clean chain: submitted -> dept_head (sometimes rejected once first) -> finance -> division_leader
(amount > 5000.00) -> general_manager (amount > 20000.00) -> paid 1-5 days after the last approval.
The whole chain takes at most 7 days, so every claim older than 10 days is complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from service.synthetic.clock import AS_OF, DAY, MISSING, OFFSET, Arr, at, cut, delay, work_times
from service.synthetic.context import (
    EXP_DIVISION_LEADER,
    EXP_GENERAL_MANAGER,
    Ctx,
    Picker,
    at_least_above,
    away_from,
)
from service.synthetic.frames import APPROVED, REJECTED, Frame, Pool, decimal_text, id_text, ids, join_text
from service.synthetic.org import CLAIM_CATEGORIES, DEPT_CODES, dept_weights

CATEGORY_P = (0.35, 0.20, 0.15, 0.08, 0.15, 0.07)
CATEGORY_MEDIAN = (2800.0, 400.0, 1500.0, 3500.0, 150.0, 800.0)
CATEGORY_SIGMA = (1.0, 0.8, 0.9, 0.8, 0.7, 1.0)
CATEGORY_EXTRA_INVOICES = (2.0, 0.5, 0.3, 0.3, 1.5, 0.5)
CLAIM_WEIGHTS = {
    "SAL": 30.0,
    "MKT": 14.0,
    "RD": 12.0,
    "CS": 8.0,
    "PUR": 6.0,
    "WH": 6.0,
    "ADM": 6.0,
    "QC": 5.0,
    "HR": 4.0,
    "FIN": 4.0,
    "CEN": 3.0,
    "LEG": 2.0,
}
# Open deadlines near as_of: submitted within 10 days of as_of, not paid, chain still running.
FIXTURES = (at(2026, 11, 5, 10, 20), at(2026, 11, 8, 14, 0))


@dataclass
class Claims:
    dept: Arr
    applicant: Arr
    category: Arr
    amount: Arr
    invoice_src: Arr  # whose invoice number the claim carries (own row, another row, or -1: none)
    invoice_count: Arr
    submitted: Arr
    paid: Arr
    fixture: Arr
    # approvals (MISSING: none)
    rejected_dh: Arr
    dh: Arr
    fin: Arr
    dl: Arr
    gm: Arr
    dh_approver: Arr


def build_claims(ctx: Ctx) -> Claims:
    rng = ctx.rng(10)
    org = ctx.org
    n_main = ctx.plan.claims
    n = n_main + len(FIXTURES)
    submitted = np.concatenate([np.sort(work_times(rng, n_main, open_hour=8.5, close_hour=19)), FIXTURES])
    fixture = np.arange(n) >= n_main
    dept = rng.choice(len(DEPT_CODES), size=n, p=dept_weights(CLAIM_WEIGHTS))
    applicant = org.random_staff(rng, dept, submitted)
    category = rng.choice(len(CLAIM_CATEGORIES), size=n, p=np.array(CATEGORY_P))
    median = np.array(CATEGORY_MEDIAN)[category]
    sigma = np.array(CATEGORY_SIGMA)[category]
    amount = np.round(np.clip(np.exp(rng.normal(np.log(median), sigma)), 20.0, 150_000.0) * 100).astype(
        np.int64
    )
    amount = away_from(rng, amount, EXP_DIVISION_LEADER)
    amount = away_from(rng, amount, EXP_GENERAL_MANAGER)
    early = (submitted < AS_OF - 60 * DAY) & ~fixture
    amount = at_least_above(rng, amount, EXP_GENERAL_MANAGER, 8, early)
    amount = at_least_above(rng, amount, EXP_DIVISION_LEADER, 16, early & (amount <= EXP_GENERAL_MANAGER))
    invoice_count = 1 + rng.poisson(np.array(CATEGORY_EXTRA_INVOICES)[category])

    rejected_once = (rng.random(n) < 0.03) & ~fixture
    rej = submitted + delay(rng, n, 1, 12)
    dh = np.where(rejected_once, rej + delay(rng, n, 2, 24), submitted + delay(rng, n, 2, 48))
    fin = dh + delay(rng, n, 2, 48)
    need_dl = amount > EXP_DIVISION_LEADER
    need_gm = amount > EXP_GENERAL_MANAGER
    dl = np.where(need_dl, fin + delay(rng, n, 2, 36), MISSING)
    gm = np.where(need_gm, np.where(need_dl, dl, fin) + delay(rng, n, 2, 36), MISSING)
    last = np.maximum(np.maximum(dh, fin), np.maximum(dl, gm))
    paid = last + delay(rng, n, 24, 120)
    # the fixtures: one with only the dept_head's approval so far, one just submitted
    f0, f1 = n_main, n_main + 1
    fin[fixture] = MISSING
    dl[fixture] = MISSING
    gm[fixture] = MISSING
    paid[fixture] = MISSING
    dh[f1] = MISSING
    if dh[f0] > AS_OF:
        raise AssertionError("fixture approval after as_of")
    return Claims(
        dept=dept,
        applicant=applicant,
        category=category,
        amount=amount,
        invoice_src=np.arange(n, dtype=np.int64),
        invoice_count=invoice_count.astype(np.int64),
        submitted=submitted,
        paid=cut(paid),
        fixture=fixture,
        rejected_dh=cut(np.where(rejected_once, rej, MISSING)),
        dh=cut(dh),
        fin=cut(fin),
        dl=cut(dl),
        gm=cut(gm),
        dh_approver=org.head[dept],
    )


def _claim_ids(rows: Arr) -> Any:
    return id_text("expense_claim", rows + 1)


def inject_claims(ctx: Ctx, c: Claims) -> None:
    rng = ctx.rng(11)
    truth = ctx.truth
    n = len(c.submitted)
    paid = c.paid != MISSING
    applicable = paid | (c.submitted < AS_OF - 10 * DAY)
    eligible = paid & ~c.fixture
    picker = Picker(rng, n)
    n_app = int(applicable.sum())
    approvals = sum((t != MISSING).astype(np.int64) for t in (c.rejected_dh, c.dh, c.fin, c.dl, c.gm))

    rows = picker.take(
        eligible & (c.amount > EXP_GENERAL_MANAGER * 1.04),
        ctx.n_inject(int((applicable & (c.amount > EXP_GENERAL_MANAGER)).sum())),
    )
    c.gm[rows] = MISSING
    truth.add(
        "EXP-005",
        "expense_claim",
        _claim_ids(rows),
        join_text("amount ", _money(c.amount[rows]), " above 20000.00 without general_manager approval"),
    )

    rows = picker.take(
        eligible & (c.amount > EXP_DIVISION_LEADER * 1.04),
        ctx.n_inject(int((applicable & (c.amount > EXP_DIVISION_LEADER)).sum())),
    )
    c.dl[rows] = MISSING
    truth.add(
        "EXP-004",
        "expense_claim",
        _claim_ids(rows),
        join_text("amount ", _money(c.amount[rows]), " above 5000.00 without division_leader approval"),
    )

    # EXP-006: the last approval is decided after payment.
    rows = picker.take(eligible & (c.paid < AS_OF - 4 * DAY), ctx.n_inject(int(paid.sum())))
    moved = c.paid[rows] + delay(rng, len(rows), 24, 72)
    highest = np.where(c.gm[rows] != MISSING, 3, np.where(c.dl[rows] != MISSING, 2, 1))
    for rank, step in ((1, c.fin), (2, c.dl), (3, c.gm)):  # move the highest-ranked approval present
        step[rows[highest == rank]] = moved[highest == rank]
    truth.add("EXP-006", "expense_claim", _claim_ids(rows), "an approval was decided after payment")

    # EXP-008: dept_head decided after finance.
    rows = picker.take(eligible, ctx.n_inject(int((approvals >= 2).sum())))
    c.dh[rows], c.fin[rows] = c.fin[rows].copy(), c.dh[rows].copy()
    truth.add(
        "EXP-008", "expense_claim", _claim_ids(rows), "dept_head approval decided after finance approval"
    )

    # EXP-007: the applicant approved their own claim.
    rows = picker.take(eligible, ctx.n_inject(int((approvals >= 1).sum())))
    c.dh_approver[rows] = c.applicant[rows]
    names = pa.array(ctx.org.names, type=pa.string()).take(pa.array(c.applicant[rows]))
    truth.add(
        "EXP-007", "expense_claim", _claim_ids(rows), join_text("applicant ", names, " approved own claim")
    )

    for rule, step_name, step in (("EXP-002", "dept_head", c.dh), ("EXP-003", "finance", c.fin)):
        rows = picker.take(eligible, ctx.n_inject(n_app))
        step[rows] = MISSING
        truth.add(rule, "expense_claim", _claim_ids(rows), f"no approved {step_name} approval")

    # EXP-001: no invoice number, or no invoices.
    rows = picker.take(eligible, ctx.n_inject(n))
    v = np.arange(len(rows)) % 2
    c.invoice_count[rows[v == 0]] = 0
    c.invoice_src[rows[v == 1]] = -1
    truth.add(
        "EXP-001",
        "expense_claim",
        _claim_ids(rows),
        np.where(v == 0, "invoice_count is 0", "invoice_no missing").tolist(),
    )

    # EXP-009: an invoice number already used by an earlier claim (the earlier one stays clean).
    rows = picker.take(eligible & (c.submitted > c.submitted[0] + 30 * DAY), ctx.n_inject(n))
    sources = np.flatnonzero(~picker.used & ~c.fixture)
    earlier = np.searchsorted(c.submitted[sources], c.submitted[rows], side="left")
    rows, earlier = rows[earlier > 0], earlier[earlier > 0]
    src = sources[(rng.random(len(rows)) * earlier).astype(np.int64)]
    if np.any(c.submitted[src] >= c.submitted[rows]):
        raise AssertionError("EXP-009 source is not earlier")
    c.invoice_src[rows] = src
    picker.used[src] = True
    truth.add(
        "EXP-009",
        "expense_claim",
        _claim_ids(rows),
        join_text("invoice_no ", invoice_text(c.submitted, src), " already used by claim ", _claim_ids(src)),
    )


def _money(fen: Arr) -> Any:
    return decimal_text(np.asarray(fen, dtype=np.int64))


def invoice_text(submitted: Arr, rows: Arr) -> Any:
    """The 20-digit invoice number first issued for claim row `rows` (null where rows < 0)."""
    safe = np.where(rows < 0, 0, rows)
    local = (submitted[safe] + OFFSET).astype("datetime64[s]")
    year = local.astype("datetime64[Y]").astype(np.int64) + 1970
    month = local.astype("datetime64[M]").astype(np.int64) % 12 + 1
    head = (year % 100) * 100_000 + 31_200 + month  # yy, region 31, kind 2, month
    serial = (safe.astype(np.int64) * 7_919_000_023 + 4_104_729_361) % 10**10  # a bijection: unique
    text = join_text(
        pc.cast(pa.array(head), pa.string()),
        "000",
        pc.utf8_lpad(pc.cast(pa.array(serial), pa.string()), 10, "0"),
    )
    return pc.if_else(pa.array(rows < 0), pa.scalar(None, type=pa.string()), text)


def claim_frame(ctx: Ctx, c: Claims) -> Frame:
    org = ctx.org
    n = len(c.submitted)
    num = np.arange(1, n + 1, dtype=np.int64)
    ap = ctx.approvals
    ap.add("expense_claim", num, "dept_head", org.head[c.dept], REJECTED, c.rejected_dh)
    ap.add("expense_claim", num, "dept_head", c.dh_approver, APPROVED, c.dh)
    ap.add("expense_claim", num, "finance", org.finance_reviewer, APPROVED, c.fin)
    ap.add("expense_claim", num, "division_leader", org.division_leader[c.dept], APPROVED, c.dl)
    ap.add("expense_claim", num, "general_manager", org.general_manager, APPROVED, c.gm)
    return Frame(
        "expense_claim",
        n,
        {
            "id": ids("expense_claim", num),
            "dept": Pool(DEPT_CODES, c.dept),
            "applicant": Pool(org.names, c.applicant),
            "category": Pool(CLAIM_CATEGORIES, c.category),
            "amount": c.amount,
            "invoice_no": invoice_text(c.submitted, c.invoice_src),
            "invoice_count": c.invoice_count,
            "submitted_at": c.submitted,
            "paid_at": c.paid,
        },
    )
