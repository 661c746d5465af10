"""Use cases on notices and waivers, each owning its transaction. Writing flows take the
evaluation lock first when they judge or change violations (as ingestion does), else the audit
chain's write lock (`lock_for_append`), before reading anything.

Who may act is checked by the routes (roles); which notices a caller sees is `visible` (None: all):
a notice of another department is `NotFound`, as if it did not exist."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.audit.service import lock_for_append
from service.evaluation.arrival import evaluation_turn, lock_evaluation, prepare
from service.evaluation.runtime import Runtime
from service.inspections.config import InspectionConfig
from service.inspections.tx import committed
from service.notices import service
from service.notices.models import Notice, NoticeItem, NoticeResponse, Waiver
from service.notices.schemas import ACTIVE, ItemOutcome, NoticeStatus, SweepReport, Verification
from service.notices.service import EvidenceFile, NoticeError
from service.penalties import service as penalties
from service.penalties.models import Penalty
from service.records import service as records
from service.selfchecks import service as selfchecks
from service.violations.models import Violation
from service.violations.schemas import Status


class NotFoundError(LookupError):
    """No such notice (or waiver, violation) in the caller's departments."""


class InvalidInputError(ValueError):
    """The request names things that do not fit (422 in the API); `details` one per problem."""

    def __init__(self, message: str, message_zh: str, details: Sequence[dict[str, Any]] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.message_zh = message_zh
        self.details = list(details)


class TooLargeError(ValueError):
    def __init__(self, message: str, message_zh: str) -> None:
        super().__init__(message)
        self.message = message
        self.message_zh = message_zh


def _notice(
    session: Session, notice_id: int, visible: Collection[str] | None, *, lock: bool = False
) -> Notice:
    query = select(Notice).where(Notice.id == notice_id)
    if lock and session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    notice = session.scalars(query).one_or_none()
    if notice is None or (visible is not None and notice.dept not in visible):
        raise NotFoundError(notice_id)
    return notice


# --- issuing ---------------------------------------------------------------------------------------


def issue(
    session: Session,
    *,
    runtime: Runtime,
    config: InspectionConfig,
    dept: str | None,
    violation_ids: Sequence[int] | None,
    actor: str,
    now: datetime,
) -> list[Notice]:
    """Notices for open violations on no active notice: of `dept`, or those named, or all."""
    with committed(session):
        lock_for_append(session)
        query = select(Violation).where(Violation.status == Status.OPEN, Violation.dept.is_not(None))
        if dept is not None:
            query = query.where(Violation.dept == dept)
        if violation_ids is not None:
            query = query.where(Violation.id.in_(sorted(set(violation_ids))))
        by_dept: dict[str, list[dict[str, Any]]] = {}
        for v in session.scalars(query.order_by(Violation.id)):
            assert v.dept is not None
            by_dept.setdefault(v.dept, []).append(
                {c.key: getattr(v, c.key) for c in Violation.__table__.columns}
            )
        return service.issue_notices(
            session,
            library=runtime.library,
            config=config,
            by_dept=by_dept,
            inspection_id=None,
            actor=actor,
            now=now,
        )


# --- the department -------------------------------------------------------------------------------


def acknowledge(
    session: Session, *, notice_id: int, visible: Collection[str] | None, actor: str, now: datetime
) -> Notice:
    with committed(session):
        lock_for_append(session)
        notice = _notice(session, notice_id, visible, lock=True)
        return service.transition(session, notice=notice, action="acknowledged", actor=actor, now=now)


@dataclass(frozen=True)
class ResponseInput:
    description: str
    item_ids: Sequence[int] | None
    records: Sequence[str]
    files: Sequence[EvidenceFile]


def _check_response(
    session: Session,
    notice: Notice,
    items: Sequence[NoticeItem],
    given: ResponseInput,
    config: InspectionConfig,
) -> list[str]:
    problems: list[dict[str, Any]] = []
    known = {i.id for i in items}
    for item_id in given.item_ids or ():
        if item_id not in known:
            problems.append(
                {
                    "loc": ["body", "item_ids"],
                    "message": f"finding {item_id} is not on notice {notice.number}",
                    "type": "unknown_item",
                }
            )
    refs: list[str] = []
    for ref in given.records:
        record_type, _, record_id = ref.partition(":")
        record = (
            records.current_record(session, record_type=record_type, record_id=record_id)
            if record_type and record_id
            else None
        )
        if record is None or (record.dept is not None and record.dept != notice.dept):
            problems.append(
                {
                    "loc": ["body", "records"],
                    "message": f"no record {ref!r} of department {notice.dept}",
                    "type": "unknown_record",
                }
            )
        else:
            refs.append(f"{record_type}:{record_id}")
    if len(given.files) > config.evidence_max_files:
        problems.append(
            {
                "loc": ["body", "files"],
                "message": f"at most {config.evidence_max_files} files",
                "type": "too_many_files",
            }
        )
    if problems:
        raise InvalidInputError(
            "the response names findings, records or files that do not fit (see details)",
            "答复中的整改项、记录或文件不符合要求（见 details）",
            problems,
        )
    for f in given.files:
        if len(f.content) > config.evidence_max_file_bytes:
            raise TooLargeError(
                f"evidence file {f.filename!r} is larger than {config.evidence_max_file_bytes} bytes",
                f"证明文件 {f.filename!r} 超过 {config.evidence_max_file_bytes} 字节",
            )
    if sum(len(f.content) for f in given.files) > config.evidence_max_total_bytes:
        raise TooLargeError(
            f"the evidence files of a response may total {config.evidence_max_total_bytes} bytes",
            f"一次答复的证明文件合计不得超过 {config.evidence_max_total_bytes} 字节",
        )
    return refs


def respond(
    session: Session,
    *,
    runtime: Runtime,
    config: InspectionConfig,
    notice_id: int,
    given: ResponseInput,
    visible: Collection[str] | None,
    actor: str,
    now: datetime,
) -> tuple[Notice, NoticeResponse]:
    """The department's response: stored with its evidence, the rules of the findings it
    addresses re-run at once on the current records (shown to the supervisor)."""
    with evaluation_turn(session), committed(session):
        lock_evaluation(session)
        notice = _notice(session, notice_id, visible, lock=True)
        if notice.status not in (NoticeStatus.ACKNOWLEDGED, NoticeStatus.RETURNED):
            hint = " (acknowledge it first)" if notice.status == NoticeStatus.ISSUED else ""
            raise NoticeError(
                f"notice {notice.number} is {notice.status}: a response is taken when acknowledged or returned{hint}",
                f"整改通知 {notice.number} 当前状态为 {notice.status}：仅在已签收或被退回时可提交整改答复",
            )
        items = service.items_of(session, notice_id=notice.id)
        refs = _check_response(session, notice, items, given, config)
        prepare(session, runtime)
        addressed = [i for i in items if given.item_ids is None or i.id in set(given.item_ids)]
        verification = service.recheck(session, runtime=runtime, items=addressed, now=now)
        service.store_checks(addressed, verification)
        response = service.add_response(
            session,
            notice=notice,
            description=given.description,
            item_ids=given.item_ids,
            record_refs=refs,
            files=given.files,
            verification=verification,
            actor=actor,
            now=now,
        )
        service.transition(
            session,
            notice=notice,
            action="response_submitted",
            actor=actor,
            now=now,
            note=given.description[:500],
            detail={
                "response_id": response.id,
                "items": response.item_ids,
                "records": refs,
                "evidence": [{"filename": f.filename, "size": len(f.content)} for f in given.files],
                "all_rectified": verification.all_rectified,
            },
        )
        return notice, response


# --- the supervision group -------------------------------------------------------------------------


def verification(
    session: Session, *, runtime: Runtime, notice_id: int, visible: Collection[str] | None, now: datetime
) -> Verification:
    """Re-run the rules of every finding of the notice now (nothing is decided). The key index is
    brought up to date first, under the evaluation lock, and that is committed."""
    with evaluation_turn(session), committed(session):
        lock_evaluation(session)
        notice = _notice(session, notice_id, visible)
        prepare(session, runtime)
        items = service.items_of(session, notice_id=notice.id)
        return service.recheck(session, runtime=runtime, items=items, now=now)


def verify(
    session: Session,
    *,
    runtime: Runtime,
    notice_id: int,
    note: str,
    visible: Collection[str] | None,
    actor: str,
    now: datetime,
) -> tuple[Notice, Verification]:
    """Confirm the rectification: the rules re-run now must find no finding (waived ones aside)
    still violated (NoticeError `not_rectified` otherwise; return the notice instead)."""
    with evaluation_turn(session), committed(session):
        lock_evaluation(session)
        notice = _notice(session, notice_id, visible, lock=True)
        if notice.status != NoticeStatus.RESPONSE_SUBMITTED:
            raise NoticeError(
                f"notice {notice.number} is {notice.status}: it is verified after a response is submitted",
                f"整改通知 {notice.number} 当前状态为 {notice.status}：须在提交整改答复后核验",
            )
        prepare(session, runtime)
        items = service.items_of(session, notice_id=notice.id)
        result = service.recheck(session, runtime=runtime, items=items, now=now)
        service.store_checks(items, result)
        if not result.all_rectified:
            still = [f"{c.rule} {c.record_type}:{c.record_id}" for c in result.items if c.violated]
            raise NoticeError(
                f"not rectified: the rules still find {', '.join(still)}; return the notice instead",
                f"尚未整改完毕：规则仍判定 {', '.join(still)} 违规；请退回整改",
                code="not_rectified",
            )
        for item in items:
            if item.outcome == ItemOutcome.PENDING:
                item.outcome = ItemOutcome.RECTIFIED
        latest = service.latest_response(session, notice_id=notice.id)
        if latest is not None and latest.decision is None:
            latest.decision, latest.decided_by, latest.decided_at, latest.decision_note = (
                "verified",
                actor,
                now,
                note,
            )
        service.transition(
            session,
            notice=notice,
            action="verified",
            actor=actor,
            now=now,
            note=note,
            detail={"verification": result.model_dump(mode="json")["items"]},
        )
        return notice, result


def return_notice(
    session: Session,
    *,
    runtime: Runtime,
    notice_id: int,
    reason: str,
    due_date: date | None,
    visible: Collection[str] | None,
    actor: str,
    now: datetime,
) -> Notice:
    """Return the response for more rectification, optionally with a new deadline."""
    with committed(session):
        lock_for_append(session)
        notice = _notice(session, notice_id, visible, lock=True)
        detail: dict[str, Any] = {}
        if due_date is not None:
            today = now.astimezone(runtime.library.company.tz).date()
            if due_date < today:
                raise InvalidInputError(
                    "the new deadline is in the past",
                    "新的整改期限早于今天",
                    [{"loc": ["body", "due_date"], "message": "not before today", "type": "past_date"}],
                )
            detail["due_date"] = due_date.isoformat()
        latest = service.latest_response(session, notice_id=notice.id)
        service.transition(
            session, notice=notice, action="returned", actor=actor, now=now, note=reason, detail=detail
        )
        if due_date is not None:
            days = (due_date - notice.issued_at.astimezone(runtime.library.company.tz).date()).days
            notice.due_date, notice.due_at = service.due_of(notice.issued_at, days, runtime.library)
            service.add_event(
                session,
                notice=notice,
                action="deadline_changed",
                actor=actor,
                now=now,
                note=f"due {due_date.isoformat()}",
            )
        if latest is not None and latest.decision is None:
            latest.decision, latest.decided_by, latest.decided_at, latest.decision_note = (
                "returned",
                actor,
                now,
                reason,
            )
        session.flush()
        return notice


def close(
    session: Session,
    *,
    runtime: Runtime,
    notice_id: int,
    note: str,
    visible: Collection[str] | None,
    actor: str,
    now: datetime,
) -> tuple[Notice, list[Penalty]]:
    """Close a verified notice (or any open one whose findings are all waived): its findings not
    waived are confirmed, and the penalty ladder proposes a penalty for each."""
    with committed(session):
        lock_for_append(session)
        notice = _notice(session, notice_id, visible, lock=True)
        items = service.items_of(session, notice_id=notice.id)
        all_waived = bool(items) and all(i.outcome == ItemOutcome.WAIVED for i in items)
        allow = tuple(s for s in ACTIVE if s != NoticeStatus.VERIFIED) if all_waived else ()
        service.transition(
            session, notice=notice, action="closed", actor=actor, now=now, note=note, allow_from=allow
        )
        confirmed = [i for i in items if i.outcome != ItemOutcome.WAIVED]
        for item in confirmed:
            item.outcome = ItemOutcome.CONFIRMED
        session.flush()
        proposed = penalties.propose(
            session, library=runtime.library, notice=notice, items=confirmed, actor=actor, now=now
        )
        return notice, proposed


# --- waivers ---------------------------------------------------------------------------------------


def waive(
    session: Session,
    *,
    runtime: Runtime,
    violation_id: int,
    reason: str,
    expires_at: datetime,
    visible: Collection[str] | None,
    actor: str,
    now: datetime,
) -> Waiver:
    with evaluation_turn(session), committed(session):
        lock_evaluation(session)
        violation = session.get(Violation, violation_id)
        if violation is None or (visible is not None and violation.dept not in visible):
            raise NotFoundError(violation_id)
        return service.grant_waiver(
            session,
            violation=violation,
            reason=reason,
            expires_at=expires_at,
            actor=actor,
            policy_version=runtime.version,
            now=now,
        )


def revoke(
    session: Session,
    *,
    runtime: Runtime,
    waiver_id: int,
    reason: str,
    visible: Collection[str] | None,
    actor: str,
    now: datetime,
) -> Waiver:
    with evaluation_turn(session), committed(session):
        lock_evaluation(session)
        waiver = session.get(Waiver, waiver_id)
        if waiver is None or (visible is not None and waiver.dept not in visible):
            raise NotFoundError(waiver_id)
        return service.revoke_waiver(
            session, waiver=waiver, reason=reason, actor=actor, policy_version=runtime.version, now=now
        )


# --- the periodic sweep ------------------------------------------------------------------------------


def sweep(session: Session, *, runtime: Runtime, config: InspectionConfig, now: datetime) -> SweepReport:
    """What time alone changes, idempotent (run it as often as you like): expired waivers revive
    their findings, reminders before and after deadlines, escalation of overdue notices, missing
    self-checks become findings."""
    with evaluation_turn(session), committed(session):
        lock_evaluation(session)
        expired, revived = service.expire_waivers(session, now=now, policy_version=runtime.version)
        counts = service.remind_and_escalate(session, config=config, now=now)
        missing = selfchecks.detect_missing(session, library=runtime.library, config=config, now=now)
        return SweepReport(
            at=now,
            reminders=counts.reminders,
            escalations=counts.escalations,
            waivers_expired=expired,
            findings_revived=revived,
            missing_selfchecks=len(missing),
        )
