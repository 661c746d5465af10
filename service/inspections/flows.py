"""The inspection use case, in ONE transaction:

    evaluation lock -> (scheduled: already run for this fire time? its result) -> expire waivers ->
    load the current records -> data-quality checks and the batch engine as of the period's end
    plus grace -> violations of the records in scope upserted / closed -> data-quality findings ->
    summaries and scores per department -> a rectification notice per department with findings
    -> audit -> commit

Holding the evaluation lock (as ingestion does) keeps records from arriving between loading and
writing, so the violations written agree with the records judged.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import true
from sqlalchemy.orm import Session

from checks import warm_up
from service.audit.schemas import SYSTEM_ACTOR
from service.audit.service import append_event
from service.evaluation.arrival import evaluation_turn, lock_evaluation
from service.evaluation.runtime import Runtime
from service.inspections import service
from service.inspections.config import InspectionConfig
from service.inspections.core import judge_scope
from service.inspections.models import Inspection, InspectionSummary
from service.inspections.periods import Period
from service.inspections.tx import committed
from service.notices import service as notices
from service.notices.models import Notice


class InspectionRefusedError(Exception):
    def __init__(self, message: str, message_zh: str, *, code: str = "period_not_begun") -> None:
        super().__init__(message)
        self.message = message
        self.message_zh = message_zh
        self.code = code


@dataclass
class InspectionOutcome:
    inspection: Inspection
    summaries: list[InspectionSummary]
    notices: list[Notice] = field(default_factory=list)
    replayed: bool = False  # a scheduled run found the result of an earlier attempt


def run_inspection(
    session: Session,
    *,
    runtime: Runtime,
    config: InspectionConfig,
    period: Period,
    depts: Collection[str] | None,
    actor: str,
    trigger: str,
    now: datetime,
    run_key: str | None = None,
    issue: bool = True,
) -> InspectionOutcome:
    """Inspect `period` for `depts` (None: every department). Raises InspectionRefusedError for a
    period that has not begun. With `run_key` (a scheduled run), a second call finds the first's
    result instead of inspecting again."""
    library = runtime.library
    tz = library.company.tz
    if now < period.start(tz):
        raise InspectionRefusedError(
            f"the period {period} has not begun", f"期间 {period} 尚未开始", code="period_not_begun"
        )
    wanted = None if depts is None else sorted(set(depts))
    warm_up()  # import great_expectations before taking the lock (seconds, once per process)
    with evaluation_turn(session), committed(session):
        lock_evaluation(session)
        if run_key is not None:
            earlier = service.by_run_key(session, run_key=run_key)
            if earlier is not None:
                return InspectionOutcome(
                    earlier,
                    service.summaries(session, inspection_id=earlier.id, scope=true()),
                    replayed=True,
                )
        began = started = time.perf_counter()
        expired, revived = notices.expire_waivers(session, now=now, policy_version=library.version)
        typed = service.load_frames(session, library=library)
        load_seconds = time.perf_counter() - started
        as_of = period.as_of(tz, grace_days=config.grace_days, now=now)
        result = judge_scope(library, config, typed, period=period, depts=wanted, as_of=as_of)
        inspection = Inspection(
            period=period.label,
            period_start=period.start(tz),
            period_end=period.end(tz),
            as_of=as_of,
            complete=as_of >= period.end(tz) + timedelta(days=config.grace_days),
            depts=wanted,
            trigger=trigger,
            run_key=run_key,
            requested_by=actor,
            started_at=now,
            finished_at=now,
            policy_version=library.version,
            records_checked=result.records_checked,
            counts={},
            timings={},
        )
        session.add(inspection)
        session.flush()
        started = time.perf_counter()
        reconciled = service.reconcile_scope(
            session,
            library=library,
            result=result,
            typed=typed,
            now=now,
            reason=f"inspection {inspection.id} of {period} as of {as_of.isoformat(timespec='seconds')}, requested by {actor}",
            actor=SYSTEM_ACTOR,
        )
        service.record_findings(session, inspection_id=inspection.id, reconciled=reconciled)
        quality = service.reconcile_quality(session, inspection_id=inspection.id, result=result, now=now)
        summaries = service.summarise(
            session, inspection=inspection, config=config, result=result, reconciled=reconciled
        )
        issued: list[Notice] = []
        if issue:
            by_dept: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for row in reconciled.open_rows:
                if row["dept"] is not None:
                    by_dept[row["dept"]].append(row)
            issued = notices.issue_notices(
                session,
                library=library,
                config=config,
                by_dept=by_dept,
                inspection_id=inspection.id,
                actor=actor,
                now=now,
            )
        timings = dict(result.timings)
        timings["load_seconds"] = load_seconds
        timings["store_seconds"] = time.perf_counter() - started
        inspection.counts = {
            "findings": len(result.findings),
            "opened": reconciled.count("opened"),
            "reopened": reconciled.count("reopened"),
            "still_open": reconciled.count("still_open"),
            "waived": reconciled.count("waived"),
            "closed": reconciled.count("closed"),
            "unverifiable": len(result.unverifiable),
            "data_quality": len(result.quality),
            "data_quality_opened": quality.opened,
            "data_quality_resolved": quality.resolved,
            "notices": len(issued),
            "waivers_expired": expired,
            "findings_revived": revived,
        }
        inspection.timings = {k: round(v, 3) for k, v in timings.items()}
        inspection.finished_at = now + timedelta(seconds=time.perf_counter() - began)
        session.flush()
        append_event(
            session,
            actor=actor,
            action="inspection.completed",
            entity_type="inspection",
            entity_id=inspection.id,
            after={
                "id": inspection.id,
                "period": inspection.period,
                "as_of": inspection.as_of,
                "depts": wanted,
                "counts": inspection.counts,
            },
            detail={
                "period": inspection.period,
                "depts": wanted,
                "trigger": trigger,
                "run_key": run_key,
                "as_of": inspection.as_of.isoformat(),
                "counts": inspection.counts,
                "notices": [n.number for n in issued],
            },
            now=now,
        )
    return InspectionOutcome(inspection, summaries, issued)
