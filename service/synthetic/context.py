"""What every part of the generator shares: the seed's random streams, sizes, people, collectors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.synthetic.clock import Arr
from service.synthetic.frames import Approvals, GroundTruth
from service.synthetic.org import Org

# Amount thresholds (hundredths of a yuan) and day counts: the rule parameters' defaults.
EXP_DIVISION_LEADER = 500_000
EXP_GENERAL_MANAGER = 2_000_000
PUR_CONTRACT = 5_000_000
CON_MAJOR = 50_000_000


@dataclass(frozen=True)
class Plan:
    """Target sizes for one run, derived from the number of records requested."""

    staff: int
    claims: int
    requisitions: int
    sales_contracts: int
    other_contracts: int
    suppliers: int
    warehouses: int
    skus: int
    hires: int

    @staticmethod
    def for_records(records: int) -> Plan:
        """Sizes whose total (with complaints filling up) comes close to `records`.

        Reviews, inventory counts, suppliers, hires, departments and budgets grow slowly (with the
        head count and the warehouses); the transactional types share what is left.
        """
        n = max(records, 0)
        staff = max(36, n // 150)
        warehouses = min(8, 3 + n // 200_000)
        skus = max(2, round(n * 0.05 / (warehouses * 12)))
        suppliers = max(24, n // 1000)
        hires = max(8, round(staff * 0.15))
        fixed = 12 + 24 + warehouses + suppliers + hires + 0.97 * 4 * staff + warehouses * 12 * skus
        rest = max(n - fixed, 0.3 * n)
        return Plan(
            staff=staff,
            claims=max(40, round(rest * 0.162)),
            requisitions=max(20, round(rest * 0.0498)),
            sales_contracts=max(8, round(rest * 0.0065)),
            other_contracts=max(3, round(rest * 0.0016)),
            suppliers=suppliers,
            warehouses=warehouses,
            skus=skus,
            hires=hires,
        )


@dataclass
class Ctx:
    seed: int
    records: int
    rate: float
    org: Org
    plan: Plan
    companies: list[str]  # suppliers first, then customers
    truth: GroundTruth
    approvals: Approvals

    def rng(self, stream: int) -> np.random.Generator:
        """An independent random stream per part, so parts do not disturb one another."""
        return np.random.default_rng([self.seed, stream])

    def n_inject(self, n_subjects: int) -> int:
        """How many subject records of a rule get a violation."""
        if self.rate <= 0 or n_subjects <= 0:
            return 0
        n = round(self.rate * n_subjects)
        if self.records >= 2000:
            n = max(n, 1)
        return min(n, n_subjects)


class Picker:
    """Draws disjoint sets of rows of one table, so each injected record breaks exactly one rule."""

    def __init__(self, rng: np.random.Generator, n: int) -> None:
        self.rng = rng
        self.used = np.zeros(n, dtype=bool)

    def take(self, eligible: Arr, n: int) -> Arr:
        candidates = np.flatnonzero(eligible & ~self.used)
        k = min(n, len(candidates))
        chosen: Arr = np.sort(self.rng.choice(candidates, size=k, replace=False)) if k else candidates[:0]
        self.used[chosen] = True
        return chosen


def away_from(rng: np.random.Generator, fen: Arr, threshold: int, band: float = 0.03) -> Arr:
    """Move amounts within ±band of a threshold clearly to one side (4-10 % away)."""
    near = np.abs(fen - threshold) <= threshold * band
    below = rng.random(len(fen)) < 0.5
    low = (threshold * rng.uniform(0.90, 0.96, len(fen))).astype(np.int64)
    high = (threshold * rng.uniform(1.04, 1.10, len(fen))).astype(np.int64)
    out: Arr = np.where(near, np.where(below, low, high), fen)
    return out


def at_least_above(
    rng: np.random.Generator, fen: Arr, threshold: int, k: int, eligible: Arr | None = None
) -> Arr:
    """Make sure at least `k` amounts (among eligible rows) are clearly above a threshold."""
    ok = np.ones(len(fen), dtype=bool) if eligible is None else eligible
    above = (fen > threshold * 1.04) & ok
    missing = k - int(above.sum())
    if missing <= 0:
        return fen
    candidates = np.flatnonzero(ok & ~above)
    chosen = rng.choice(candidates, size=min(missing, len(candidates)), replace=False)
    out = fen.copy()
    out[chosen] = (threshold * rng.uniform(1.2, 2.5, len(chosen))).astype(np.int64)
    return out
