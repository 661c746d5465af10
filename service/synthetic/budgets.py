"""Annual department budgets for 2025 and 2026 (FIN-001), set from the spending actually generated.

Spending of a department in a year = its expense claims submitted in that calendar year plus its
payments paid in that year (Asia/Shanghai). A clean budget leaves at least 15 % unspent.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from service.synthetic.clock import Arr, at
from service.synthetic.context import Ctx, Picker
from service.synthetic.frames import Frame, Pool, decimal_text, join_text
from service.synthetic.org import DEPT_CODES, N_DEPTS

YEARS = (2025, 2026)
WAN = 1_000_000  # 10000.00 yuan in hundredths: clean budgets are whole multiples
HUNDRED = 10_000  # 100.00 yuan


def spending(dept: Arr, when: Arr, amount: Arr) -> Arr:
    """Sum of amounts per (year, department) for the years in YEARS."""
    out = np.zeros((len(YEARS), N_DEPTS), dtype=np.int64)
    for y, year in enumerate(YEARS):
        inside = (when >= at(year, 1, 1)) & (when < at(year + 1, 1, 1))
        np.add.at(out[y], dept[inside], amount[inside])
    return out


def budget_frame(ctx: Ctx, spent: Arr) -> Frame:
    """Budgets in whole 10000 yuan: 2026's leaves 20-45 % unspent; 2025's is of the same order
    (the data covers only its last two months). Overspent budgets are 2026 ones, in whole 100 yuan."""
    rng = ctx.rng(80)
    flat = spent.reshape(-1)  # year-major (2025, 2026), departments in declared order
    n = len(flat)
    this_year = flat[N_DEPTS:]
    b2026 = np.ceil(this_year / rng.uniform(0.55, 0.80, N_DEPTS) / WAN) * WAN
    b2026 = np.maximum(b2026, 20 * WAN)
    b2025 = np.ceil(np.maximum(b2026 * rng.uniform(0.85, 1.0, N_DEPTS), flat[:N_DEPTS] / 0.5) / WAN) * WAN
    amount = np.concatenate([b2025, b2026]).astype(np.int64)

    wanted = ctx.n_inject(n)
    if wanted:
        wanted = max(2, wanted)  # both levels appear
    eligible = (np.arange(n) >= N_DEPTS) & (flat >= WAN)
    rows = Picker(rng, n).take(eligible, wanted)
    level = np.where(np.arange(len(rows)) % 2 == 0, "violation", "warning")
    over = np.floor(flat[rows] / rng.uniform(1.05, 1.2, len(rows)) / HUNDRED) * HUNDRED
    near = np.ceil(flat[rows] / rng.uniform(0.92, 0.97, len(rows)) / HUNDRED) * HUNDRED
    amount[rows] = np.where(level == "violation", over, near).astype(np.int64)

    ratio = flat / amount
    if np.any(np.isin(np.arange(n), rows, invert=True) & (ratio > 0.85)):
        raise AssertionError("a clean budget is too close to its limit")
    if np.any((level == "violation") != (flat[rows] > amount[rows])) or np.any(
        flat[rows] * 10 <= amount[rows] * 9
    ):
        raise AssertionError("an injected budget has the wrong level")

    year = np.repeat(np.array(YEARS), N_DEPTS)
    dept = np.tile(np.arange(N_DEPTS), len(YEARS))
    budget_ids = pa.array(
        [f"BG-{y}-{DEPT_CODES[d]}" for y, d in zip(year.tolist(), dept.tolist(), strict=True)]
    )
    details = join_text(
        pa.array(level.tolist(), type=pa.string()),
        ": spending ",
        decimal_text(flat[rows]),
        pa.array(
            np.where(level == "violation", " exceeds the budget ", " exceeds 90% of the budget ").tolist(),
            type=pa.string(),
        ),
        decimal_text(amount[rows]),
    )
    ctx.truth.add("FIN-001", "budget", budget_ids.take(pa.array(rows)), details)
    return Frame(
        "budget",
        n,
        {
            "id": budget_ids,
            "dept": Pool(DEPT_CODES, dept),
            "year": year.astype(np.int64),
            "amount": amount,
        },
    )
