"""A small company whose every report number is known by hand, built through the real flows
(storage as `zhidu load` does it, the October inspection, notices, a self-check, a response,
verification, closing and a penalty). Shared by the report tests and the access matrix.

October 2026, expense claims only (1,280 CNY each; every claim approved by the department head
and finance the next day and paid; a claim without invoice breaks EXP-001, minor, weight 1):

    dept  week 41 (10-05..11)   week 42 (10-12..18)        week 43 (10-19..25)         October
    D01   -                     4 clean + B1 (10-14)       7 clean + B2 (10-20)        13 claims, 2 findings
    D02   3 clean               1 clean                    3 clean + B3 (10-21)        8 claims, 1 finding
    D03   1 clean (10-09)       1 clean                    1 clean; + 1 on 10-02        4 claims, 0 findings

Scores (100 x (1 - findings / claims), one decimal): October D01 84.6, D02 87.5, D03 100.0 (ranks
3, 2, 1 of 3; stored by the inspection); week 43: D01 87.5, D02 75.0, D03 100.0; week 42: D01
80.0, D02 100.0, D03 100.0 (computed).

The inspection of October runs on 2026-11-10 and issues ZG-2026-11-0001 (D01: B1, B2) and
ZG-2026-11-0002 (D02: B3). D01 self-checks October on 11-08 declaring B1 only (found 2, declared 1,
matched 1). D02 acknowledges on 11-11, corrects B3 and answers on 11-12; the supervisor verifies
on 11-13 and closes on 11-15 (5 days to close); the proposed penalty is confirmed on 11-16.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.inspections import flows as inspection_flows
from service.inspections.periods import Period as InspectionPeriod
from service.notices import flows as notice_flows
from service.notices.models import Notice
from service.penalties import service as penalties
from service.penalties.models import Penalty
from service.selfchecks import flows as selfcheck_flows
from service.selfchecks.schemas import Declaration, Deviation
from service.settings import Settings
from tests.access_inspections import claim_approval, config_of, department, expense, runtime_of, store

SHANGHAI = ZoneInfo("Asia/Shanghai")
INSPECTED_AT = datetime(2026, 11, 10, 10, tzinfo=SHANGHAI)

# (id, dept, day of October, invoice?)
CLAIMS: list[tuple[str, str, int, bool]] = [
    ("B1", "D01", 14, False),
    ("B2", "D01", 20, False),
    *[(f"A1-{n}", "D01", d, True) for n, d in enumerate([12, 13, 15, 16])],
    *[(f"A2-{n}", "D01", d, True) for n, d in enumerate([19, 21, 22, 23, 24, 25, 25])],
    ("B3", "D02", 21, False),
    *[(f"C{n}", "D02", d, True) for n, d in enumerate([5, 6, 7, 12, 22, 23, 24])],
    *[(f"E{n}", "D03", d, True) for n, d in enumerate([2, 9, 16, 23])],
]
INVOICE_NUMBERS = {rid: n for n, (rid, *_rest) in enumerate(CLAIMS, 1)}
APPLICANT = {"D01": "张三", "D02": "李四", "D03": "王五"}
HEADS = {"D01": "王经理", "D02": "李经理", "D03": "周经理"}


def _at(day: int, hour: int = 10) -> str:
    return f"2026-10-{day:02d}T{hour:02d}:00:00+08:00"


def claim_row(rid: str, dept: str, day: int, invoice: bool) -> dict[str, Any]:
    paid = f"2026-10-{day + 3:02d}T10:00:00+08:00" if day + 3 <= 31 else "2026-10-31T18:00:00+08:00"
    return expense(
        rid,
        _at(day),
        paid,
        invoice=f"{30000000 + INVOICE_NUMBERS[rid]}" if invoice else None,
        dept=dept,
        applicant=APPLICANT[dept],
    )


@dataclass
class Scenario:
    d01_notice: str
    d02_notice: str
    penalty_id: int


def build(factory: sessionmaker[Session], settings: Settings) -> Scenario:
    runtime, config = runtime_of(settings), config_of(settings)
    stored_at = datetime(2026, 10, 1, tzinfo=UTC)
    store(
        factory,
        settings,
        "department",
        [department(d, head) for d, head in HEADS.items()],
        now=stored_at,
    )
    store(factory, settings, "expense_claim", [claim_row(*c) for c in CLAIMS], now=stored_at)
    store(
        factory,
        settings,
        "approval",
        [
            claim_approval(f"AP-{rid}-{step}", rid, step, _at(day, 16))
            for rid, _dept, day, _invoice in CLAIMS
            for step in ("dept_head", "finance")
        ],
        now=stored_at,
    )
    with factory() as session:
        selfcheck_flows.submit(
            session,
            runtime=runtime,
            config=config,
            dept="D01",
            period=InspectionPeriod.parse("2026-10"),
            declaration=Declaration(
                compliant_rules=[], deviations=[Deviation(rule="EXP-001", record_id="B1", action="补交发票")]
            ),
            actor="d01",
            now=datetime(2026, 11, 8, 10, tzinfo=SHANGHAI),
        )
    with factory() as session:
        outcome = inspection_flows.run_inspection(
            session,
            runtime=runtime,
            config=config,
            period=InspectionPeriod.parse("2026-10"),
            depts=None,
            actor="supervisor",
            trigger="api",
            now=INSPECTED_AT,
        )
        numbers = {n.dept: (n.id, n.number) for n in outcome.notices}
    d02_id = numbers["D02"][0]
    with factory() as session:
        notice_flows.acknowledge(
            session,
            notice_id=d02_id,
            visible=None,
            actor="d02",
            now=datetime(2026, 11, 11, 9, tzinfo=SHANGHAI),
        )
    fixed = claim_row("B3", "D02", 21, True)
    store(factory, settings, "expense_claim", [fixed], now=datetime(2026, 11, 12, 8, tzinfo=SHANGHAI))
    with factory() as session:
        notice_flows.respond(
            session,
            runtime=runtime,
            config=config,
            notice_id=d02_id,
            given=notice_flows.ResponseInput(description="已补交发票", item_ids=None, records=[], files=[]),
            visible=None,
            actor="d02",
            now=datetime(2026, 11, 12, 10, tzinfo=SHANGHAI),
        )
    with factory() as session:
        notice_flows.verify(
            session,
            runtime=runtime,
            notice_id=d02_id,
            note="",
            visible=None,
            actor="supervisor",
            now=datetime(2026, 11, 13, 10, tzinfo=SHANGHAI),
        )
    with factory() as session:
        notice_flows.close(
            session,
            runtime=runtime,
            notice_id=d02_id,
            note="",
            visible=None,
            actor="supervisor",
            now=datetime(2026, 11, 15, 10, tzinfo=SHANGHAI),
        )
    with factory() as session:
        penalty = session.scalars(select(Penalty).where(Penalty.notice_id == d02_id)).one()
        penalties.decide(
            session,
            penalty=penalty,
            action="confirm",
            adjusted=None,
            reason=None,
            actor="supervisor",
            now=datetime(2026, 11, 16, 10, tzinfo=SHANGHAI),
        )
        session.commit()
        penalty_id = penalty.id
    with factory() as session:
        assert session.scalar(select(Notice.status).where(Notice.id == d02_id)) == "closed"
    return Scenario(d01_notice=numbers["D01"][1], d02_notice=numbers["D02"][1], penalty_id=penalty_id)
