"""Warehouses and monthly inventory counts (INV rules); customer complaints (CS rules).

Inventory: every warehouse counts each of its SKUs between the 24th and 28th of every month; a count
differing from the books by 5 % or more is explained and adjusted within 5 days, a difference of at most
1 % is within tolerance. Complaints: forwarded within 20 hours, resolved within 6 days, followed up
within 2.5 days of resolution.
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
    PERIOD_END,
    PERIOD_START,
    Arr,
    at,
    cut,
    delay,
    work_times,
)
from service.synthetic.context import Ctx, Picker
from service.synthetic.frames import Frame, Pool, id_text, ids, ids_text
from service.synthetic.org import (
    DEPT_CODES,
    DEPT_INDEX,
    DISCREPANCY_NOTES,
    SURNAMES,
    WAREHOUSE_NAMES,
    dept_weights,
)

MONTHS = tuple((2025 + (10 + m) // 12, (10 + m) % 12 + 1) for m in range(12))  # 2025-11 .. 2026-10
LAST_MONTH = 11  # 2026-10: the last complete calendar month before as_of
# An open deadline: a spot count a few days before as_of, not yet explained or adjusted (due in 7 days).
SPOT_COUNT = at(2026, 11, 5, 10, 0)


def warehouse_ids(rows: Arr) -> Any:
    return pa.array([f"WH-{int(r) + 1:02d}" for r in rows], type=pa.string())


@dataclass
class Inventory:
    n_warehouses: int
    keeper: Arr
    warehouse: Arr
    sku: Arr
    counted_by: Arr
    counted_at: Arr
    system_qty: Arr
    counted_qty: Arr
    explanation: Arr
    adjusted_at: Arr
    discrepant: Arr
    fixture: Arr


def build_inventory(ctx: Ctx) -> Inventory:
    rng = ctx.rng(40)
    n_wh = ctx.plan.warehouses
    k = ctx.plan.skus
    keeper = ctx.org.staff_of(rng, "WH", n_wh, np.full(n_wh, PERIOD_START))
    # one counting day (24th-28th, a working day) and counting team per warehouse and month
    starts = np.empty((n_wh, 12), dtype=np.int64)
    for m, (yy, mm) in enumerate(MONTHS):
        starts[:, m] = work_times(rng, n_wh, at(yy, mm, 24), at(yy, mm, 28) + DAY, 9.0, 10.0)
    counter = ctx.org.staff_of(rng, "WH", n_wh * 12, starts.reshape(-1)).reshape(n_wh, 12)
    wh = np.repeat(np.arange(n_wh), 12 * k)
    month = np.tile(np.repeat(np.arange(12), k), n_wh)
    item = np.tile(np.arange(k), n_wh * 12)
    base = np.maximum(20, np.round(np.exp(rng.normal(np.log(300.0), 1.0, (n_wh, k))))).astype(np.int64)
    n = len(wh)
    system = np.maximum(20, np.round(base[wh, item] * rng.uniform(0.6, 1.4, n))).astype(np.int64)
    kind = rng.random(n)
    discrepant = kind < 0.08
    early = starts[wh, month] < AS_OF - 40 * DAY
    if int((discrepant & early).sum()) < 3:
        discrepant[rng.choice(np.flatnonzero(early & ~discrepant), size=3, replace=False)] = True
    small = (kind >= 0.08) & (kind < 0.15)
    sign = np.where(rng.random(n) < 0.6, -1, 1)
    big_diff = np.maximum(np.ceil(system * 0.05), np.round(system * rng.uniform(0.05, 0.3, n))).astype(
        np.int64
    )
    small_diff = np.floor(system * 0.01 * rng.random(n)).astype(np.int64)
    counted = system + sign * np.where(discrepant, big_diff, np.where(small, small_diff, 0))
    counted_at = starts[wh, month] + (item % 240) * 2 * MINUTE
    explanation = np.where(discrepant, rng.integers(0, len(DISCREPANCY_NOTES), n), -1)
    adjusted = cut(np.where(discrepant, counted_at + delay(rng, n, 24, 120), MISSING))
    counted_by = counter[wh, month]
    sku = 100001 + wh * k // 2 + item

    # the open spot count
    wh = np.append(wh, 0)
    month = np.append(month, 12)
    sku = np.append(sku, sku[0])
    counted_by = np.append(counted_by, keeper[0])
    counted_at = np.append(counted_at, SPOT_COUNT)
    system = np.append(system, 200)
    counted = np.append(counted, 180)
    explanation = np.append(explanation, -1)
    adjusted = np.append(adjusted, MISSING)
    discrepant = np.append(discrepant, True)
    fixture = np.arange(n + 1) == n

    # INV-001: a warehouse without a count in the last complete month
    chosen = Picker(ctx.rng(41), n_wh).take(np.ones(n_wh, dtype=bool), ctx.n_inject(n_wh))
    ctx.truth.add("INV-001", "warehouse", warehouse_ids(chosen), "no inventory count in 2026-10")
    keep = ~(np.isin(wh, chosen) & (month == LAST_MONTH))

    order = np.lexsort((sku[keep], wh[keep], counted_at[keep]))
    cols = [a[keep][order] for a in (wh, sku, counted_by, counted_at, system, counted)]
    rest = [a[keep][order] for a in (explanation, adjusted, discrepant, fixture)]
    return Inventory(n_wh, keeper, *cols, *rest)


def inject_inventory(ctx: Ctx, inv: Inventory) -> None:
    """INV-002: a discrepancy not adjusted within 7 days, or never explained."""
    rng = ctx.rng(42)
    n = len(inv.warehouse)
    eligible = inv.discrepant & ~inv.fixture & (inv.counted_at < AS_OF - 12 * DAY)
    rows = Picker(rng, n).take(eligible, ctx.n_inject(int(inv.discrepant.sum())))
    v = np.arange(len(rows)) % 3
    late = cut(inv.counted_at[rows] + delay(rng, len(rows), 9 * 24, 20 * 24))
    inv.adjusted_at[rows] = np.where(v == 0, late, np.where(v == 1, MISSING, inv.adjusted_at[rows]))
    inv.explanation[rows[v == 2]] = -1
    details = np.array(["adjusted more than 7 days after the count", "not adjusted", "not explained"])[v]
    ctx.truth.add("INV-002", "inventory_count", id_text("inventory_count", rows + 1), details.tolist())


def inventory_frames(ctx: Ctx, inv: Inventory) -> list[Frame]:
    n = len(inv.warehouse)
    wh_dept = np.full(inv.n_warehouses, DEPT_INDEX["WH"], dtype=np.int64)
    return [
        Frame(
            "warehouse",
            inv.n_warehouses,
            {
                "id": warehouse_ids(np.arange(inv.n_warehouses)),
                "dept": Pool(DEPT_CODES, wh_dept),
                "name": Pool(WAREHOUSE_NAMES, np.arange(inv.n_warehouses)),
                "keeper": Pool(ctx.org.names, inv.keeper),
            },
        ),
        Frame(
            "inventory_count",
            n,
            {
                "id": ids("inventory_count", np.arange(1, n + 1, dtype=np.int64)),
                "dept": Pool(DEPT_CODES, wh_dept[inv.warehouse]),
                "warehouse": warehouse_ids(np.arange(inv.n_warehouses)).take(pa.array(inv.warehouse)),
                "sku": ids_text("SKU", inv.sku, 6),
                "counted_by": Pool(ctx.org.names, inv.counted_by),
                "counted_at": inv.counted_at,
                "system_qty": inv.system_qty * 100,
                "counted_qty": inv.counted_qty * 100,
                "explanation": Pool(DISCREPANCY_NOTES, inv.explanation),
                "adjusted_at": inv.adjusted_at,
            },
        ),
    ]


CHANNELS = ("phone", "email", "web", "store", "social")
CHANNEL_P = (0.35, 0.10, 0.25, 0.10, 0.20)
SATISFACTION_P = (0.05, 0.07, 0.18, 0.40, 0.30)
# Open deadlines near as_of: (received, forwarded, resolved); later steps not done yet.
COMPLAINT_FIXTURES = (
    (at(2026, 11, 9, 20, 0), MISSING, MISSING),
    (at(2026, 11, 6, 11, 30), at(2026, 11, 6, 15, 0), MISSING),
    (at(2026, 11, 2, 9, 40), at(2026, 11, 2, 13, 0), at(2026, 11, 8, 16, 0)),
)


@dataclass
class Complaints:
    dept: Arr
    handler: Arr
    customer: Arr
    channel: Arr
    received: Arr
    forwarded: Arr
    resolved: Arr
    followed: Arr
    satisfaction: Arr
    fixture: Arr
    customers: list[str]


def build_complaints(ctx: Ctx, n_main: int) -> Complaints:
    rng = ctx.rng(50)
    n = n_main + len(COMPLAINT_FIXTURES)
    days = np.arange((PERIOD_END - PERIOD_START) // DAY)
    received = np.sort(
        PERIOD_START + rng.choice(days, n_main) * DAY + rng.integers(8 * 60, 22 * 60, n_main) * MINUTE
    ).astype(np.int64)
    received = np.concatenate([received, [f[0] for f in COMPLAINT_FIXTURES]])
    fixture = np.arange(n) >= n_main
    dept = rng.choice(len(DEPT_CODES), size=n, p=dept_weights({"CS": 60, "QC": 15, "SAL": 15, "WH": 10}))
    handler = ctx.org.random_staff(rng, dept, received)
    persons = [s + title for s in SURNAMES for title in ("先生", "女士")]
    firms = ctx.companies[ctx.plan.suppliers :]
    customers = persons + firms
    customer = np.where(
        rng.random(n) < 0.7,
        rng.integers(0, len(persons), n),
        len(persons) + rng.integers(0, len(firms), n),
    )
    channel = rng.choice(len(CHANNELS), size=n, p=np.array(CHANNEL_P))
    forwarded = received + delay(rng, n, 0.25, 20)
    resolved = forwarded + delay(rng, n, 2, 120)
    followed = resolved + delay(rng, n, 2, 60)
    satisfaction = 1 + rng.choice(5, size=n, p=np.array(SATISFACTION_P))
    for i, (_, fwd, res) in enumerate(COMPLAINT_FIXTURES):
        forwarded[n_main + i] = fwd
        resolved[n_main + i] = res
        followed[n_main + i] = MISSING
    forwarded = cut(forwarded)
    resolved = cut(np.where(forwarded == MISSING, MISSING, resolved))
    followed = cut(np.where(resolved == MISSING, MISSING, followed))
    satisfaction = np.where(followed == MISSING, MISSING, satisfaction)
    return Complaints(
        dept,
        handler,
        customer,
        channel,
        received,
        forwarded,
        resolved,
        followed,
        satisfaction,
        fixture,
        customers,
    )


def inject_complaints(ctx: Ctx, c: Complaints) -> None:
    rng = ctx.rng(51)
    n = len(c.received)
    picker = Picker(rng, n)
    eligible = ~c.fixture & (c.received < AS_OF - 25 * DAY)

    # CS-001: forwarded more than a day after receipt (resolution and follow-up still on time)
    rows = picker.take(eligible, ctx.n_inject(n))
    m = len(rows)
    c.forwarded[rows] = c.received[rows] + delay(rng, m, 48, 96)
    c.resolved[rows] = c.forwarded[rows] + delay(rng, m, 2, 48)
    c.followed[rows] = c.resolved[rows] + delay(rng, m, 2, 60)
    ctx.truth.add("CS-001", "complaint", _complaint_ids(rows), "forwarded more than 1 day after receipt")

    # CS-002: resolved more than 7 days after receipt, or not resolved at all
    rows = picker.take(eligible, ctx.n_inject(n))
    m = len(rows)
    v = np.arange(m) % 2
    resolved = c.received[rows] + delay(rng, m, 8.5 * 24, 20 * 24)
    c.resolved[rows] = np.where(v == 0, resolved, MISSING)
    c.followed[rows] = np.where(v == 0, resolved + delay(rng, m, 2, 60), MISSING)
    c.satisfaction[rows] = np.where(v == 0, c.satisfaction[rows], MISSING)
    ctx.truth.add(
        "CS-002",
        "complaint",
        _complaint_ids(rows),
        np.where(v == 0, "resolved more than 7 days after receipt", "not resolved").tolist(),
    )

    # CS-003: followed up more than 3 days after resolution, or never
    resolved_mask = c.resolved != MISSING
    rows = picker.take(eligible & resolved_mask, ctx.n_inject(int(resolved_mask.sum())))
    m = len(rows)
    v = np.arange(m) % 2
    c.followed[rows] = np.where(v == 0, c.resolved[rows] + delay(rng, m, 4 * 24, 12 * 24), MISSING)
    c.satisfaction[rows[v == 1]] = MISSING
    ctx.truth.add(
        "CS-003",
        "complaint",
        _complaint_ids(rows),
        np.where(v == 0, "followed up more than 3 days after resolution", "not followed up").tolist(),
    )


def _complaint_ids(rows: Arr) -> Any:
    return id_text("complaint", rows + 1)


def complaint_frame(ctx: Ctx, c: Complaints) -> Frame:
    n = len(c.received)
    return Frame(
        "complaint",
        n,
        {
            "id": ids("complaint", np.arange(1, n + 1, dtype=np.int64)),
            "dept": Pool(DEPT_CODES, c.dept),
            "handler": Pool(ctx.org.names, c.handler),
            "customer": Pool(c.customers, c.customer),
            "channel": Pool(CHANNELS, c.channel),
            "received_at": c.received,
            "forwarded_at": c.forwarded,
            "resolved_at": c.resolved,
            "followed_up_at": c.followed,
            "satisfaction": c.satisfaction,
        },
    )
