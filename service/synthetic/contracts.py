"""Contracts (sales, purchase, other), their legal / finance / general-manager approvals, CON rules.

Clean chain: drafted -> legal (sometimes rejected once, then approved) -> finance -> general manager
(amount > 500000.00) -> signed -> filed within 5 days. Purchase contracts come from purchasing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from service.synthetic.clock import (
    AS_OF,
    DAY,
    MISSING,
    PERIOD_END,
    PERIOD_START,
    Arr,
    at,
    cut,
    delay,
    work_times,
)
from service.synthetic.context import CON_MAJOR, Ctx, Picker, at_least_above, away_from
from service.synthetic.frames import APPROVED, REJECTED, Frame, Pool, id_text, ids
from service.synthetic.org import DEPT_CODES, dept_weights

KINDS = ("sales", "purchase", "other")
COLUMNS = (
    "kind",
    "dept",
    "counterparty",
    "amount",
    "owner",
    "drafted",
    "legal_rej",
    "legal",
    "fin",
    "gm",
    "signed",
    "filed",
    "legal_dec",
    "fin_dec",
    "gm_dec",
    "fixture",
    "touched",
)


def chain(rng: np.random.Generator, drafted: Arr, amount: Arr, unsigned: Arr) -> dict[str, Arr]:
    """Approval and signing instants after `drafted`; anything after as_of has not happened yet."""
    n = len(drafted)
    rejected_once = rng.random(n) < 0.03
    legal_rej = drafted + delay(rng, n, 4, 24)
    legal = np.where(rejected_once, legal_rej + delay(rng, n, 24, 72), drafted + delay(rng, n, 4, 48))
    fin = legal + delay(rng, n, 2, 36)
    need_gm = amount > CON_MAJOR
    gm = fin + delay(rng, n, 2, 48)
    last = np.where(need_gm, gm, fin)
    signed = last + delay(rng, n, 4, 72)
    filed = signed + delay(rng, n, 4, 120)
    return {
        "legal_rej": cut(np.where(rejected_once, legal_rej, MISSING)),
        "legal": cut(legal),
        "fin": cut(np.where(unsigned, MISSING, fin)),
        "gm": cut(np.where(need_gm & ~unsigned, gm, MISSING)),
        "signed": cut(np.where(unsigned, MISSING, signed)),
        "filed": cut(np.where(unsigned, MISSING, filed)),
        "legal_dec": np.full(n, APPROVED, dtype=np.int64),
        "fin_dec": np.full(n, APPROVED, dtype=np.int64),
        "gm_dec": np.full(n, APPROVED, dtype=np.int64),
    }


class ContractPool:
    """All contracts; purchasing adds purchase contracts, then `finalize` orders them and gives ids."""

    def __init__(self) -> None:
        self._parts: list[dict[str, Arr]] = []
        self.cols: dict[str, Arr] = {}
        self.position: Arr = np.zeros(0, dtype=np.int64)  # added index -> final row
        self.n = 0

    def add(
        self,
        kind: str,
        dept: Arr,
        counterparty: Arr,
        amount: Arr,
        owner: Arr,
        drafted: Arr,
        times: dict[str, Arr],
        fixture: Arr | None = None,
    ) -> int:
        """Add contracts; returns the index (in order of adding) of the first one."""
        start = sum(len(p["kind"]) for p in self._parts)
        n = len(dept)
        part = {
            "kind": np.full(n, KINDS.index(kind), dtype=np.int64),
            "dept": dept,
            "counterparty": counterparty,
            "amount": amount,
            "owner": owner,
            "drafted": drafted,
            "fixture": np.zeros(n, dtype=bool) if fixture is None else fixture,
            "touched": np.zeros(n, dtype=bool),
            **times,
        }
        self._parts.append(part)
        return start

    def finalize(self) -> None:
        cols = {c: np.concatenate([p[c] for p in self._parts]) for c in COLUMNS}
        order = np.lexsort((np.arange(len(cols["kind"])), cols["drafted"]))
        self.cols = {c: v[order] for c, v in cols.items()}
        self.position = np.empty(len(order), dtype=np.int64)
        self.position[order] = np.arange(len(order))
        self.n = len(order)


def build_contracts(ctx: Ctx, pool: ContractPool) -> None:
    """Sales and other contracts (purchase contracts were added by purchasing)."""
    rng = ctx.rng(30)
    org = ctx.org
    n_suppliers = ctx.plan.suppliers
    n_customers = len(ctx.companies) - n_suppliers
    for kind, n, weights, median, sigma in (
        ("sales", ctx.plan.sales_contracts, {"SAL": 80, "MKT": 10, "CS": 10}, 150_000.0, 1.1),
        (
            "other",
            ctx.plan.other_contracts,
            {"ADM": 40, "RD": 25, "HR": 15, "MKT": 10, "LEG": 10},
            60_000.0,
            1.0,
        ),
    ):
        dept = rng.choice(len(DEPT_CODES), size=n, p=dept_weights(weights))
        counterparty = n_suppliers + rng.integers(0, n_customers, size=n)
        amount = np.round(np.exp(rng.normal(np.log(median), sigma, n)) * 100).astype(np.int64)
        amount = np.clip(amount, 500_000, 900_000_000)
        amount = away_from(rng, amount, CON_MAJOR)
        drafted = work_times(rng, n, PERIOD_START, PERIOD_END)
        fixture = np.zeros(n, dtype=bool)
        if kind == "sales":
            # An open deadline: signed a few days before as_of, not filed yet (due within 7 days).
            fixture[0] = True
            drafted[0] = at(2026, 10, 27, 10, 0)
            amount[0] = 12_000_000
            amount = at_least_above(rng, amount, CON_MAJOR, 4, (drafted < AS_OF - 40 * DAY) & ~fixture)
        owner = org.random_staff(rng, dept, drafted)
        unsigned = (rng.random(n) < 0.04) & ~fixture
        times = chain(rng, drafted, amount, unsigned)
        if kind == "sales":
            times["signed"][0] = at(2026, 11, 6, 15, 0)
            times["filed"][0] = MISSING
        pool.add(kind, dept, counterparty, amount, owner, drafted, times, fixture)


def inject_contracts(ctx: Ctx, pool: ContractPool) -> None:
    rng = ctx.rng(31)
    c = pool.cols
    signed = c["signed"] != MISSING
    picker = Picker(rng, pool.n)
    eligible = signed & ~c["fixture"] & ~c["touched"] & (c["signed"] < AS_OF - 10 * DAY)
    picker.used |= c["touched"]
    major = c["amount"] > CON_MAJOR

    # CON-003: a major contract signed without the general manager's approval before signing.
    rows = picker.take(
        eligible & major & (c["amount"] > CON_MAJOR * 1.04), ctx.n_inject(int((signed & major).sum()))
    )
    v = np.arange(len(rows)) % 2
    c["gm"][rows[v == 0]] = MISSING
    late = rows[v == 1]
    c["gm"][late] = c["signed"][late] + delay(rng, len(late), 24, 96)
    ctx.truth.add(
        "CON-003",
        "contract",
        _contract_ids(rows),
        np.where(
            v == 0,
            "no general_manager approval of a major contract",
            "general_manager approved after signing",
        )
        .astype(object)
        .tolist(),
    )

    n_signed = int(signed.sum())
    for rule, step, who in (("CON-001", "legal", "legal"), ("CON-002", "fin", "finance")):
        rows = picker.take(eligible, ctx.n_inject(n_signed))
        v = np.arange(len(rows)) % 3
        c[step][rows[v == 0]] = MISSING
        late = rows[v == 1]
        c[step][late] = c["signed"][late] + delay(rng, len(late), 24, 96)
        c[f"{step}_dec"][rows[v == 2]] = REJECTED
        details = np.array(
            [f"no {who} approval", f"{who} approved after signing", f"{who} approval rejected"], dtype=object
        )[v]
        ctx.truth.add(rule, "contract", _contract_ids(rows), details.tolist())

    # CON-004: filed more than 7 days after signing, or not filed at all.
    rows = picker.take(eligible, ctx.n_inject(n_signed))
    v = np.arange(len(rows)) % 2
    filed_late = c["signed"][rows] + delay(rng, len(rows), 9 * 24, 30 * 24)
    c["filed"][rows] = np.where(v == 0, cut(filed_late), MISSING)
    ctx.truth.add(
        "CON-004",
        "contract",
        _contract_ids(rows),
        np.where(v == 0, "filed more than 7 days after signing", "not filed").astype(object).tolist(),
    )


def _contract_ids(rows: Arr) -> Any:
    return id_text("contract", rows + 1)


def contract_frame(ctx: Ctx, pool: ContractPool) -> Frame:
    c = pool.cols
    org = ctx.org
    num = np.arange(1, pool.n + 1, dtype=np.int64)
    ap = ctx.approvals
    ap.add("contract", num, "legal", org.legal_reviewer, REJECTED, c["legal_rej"])
    ap.add("contract", num, "legal", org.legal_reviewer, c["legal_dec"], c["legal"])
    ap.add("contract", num, "finance", org.finance_reviewer, c["fin_dec"], c["fin"])
    ap.add("contract", num, "general_manager", org.general_manager, c["gm_dec"], c["gm"])
    return Frame(
        "contract",
        pool.n,
        {
            "id": ids("contract", num),
            "dept": Pool(DEPT_CODES, c["dept"]),
            "counterparty": Pool(ctx.companies, c["counterparty"]),
            "kind": Pool(KINDS, c["kind"]),
            "amount": c["amount"],
            "owner": Pool(org.names, c["owner"]),
            "drafted_at": c["drafted"],
            "signed_at": c["signed"],
            "filed_at": c["filed"],
        },
    )
