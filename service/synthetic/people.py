"""Hires (HR-001..003) and quarterly performance reviews (HR-004).

Clean hire: background check 3-20 days and medical exam 1-10 days before the first day, labour
contract within 3 days and onboarding training within 8 days after it. Clean review: a failing grade
is followed by an improvement interview within 12 days.
"""

from __future__ import annotations

from dataclasses import dataclass
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
from service.synthetic.context import Ctx, Picker
from service.synthetic.frames import APPROVED, Frame, Pool, id_text, ids
from service.synthetic.org import DEPT_CODES

# An open deadline: hired a week before as_of, labour contract and training not done yet.
HIRE_FIXTURE = at(2026, 11, 2, 9, 0)
GRADES = ("excellent", "good", "pass", "fail")
GRADE_P = (0.15, 0.45, 0.35, 0.05)
FAIL = 3
# period, end of the period, review window
QUARTERS = (
    ("2025-Q4", at(2026, 1, 1), at(2026, 1, 5), at(2026, 1, 24)),
    ("2026-Q1", at(2026, 4, 1), at(2026, 4, 7), at(2026, 4, 25)),
    ("2026-Q2", at(2026, 7, 1), at(2026, 7, 6), at(2026, 7, 25)),
    ("2026-Q3", at(2026, 10, 1), at(2026, 10, 9), at(2026, 10, 31)),
)
# An open deadline: failed on 2026-10-29, improvement interview due within 15 days.
REVIEW_FIXTURE = at(2026, 10, 29, 15, 0)


@dataclass
class Hires:
    staff_pos: Arr  # position in org.staff
    dept: Arr
    employee: Arr
    officer: Arr
    hired: Arr
    background: Arr
    medical: Arr
    contract: Arr
    training: Arr
    approved: Arr
    fixture: Arr


def hire_times(rng: np.random.Generator, n_main: int) -> Arr:
    """First days of the staff who join during the period (sorted), and the open-deadline hire last."""
    out: Arr = np.concatenate(
        [np.sort(work_times(rng, n_main, PERIOD_START, PERIOD_END, 9.0, 9.5)), [HIRE_FIXTURE]]
    )
    return out


def build_hires(ctx: Ctx) -> Hires:
    rng = ctx.rng(60)
    org = ctx.org
    pos = org.hire_pos
    n = len(pos)
    hired = org.joined[pos]
    fixture = hired == HIRE_FIXTURE
    contract = hired + delay(rng, n, 0.5, 72)
    training = hired + delay(rng, n, 24, 8 * 24)
    contract[fixture] = MISSING
    training[fixture] = MISSING
    return Hires(
        staff_pos=pos,
        dept=org.staff_dept[pos],
        employee=org.staff[pos],
        officer=org.staff_of(rng, "HR", n, hired),
        hired=hired,
        background=hired - delay(rng, n, 3 * 24, 20 * 24),
        medical=hired - delay(rng, n, 24, 10 * 24),
        contract=cut(contract),
        training=cut(training),
        approved=hired - delay(rng, n, 10 * 24, 40 * 24),
        fixture=fixture,
    )


def _hire_ids(rows: Arr) -> Any:
    return id_text("hire", rows + 1)


def inject_hires(ctx: Ctx, h: Hires) -> None:
    rng = ctx.rng(61)
    n = len(h.hired)
    picker = Picker(rng, n)
    eligible = ~h.fixture & (h.hired < AS_OF - 40 * DAY)

    rows = picker.take(eligible, ctx.n_inject(n))
    v = np.arange(len(rows)) % 4
    after_start = h.hired[rows] + delay(rng, len(rows), 24, 240)
    h.background[rows] = np.select([v == 0, v == 1], [MISSING, after_start], h.background[rows])
    h.medical[rows] = np.select([v == 2, v == 3], [MISSING, after_start], h.medical[rows])
    details = np.array(
        [
            "no background check",
            "background check after hiring",
            "no medical exam",
            "medical exam after hiring",
        ]
    )[v]
    ctx.truth.add("HR-001", "hire", _hire_ids(rows), details.tolist())

    for rule, step, days, what in (
        ("HR-002", h.contract, 30, "labour contract"),
        ("HR-003", h.training, 14, "onboarding training"),
    ):
        rows = picker.take(eligible, ctx.n_inject(n))
        step[rows] = cut(h.hired[rows] + delay(rng, len(rows), (days + 3) * 24, (days + 60) * 24))
        details = np.where(step[rows] == MISSING, f"no {what}", f"{what} more than {days} days after hiring")
        ctx.truth.add(rule, "hire", _hire_ids(rows), details.tolist())


def hire_frame(ctx: Ctx, h: Hires) -> Frame:
    n = len(h.hired)
    num = np.arange(1, n + 1, dtype=np.int64)
    ctx.approvals.add("hire", num, "dept_head", ctx.org.head[h.dept], APPROVED, h.approved)
    return Frame(
        "hire",
        n,
        {
            "id": ids("hire", num),
            "dept": Pool(DEPT_CODES, h.dept),
            "employee": Pool(ctx.org.names, h.employee),
            "hr_officer": Pool(ctx.org.names, h.officer),
            "hired_at": h.hired,
            "background_check_at": h.background,
            "medical_exam_at": h.medical,
            "contract_signed_at": h.contract,
            "onboarding_training_at": h.training,
        },
    )


@dataclass
class Reviews:
    dept: Arr
    employee: Arr
    period: Arr
    grade: Arr
    reviewed: Arr
    interview: Arr
    fixture: Arr


def build_reviews(ctx: Ctx, h: Hires) -> Reviews:
    rng = ctx.rng(70)
    org = ctx.org
    joined = np.full(len(org.staff), MISSING, dtype=np.int64)  # MISSING: employed before the period
    joined[h.staff_pos] = h.hired
    parts: list[tuple[Arr, Arr, Arr]] = []
    for q, (_, end, first, last) in enumerate(QUARTERS):
        who = np.flatnonzero((joined == MISSING) | (joined <= end - 30 * DAY))
        parts.append((who, np.full(len(who), q), work_times(rng, len(who), first, last)))
    pos = np.concatenate([p[0] for p in parts])
    period = np.concatenate([p[1] for p in parts])
    reviewed = np.concatenate([p[2] for p in parts])
    n = len(pos)
    grade = rng.choice(len(GRADES), size=n, p=np.array(GRADE_P))
    early = reviewed < AS_OF - 30 * DAY
    if int(((grade == FAIL) & early).sum()) < 4:
        extra = rng.choice(np.flatnonzero(early & (grade != FAIL)), size=4, replace=False)
        grade[extra] = FAIL
    fixture = np.zeros(n, dtype=bool)
    last_q = np.flatnonzero(period == len(QUARTERS) - 1)
    f = last_q[0]
    fixture[f] = True
    reviewed[f] = REVIEW_FIXTURE
    grade[f] = FAIL
    interview = np.where(grade == FAIL, cut(reviewed + delay(rng, n, 48, 288)), MISSING)
    interview[f] = MISSING
    order = np.lexsort((pos, reviewed))
    return Reviews(
        dept=org.staff_dept[pos][order],
        employee=org.staff[pos][order],
        period=period[order],
        grade=grade[order],
        reviewed=reviewed[order],
        interview=interview[order],
        fixture=fixture[order],
    )


def inject_reviews(ctx: Ctx, r: Reviews) -> None:
    """HR-004: a failing grade without an improvement interview within 15 days."""
    rng = ctx.rng(71)
    fail = r.grade == FAIL
    rows = Picker(rng, len(r.grade)).take(
        fail & ~r.fixture & (r.reviewed < AS_OF - 20 * DAY), ctx.n_inject(int(fail.sum()))
    )
    r.interview[rows] = cut(r.reviewed[rows] + delay(rng, len(rows), 17 * 24, 40 * 24))
    r.interview[rows[np.arange(len(rows)) % 2 == 1]] = MISSING
    details = np.where(
        r.interview[rows] == MISSING, "no improvement interview", "improvement interview after 15 days"
    )
    ctx.truth.add("HR-004", "performance_review", id_text("performance_review", rows + 1), details.tolist())


def review_frame(ctx: Ctx, r: Reviews) -> Frame:
    n = len(r.grade)
    return Frame(
        "performance_review",
        n,
        {
            "id": ids("performance_review", np.arange(1, n + 1, dtype=np.int64)),
            "dept": Pool(DEPT_CODES, r.dept),
            "employee": Pool(ctx.org.names, r.employee),
            "reviewer": Pool(ctx.org.names, ctx.org.head[r.dept]),
            "period": Pool([q[0] for q in QUARTERS], r.period),
            "grade": Pool(GRADES, r.grade),
            "reviewed_at": r.reviewed,
            "improvement_interview_at": r.interview,
        },
    )
