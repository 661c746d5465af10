"""Suppliers and the purchasing chain, and the PUR rules.

Clean chain: requisition -> dept_head approval -> (large orders: purchase contract approved and signed)
-> central_review approval -> purchase order to a supplier qualified on that day -> goods receipt(s),
signed by the using department and QC -> payment(s) after the first accepted receipt, together at most
97 % of the order (the rest is retention money).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from service.synthetic.clock import (
    AS_OF,
    DAY,
    MINUTE,
    MISSING,
    Arr,
    at,
    cut,
    delay,
    local_day,
    midnight_of_day,
    work_times,
)
from service.synthetic.context import PUR_CONTRACT, Ctx, Picker, at_least_above, away_from
from service.synthetic.contracts import ContractPool, chain
from service.synthetic.frames import APPROVED, REJECTED, Frame, Pool, decimal_text, id_text, ids, join_text
from service.synthetic.org import CATALOGUE, DEPT_CODES, DEPT_INDEX, dept_weights

STABLE, NEW, EXPIRED, UNQUALIFIED = 0, 1, 2, 3
RESULTS = ("accepted", "rejected")
ACCEPTED = 0

REQ_WEIGHTS = {
    "RD": 20,
    "WH": 18,
    "ADM": 15,
    "PUR": 10,
    "QC": 8,
    "MKT": 8,
    "SAL": 6,
    "CS": 5,
    "FIN": 3,
    "HR": 3,
    "LEG": 2,
    "CEN": 2,
}


def _rand_day(rng: np.random.Generator, n: int, first: int, last: int) -> Arr:
    """Random local day numbers between two instants' days (inclusive)."""
    out: Arr = rng.integers(local_day(first), local_day(last) + 1, size=n).astype(np.int64)
    return out


@dataclass
class Suppliers:
    n: int
    cls: Arr
    qualified: Arr
    from_day: Arr
    until_day: Arr
    last_eval: Arr
    dept: Arr

    def valid(self, s: Arr, t: Arr, margin: int = 2 * DAY) -> Arr:
        """Qualified on instant t with a margin of days on both sides of the qualification window."""
        f = self.from_day[s]
        u = self.until_day[s]
        ok_from = (f == MISSING) | (midnight_of_day(np.where(f == MISSING, 0, f)) <= t - margin)
        ok_until = (u == MISSING) | (t + margin < midnight_of_day(np.where(u == MISSING, 0, u)) + DAY)
        out: Arr = self.qualified[s] & ok_from & ok_until
        return out


def build_suppliers(ctx: Ctx) -> Suppliers:
    rng = ctx.rng(20)
    n = ctx.plan.suppliers
    n_unq = max(2, round(0.05 * n))
    n_exp = max(2, round(0.07 * n))
    n_new = max(2, round(0.08 * n))
    cls = rng.permutation(
        np.repeat([STABLE, NEW, EXPIRED, UNQUALIFIED], [n - n_unq - n_exp - n_new, n_new, n_exp, n_unq])
    )
    old = _rand_day(rng, n, at(2019, 1, 1), at(2025, 9, 30))
    from_day = np.where(cls == NEW, _rand_day(rng, n, at(2026, 1, 5), at(2026, 8, 31)), old)
    from_day = np.where((cls == UNQUALIFIED) & (rng.random(n) < 0.5), MISSING, from_day)
    far = np.where(rng.random(n) < 0.5, MISSING, _rand_day(rng, n, at(2027, 1, 1), at(2028, 12, 31)))
    until_day = np.select(
        [cls == EXPIRED, cls == UNQUALIFIED],
        [
            _rand_day(rng, n, at(2026, 1, 15), at(2026, 9, 30)),
            np.where(rng.random(n) < 0.5, MISSING, _rand_day(rng, n, at(2024, 1, 1), at(2025, 10, 15))),
        ],
        far,
    )
    office = rng.integers(10 * 60, 17 * 60, size=n).astype(np.int64) * MINUTE
    recent = midnight_of_day(local_day(AS_OF) - rng.integers(15, 331, size=n)) + office
    at_qualification = midnight_of_day(np.where(from_day == MISSING, 0, from_day)) + office
    old_eval = np.where(
        rng.random(n) < 0.5,
        MISSING,
        midnight_of_day(local_day(AS_OF) - rng.integers(100, 700, size=n)) + office,
    )
    last_eval = np.select([cls == NEW, cls == UNQUALIFIED], [at_qualification, old_eval], recent)
    dept = rng.choice([DEPT_INDEX["PUR"], DEPT_INDEX["RD"], DEPT_INDEX["WH"]], size=n, p=[0.8, 0.1, 0.1])
    return Suppliers(n, cls, cls != UNQUALIFIED, from_day, until_day, last_eval, dept)


def inject_suppliers(ctx: Ctx, sup: Suppliers) -> None:
    """PUR-009: a qualified supplier not evaluated within 365 days."""
    rng = ctx.rng(24)
    picker = Picker(rng, sup.n)
    rows = picker.take((sup.cls == STABLE) | (sup.cls == EXPIRED), ctx.n_inject(int(sup.qualified.sum())))
    v = np.arange(len(rows)) % 3
    office = rng.integers(10 * 60, 17 * 60, size=len(rows)).astype(np.int64) * MINUTE
    stale = midnight_of_day(local_day(AS_OF) - rng.integers(380, 800, size=len(rows))) + office
    sup.last_eval[rows] = np.where(v == 2, MISSING, stale)
    ctx.truth.add(
        "PUR-009",
        "supplier",
        id_text("supplier", rows + 1),
        np.where(v == 2, "never evaluated", "last evaluated more than 365 days ago").tolist(),
    )


def supplier_frame(ctx: Ctx, sup: Suppliers) -> Frame:
    return Frame(
        "supplier",
        sup.n,
        {
            "id": ids("supplier", np.arange(1, sup.n + 1, dtype=np.int64)),
            "name": Pool(ctx.companies, np.arange(sup.n, dtype=np.int64)),
            "dept": Pool(DEPT_CODES, sup.dept),
            "qualified": sup.qualified,
            "qualified_from": sup.from_day,
            "qualified_until": sup.until_day,
            "last_evaluated_at": sup.last_eval,
        },
    )


@dataclass
class Purchasing:
    # requisitions (row i has id number i + 1, in order of requested_at)
    req_dept: Arr
    req_requester: Arr
    req_item: Arr
    req_qty: Arr
    req_budget: Arr
    req_at: Arr
    req_appr_at: Arr
    req_appr_dec: Arr
    # purchase orders (in order of ordered_at)
    po_req: Arr
    po_dept: Arr
    po_buyer: Arr
    po_supplier: Arr
    po_amount: Arr
    po_contract_added: Arr  # index of the contract as added to the pool, or -1
    po_contract: Arr  # final contract row, or -1 (set by `link_contracts`)
    po_at: Arr
    central_at: Arr
    central_dec: Arr
    first_accepted: Arr
    # goods receipts (in order of received_at)
    gr_po: Arr
    gr_at: Arr
    gr_qty: Arr
    gr_result: Arr
    gr_user: Arr
    gr_qc: Arr
    # payments (in order of paid_at)
    pm_po: Arr
    pm_amount: Arr
    pm_at: Arr


def build_purchasing(ctx: Ctx, sup: Suppliers, pool: ContractPool) -> Purchasing:
    rng = ctx.rng(21)
    org = ctx.org
    n = ctx.plan.requisitions
    requested = np.sort(work_times(rng, n))
    dept = rng.choice(len(DEPT_CODES), size=n, p=dept_weights(REQ_WEIGHTS))
    requester = org.random_staff(rng, dept, requested)
    item = rng.integers(0, len(CATALOGUE), size=n)
    unit = np.array([c[2] for c in CATALOGUE])[item]
    lo = np.array([c[3] for c in CATALOGUE])[item]
    hi = np.array([c[4] for c in CATALOGUE])[item]
    qty = np.clip(np.floor(np.exp(rng.uniform(np.log(lo), np.log(hi + 1)))), lo, hi).astype(np.int64)
    amount = np.round(qty * unit * rng.uniform(0.85, 1.05, n) * 100).astype(np.int64)
    amount = away_from(rng, amount, PUR_CONTRACT)
    amount = away_from(rng, amount, 50_000_000)
    amount = at_least_above(rng, amount, PUR_CONTRACT, 6, requested < AS_OF - 60 * DAY)
    budget = (np.ceil(amount / rng.uniform(0.85, 0.97, n) / 100) * 100).astype(np.int64)

    rejected = rng.random(n) < 0.03
    appr_at = requested + delay(rng, n, 2, 48)
    appr_dec = np.where(rejected, REJECTED, APPROVED)
    intent = ~rejected & (rng.random(n) >= 0.02)
    need_contract = intent & (amount > PUR_CONTRACT)
    drafted = appr_at + delay(rng, n, 2, 24)
    times = chain(rng, drafted, amount, np.zeros(n, dtype=bool))
    signed = times["signed"]
    ordered = np.where(need_contract, signed + delay(rng, n, 2, 48), appr_at + delay(rng, n, 24, 144))
    ordered = np.where(need_contract & (signed == MISSING), MISSING, cut(ordered))
    has_po = intent & (ordered != MISSING)

    # A supplier qualified (with margin) when ordering, or when drafting if not ordered yet.
    when = np.where(has_po, ordered, drafted)
    qualified = np.flatnonzero(sup.qualified)
    stable = np.flatnonzero(sup.cls == STABLE)
    supplier = qualified[rng.integers(0, len(qualified), size=n)]
    ok = sup.valid(supplier, when)
    supplier = np.where(ok, supplier, stable[rng.integers(0, len(stable), size=n)])
    if not np.all(sup.valid(supplier, when)):
        raise AssertionError("a clean order went to a supplier not qualified on the day")

    rows_c = np.flatnonzero(need_contract)
    owner = org.staff_of(rng, "PUR", len(rows_c), drafted[rows_c])
    start = pool.add(
        "purchase",
        dept[rows_c],
        supplier[rows_c],
        amount[rows_c],
        owner,
        drafted[rows_c],
        {k: v[rows_c] for k, v in times.items()},
    )
    contract_added = np.full(n, -1, dtype=np.int64)
    contract_added[rows_c] = start + np.arange(len(rows_c))

    req_rows = np.flatnonzero(has_po)
    po_req = req_rows[np.lexsort((req_rows, ordered[req_rows]))]
    n_po = len(po_req)
    po_at = ordered[po_req]
    span = po_at - appr_at[po_req]
    central_at = appr_at[po_req] + (span * rng.uniform(0.3, 0.8, n_po)).astype(np.int64) // MINUTE * MINUTE
    po_amount = amount[po_req]
    po_qty = qty[po_req]

    # goods receipts: one, or two (a partial delivery, or a rejected delivery replaced)
    g = ctx.rng(22)
    first_rejected = g.random(n_po) < 0.05
    two = first_rejected | ((g.random(n_po) < 0.2) & (po_qty >= 2))
    g1 = po_at + delay(g, n_po, 72, 480)
    g2 = g1 + delay(g, n_po, 72, 360)
    q1 = np.where(first_rejected, po_qty, np.where(two, (po_qty + 1) // 2, po_qty))
    q2 = np.where(first_rejected, po_qty, po_qty - q1)
    gr_po = np.concatenate([np.arange(n_po), np.flatnonzero(two)])
    gr_at = np.concatenate([g1, g2[two]])
    gr_qty = np.concatenate([q1, q2[two]])
    gr_result = np.concatenate([np.where(first_rejected, 1, ACCEPTED), np.full(int(two.sum()), ACCEPTED)])
    keep = gr_at <= AS_OF
    order = np.lexsort((gr_po[keep], gr_at[keep]))
    gr_po, gr_at, gr_qty, gr_result = (a[keep][order] for a in (gr_po, gr_at, gr_qty, gr_result))
    first_accepted = cut(np.where(first_rejected, g2, g1))

    # payments: after the first accepted receipt; one (90-97 %) or two (30-60 %, then up to 90-97 %)
    single = g.random(n_po) < 0.6
    p1 = first_accepted + np.where(single, delay(g, n_po, 72, 600), delay(g, n_po, 24, 240))
    total = (po_amount * g.uniform(0.90, 0.97, n_po)).astype(np.int64)
    a1 = np.where(single, total, (po_amount * g.uniform(0.3, 0.6, n_po)).astype(np.int64))
    p2 = p1 + delay(g, n_po, 240, 1440)
    a2 = total - a1
    has_acc = first_accepted != MISSING
    pm_po = np.concatenate([np.arange(n_po), np.flatnonzero(~single)])
    pm_at = np.concatenate([p1, p2[~single]])
    pm_amount = np.concatenate([a1, a2[~single]])
    keep = has_acc[pm_po] & (pm_at <= AS_OF)
    order = np.lexsort((pm_po[keep], pm_at[keep]))
    pm_po, pm_at, pm_amount = (a[keep][order] for a in (pm_po, pm_at, pm_amount))

    return Purchasing(
        req_dept=dept,
        req_requester=requester,
        req_item=item,
        req_qty=qty,
        req_budget=budget,
        req_at=requested,
        req_appr_at=appr_at,
        req_appr_dec=appr_dec,
        po_req=po_req,
        po_dept=dept[po_req],
        po_buyer=org.staff_of(rng, "PUR", n_po, po_at),
        po_supplier=supplier[po_req],
        po_amount=po_amount,
        po_contract_added=contract_added[po_req],
        po_contract=np.full(n_po, -1, dtype=np.int64),
        po_at=po_at,
        central_at=central_at,
        central_dec=np.full(n_po, APPROVED, dtype=np.int64),
        first_accepted=first_accepted,
        gr_po=gr_po,
        gr_at=gr_at,
        gr_qty=gr_qty,
        gr_result=gr_result,
        gr_user=np.ones(len(gr_po), dtype=bool),
        gr_qc=np.ones(len(gr_po), dtype=bool),
        pm_po=pm_po,
        pm_amount=pm_amount,
        pm_at=pm_at,
    )


def link_contracts(p: Purchasing, pool: ContractPool) -> None:
    linked = p.po_contract_added >= 0
    p.po_contract = np.where(linked, pool.position[np.where(linked, p.po_contract_added, 0)], -1)


def _money(fen: Arr) -> Any:
    return decimal_text(np.asarray(fen, dtype=np.int64))


def _po_ids(rows: Arr) -> Any:
    return id_text("purchase_order", rows + 1)


def inject_purchasing(ctx: Ctx, p: Purchasing, sup: Suppliers, pool: ContractPool) -> None:
    rng = ctx.rng(23)
    truth = ctx.truth
    n_po = len(p.po_req)
    picker = Picker(rng, n_po)
    base = p.po_at < AS_OF - 12 * DAY
    has_contract = p.po_contract >= 0
    pay_count = np.bincount(p.pm_po, minlength=n_po)

    # PUR-004: a large order without a contract signed by the time of ordering.
    large = p.po_amount > PUR_CONTRACT
    rows = picker.take(
        base & has_contract & (p.po_amount > PUR_CONTRACT * 1.04), ctx.n_inject(int(large.sum()))
    )
    v = np.arange(len(rows)) % 2
    unlinked = rows[v == 0]
    p.po_contract[unlinked] = -1
    late = rows[v == 1]
    crow = p.po_contract[late]
    c = pool.cols
    c["signed"][crow] = p.po_at[late] + delay(rng, len(late), 24, 96)
    c["filed"][crow] = c["signed"][crow] + delay(rng, len(late), 4, 96)
    c["touched"][crow] = True
    truth.add(
        "PUR-004",
        "purchase_order",
        _po_ids(unlinked),
        join_text("amount ", _money(p.po_amount[unlinked]), " above 50000.00 without a contract"),
    )
    truth.add(
        "PUR-004",
        "purchase_order",
        _po_ids(late),
        join_text("contract ", id_text("contract", crow + 1), " signed after the order"),
    )

    # PUR-008: payments add up to more than the order amount.
    rows = picker.take(base & (pay_count > 0), ctx.n_inject(int((pay_count > 0).sum())))
    target = (p.po_amount[rows] * rng.uniform(1.08, 1.2, len(rows))).astype(np.int64)
    order = np.lexsort((p.pm_at, p.pm_po))
    sorted_po = p.pm_po[order]
    is_last = np.r_[sorted_po[1:] != sorted_po[:-1], True]
    last_of = np.full(n_po, -1, dtype=np.int64)
    last_of[sorted_po[is_last]] = order[is_last]  # each order's latest payment
    paid = np.zeros(n_po, dtype=np.int64)
    np.add.at(paid, p.pm_po, p.pm_amount)
    last = last_of[rows]
    p.pm_amount[last] = target - (paid[rows] - p.pm_amount[last])
    truth.add(
        "PUR-008",
        "purchase_order",
        _po_ids(rows),
        join_text("payments ", _money(target), " exceed the order amount ", _money(p.po_amount[rows])),
    )
    pur008 = np.zeros(n_po, dtype=bool)
    pur008[rows] = True

    # PUR-002: ordered from a supplier not qualified on the day.
    rows = picker.take(base & ~has_contract, ctx.n_inject(n_po))
    v = np.arange(len(rows)) % 3
    t = p.po_at[rows]
    unq = np.flatnonzero(sup.cls == UNQUALIFIED)
    expired = np.flatnonzero(sup.cls == EXPIRED)
    new = np.flatnonzero(sup.cls == NEW)
    pick_unq = unq[rng.integers(0, len(unq), len(rows))]
    pick_exp = expired[rng.integers(0, len(expired), len(rows))]
    pick_new = new[rng.integers(0, len(new), len(rows))]
    exp_ok = t >= midnight_of_day(sup.until_day[pick_exp]) + 3 * DAY
    new_ok = t + 2 * DAY <= midnight_of_day(sup.from_day[pick_new])
    chosen = np.select([(v == 1) & exp_ok, (v == 2) & new_ok], [pick_exp, pick_new], pick_unq)
    kind = np.select([(v == 1) & exp_ok, (v == 2) & new_ok], [1, 2], 0)
    p.po_supplier[rows] = chosen
    if np.any(sup.valid(chosen, t, margin=0)):
        raise AssertionError("PUR-002 injection left a qualified supplier")
    reason = np.array([" not qualified", " qualification expired before the order", " not yet qualified"])[
        kind
    ]
    truth.add(
        "PUR-002",
        "purchase_order",
        _po_ids(rows),
        join_text("supplier ", id_text("supplier", chosen + 1), pa_strings(reason)),
    )

    # PUR-001 / PUR-003: requisition (dept_head) / order (central_review) not approved before ordering.
    for rule, what in (("PUR-001", "requisition dept_head approval"), ("PUR-003", "central_review approval")):
        rows = picker.take(base, ctx.n_inject(n_po))
        v = np.arange(len(rows)) % 3
        late_at = p.po_at[rows] + delay(rng, len(rows), 24, 72)
        if rule == "PUR-001":
            r = p.po_req[rows]
            p.req_appr_at[r] = np.where(v == 0, MISSING, np.where(v == 1, late_at, p.req_appr_at[r]))
            p.req_appr_dec[r] = np.where(v == 2, REJECTED, p.req_appr_dec[r])
        else:
            p.central_at[rows] = np.where(v == 0, MISSING, np.where(v == 1, late_at, p.central_at[rows]))
            p.central_dec[rows] = np.where(v == 2, REJECTED, p.central_dec[rows])
        details = np.array([f"no {what}", f"{what} after the order", f"{what} rejected"])[v]
        truth.add(rule, "purchase_order", _po_ids(rows), details.tolist())

    # PUR-005: the order exceeds its requisition's budget.
    rows = picker.take(base, ctx.n_inject(n_po))
    r = p.po_req[rows]
    p.req_budget[r] = (np.floor(p.po_amount[rows] / rng.uniform(1.08, 1.25, len(rows)) / 100) * 100).astype(
        np.int64
    )
    truth.add(
        "PUR-005",
        "purchase_order",
        _po_ids(rows),
        join_text(
            "amount ", _money(p.po_amount[rows]), " exceeds the requisition budget ", _money(p.req_budget[r])
        ),
    )

    # PUR-006: a goods receipt not signed by the using department or by QC.
    n_gr = len(p.gr_po)
    rows = Picker(rng, n_gr).take(np.ones(n_gr, dtype=bool), ctx.n_inject(n_gr))
    v = np.arange(len(rows)) % 3
    p.gr_user[rows[v != 1]] = False
    p.gr_qc[rows[v != 0]] = False
    details = np.array(["not signed by the using department", "not signed by QC", "signed by neither"])[v]
    truth.add("PUR-006", "goods_receipt", id_text("goods_receipt", rows + 1), details.tolist())

    # PUR-007: a payment before any accepted goods receipt.
    n_pm = len(p.pm_po)
    rows = Picker(rng, n_pm).take(~pur008[p.pm_po], ctx.n_inject(n_pm))
    p.pm_at[rows] = p.first_accepted[p.pm_po[rows]] - delay(rng, len(rows), 24, 48)
    truth.add("PUR-007", "payment", id_text("payment", rows + 1), "paid before any accepted goods receipt")


def pa_strings(values: Arr) -> Any:
    return pa.array(values.tolist(), type=pa.string())


def purchasing_frames(ctx: Ctx, p: Purchasing) -> list[Frame]:
    org = ctx.org
    n_req = len(p.req_at)
    n_po = len(p.po_req)
    req_num = np.arange(1, n_req + 1, dtype=np.int64)
    po_num = np.arange(1, n_po + 1, dtype=np.int64)
    ctx.approvals.add(
        "purchase_requisition", req_num, "dept_head", org.head[p.req_dept], p.req_appr_dec, p.req_appr_at
    )
    ctx.approvals.add(
        "purchase_order", po_num, "central_review", org.central_reviewer, p.central_dec, p.central_at
    )
    items = [c[0] for c in CATALOGUE]
    specs = [c[1] for c in CATALOGUE]
    n_gr = len(p.gr_po)
    n_pm = len(p.pm_po)
    return [
        Frame(
            "purchase_requisition",
            n_req,
            {
                "id": ids("purchase_requisition", req_num),
                "dept": Pool(DEPT_CODES, p.req_dept),
                "requester": Pool(org.names, p.req_requester),
                "item": Pool(items, p.req_item),
                "spec": Pool(specs, p.req_item),
                "quantity": p.req_qty * 100,
                "budget_amount": p.req_budget,
                "requested_at": p.req_at,
            },
        ),
        Frame(
            "purchase_order",
            n_po,
            {
                "id": ids("purchase_order", po_num),
                "dept": Pool(DEPT_CODES, p.po_dept),
                "buyer": Pool(org.names, p.po_buyer),
                "requisition_id": ids("purchase_requisition", p.po_req + 1),
                "supplier_id": ids("supplier", p.po_supplier + 1),
                "amount": p.po_amount,
                "contract_id": ids("contract", np.where(p.po_contract >= 0, p.po_contract + 1, -1)),
                "ordered_at": p.po_at,
            },
        ),
        Frame(
            "goods_receipt",
            n_gr,
            {
                "id": ids("goods_receipt", np.arange(1, n_gr + 1, dtype=np.int64)),
                "dept": Pool(DEPT_CODES, p.po_dept[p.gr_po]),
                "po_id": ids("purchase_order", p.gr_po + 1),
                "received_at": p.gr_at,
                "quantity": p.gr_qty * 100,
                "result": Pool(RESULTS, p.gr_result),
                "user_dept_signed": p.gr_user,
                "qc_signed": p.gr_qc,
            },
        ),
        Frame(
            "payment",
            n_pm,
            {
                "id": ids("payment", np.arange(1, n_pm + 1, dtype=np.int64)),
                "dept": Pool(DEPT_CODES, p.po_dept[p.pm_po]),
                "po_id": ids("purchase_order", p.pm_po + 1),
                "amount": p.pm_amount,
                "paid_at": p.pm_at,
            },
        ),
    ]
