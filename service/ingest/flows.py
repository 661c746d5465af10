"""The submission use case: store checked records and evaluate them on arrival, in ONE transaction.

    lock (store-and-evaluate is serialised) -> idempotency key -> key index up to date ->
    submission + upsert (created / versioned / unchanged) -> audit events ->
    judge the stored records and the stored records related to them -> violations -> commit

The violations a submission opens or closes are committed with its records, before the response.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from rules.validate import content_hash, to_payloads
from service.audit.schemas import AuditAction
from service.audit.service import PendingEvent, append_events
from service.evaluation.arrival import evaluation_turn, judge, lock_evaluation, prepare, subjects_of
from service.evaluation.runtime import Runtime
from service.evaluation.source import DbSource
from service.ingest import service
from service.ingest.schemas import (
    Counts,
    EvaluationSummary,
    IngestResult,
    RejectedRow,
    StoredRecord,
    ViolationChanges,
)
from service.ingest.service import Checked
from service.records import service as records
from service.records.schemas import Outcome
from service.violations import service as violations
from service.violations.schemas import Changes, ViolationChange

OK = 200


@dataclass(frozen=True)
class Idempotency:
    """A request's Idempotency-Key, the digest of the request, and how long keys are remembered."""

    key: str
    request_hash: str
    ttl: timedelta


class RejectedInputError(Exception):
    """Nothing was stored: rows were rejected and `partial` was not asked for, or the input as a
    whole is unusable (header, file), or it holds no record."""

    def __init__(self, checked: Checked, message: str, message_zh: str) -> None:
        super().__init__(message)
        self.checked = checked
        self.message = message
        self.message_zh = message_zh

    @property
    def rows(self) -> list[RejectedRow]:
        return self.checked.problems


class KeyReusedError(Exception):
    """The Idempotency-Key was used before with a different request."""


@dataclass(frozen=True)
class Replay:
    status_code: int
    body: dict[str, Any]


@contextmanager
def _committed(session: Session) -> Iterator[None]:
    try:
        yield
        session.commit()
    except BaseException:
        session.rollback()
        raise


def replay(session: Session, *, user_id: int, idempotency: Idempotency, now: datetime) -> Replay | None:
    """The stored response for a retried request (None: the key is new or expired). Raises
    KeyReusedError when the key came with another request. Ends its read transaction (the
    submission starts afresh)."""
    with _committed(session):
        found = service.find_key(session, user_id=user_id, key=idempotency.key)
    if found is None or service.has_expired(found, now=now, ttl=idempotency.ttl):
        return None
    if found.request_hash != idempotency.request_hash:
        raise KeyReusedError(idempotency.key)
    return Replay(found.status_code, dict(found.response))


def refuse_unless_storable(checked: Checked, *, partial: bool) -> None:
    if checked.received == 0:
        raise RejectedInputError(checked, "the input holds no record", "输入中没有任何记录")
    if checked.whole_input_refused:
        raise RejectedInputError(
            checked,
            "the input cannot be used as a whole (see details); nothing was stored",
            "输入整体无法使用（见 details）；未保存任何记录",
        )
    if checked.problems and not partial:
        n = len(checked.rejected_rows)
        raise RejectedInputError(
            checked,
            f"{n} of {checked.received} row(s) were rejected (see details); nothing was stored. "
            "Fix them, or send partial=true to keep the valid rows",
            f"{checked.received} 行中有 {n} 行被拒绝（见 details）；未保存任何记录。"
            "请修正后重新提交，或使用 partial=true 仅保存有效行",
        )


def submit(
    session: Session,
    *,
    runtime: Runtime,
    checked: Checked,
    partial: bool,
    user_id: int,
    actor: str,
    now: datetime,
    idempotency: Idempotency | None = None,
) -> Replay:
    """Store `checked` and evaluate on arrival; the response to give (a stored one for a retried
    Idempotency-Key). Raises RejectedInputError (nothing stored) or KeyReusedError."""
    refuse_unless_storable(checked, partial=partial)
    library = runtime.library
    rt = library.model[checked.record_type]
    payloads = to_payloads(rt, checked.frame, library.company.tz)
    hashes = [content_hash(p) for p in payloads]
    row_numbers = [int(r) for r in checked.frame.index]
    with evaluation_turn(session), _committed(session):
        lock_evaluation(session)
        if idempotency is not None:
            found = service.find_key(session, user_id=user_id, key=idempotency.key)
            if found is not None and service.has_expired(found, now=now, ttl=idempotency.ttl):
                session.delete(found)  # makes way for this request's (the key is unique per user)
                session.flush()
                found = None
            if found is not None:  # a concurrent retry got there first
                if found.request_hash != idempotency.request_hash:
                    raise KeyReusedError(idempotency.key)
                return Replay(found.status_code, dict(found.response))
        indexed = prepare(session, runtime)
        submission = records.create_submission(
            session,
            record_type=rt.name,
            submitted_by=actor,
            source=checked.source,
            now=now,
            rejected=len(checked.rejected_rows),
        )
        outcome = records.upsert_records(
            session,
            record_type=rt.name,
            payloads=payloads,
            hashes=hashes,
            submitted_by=actor,
            source=checked.source,
            now=now,
            submission_id=submission.id,
            key_fields=[f for t, f in indexed if t == rt.name],
        )
        submission.stored = outcome.created
        submission.unchanged = outcome.unchanged
        submission.versioned = outcome.versioned
        # The versions the changed records replaced (read after storing: most submissions change none).
        previous = records.payloads_of_versions(
            session,
            record_type=rt.name,
            versions={r.record_id: r.version - 1 for r in outcome.results if r.outcome is Outcome.VERSIONED},
        )

        changed = [
            (payload, h, result)
            for payload, h, result in zip(payloads, hashes, outcome.results, strict=True)
            if result.outcome is not Outcome.UNCHANGED
        ]
        append_events(
            session,
            events=[
                PendingEvent(
                    actor=actor,
                    action=AuditAction.RECORD_SUBMITTED
                    if result.outcome is Outcome.CREATED
                    else AuditAction.RECORD_VERSIONED,
                    entity_type="record",
                    entity_id=f"{rt.name}:{result.record_id}",
                    before_digest=content_hash(previous[result.record_id])
                    if result.outcome is Outcome.VERSIONED
                    else None,
                    after_digest=h,
                    detail={"version": result.version, "submission_id": submission.id},
                )
                for _, h, result in changed
            ],
            now=now,
        )
        runtime.codec.remember(rt.name, ((p, h) for p, h, _ in changed))

        source = DbSource(session, runtime.codec, runtime.key_fields)
        subjects = subjects_of(
            source,
            runtime,
            record_type=rt.name,
            stored=[p for p, _, _ in changed],
            replaced=[previous[r.record_id] for _, _, r in changed if r.outcome is Outcome.VERSIONED],
        )
        judgements = judge(session, runtime, subjects, as_of=now)
        changes = Changes()
        reason = (
            f"evaluated on arrival of {len(changed)} {rt.name} record(s), "
            f"submission {submission.id} by {actor}"
        )
        for judgement in judgements:
            changes.extend(
                violations.reconcile(
                    session,
                    record_type=judgement.record_type,
                    record_ids=judgement.record_ids,
                    rule_ids=judgement.rule_ids,
                    findings=judgement.findings,
                    policy_version=runtime.version,
                    now=now,
                    reason=reason,
                )
            )
        result = IngestResult(
            submission_id=submission.id,
            record_type=rt.name,
            source=checked.source,
            partial=partial,
            counts=Counts(
                received=checked.received,
                created=outcome.created,
                versioned=outcome.versioned,
                unchanged=outcome.unchanged,
                rejected=len(checked.rejected_rows),
            ),
            records=[
                StoredRecord(row=row, record_id=r.record_id, outcome=r.outcome, version=r.version)
                for row, r in zip(row_numbers, outcome.results, strict=True)
            ],
            rejected=checked.problems,
            violations=ViolationChanges(
                opened=[ViolationChange.model_validate(v) for v in changes.opened],
                reopened=[ViolationChange.model_validate(v) for v in changes.reopened],
                closed=[ViolationChange.model_validate(v) for v in changes.closed],
                still_open=len(changes.updated),
            ),
            evaluation=EvaluationSummary(
                as_of=now,
                policy_version=runtime.version,
                judged={j.record_type: len(j.record_ids) for j in judgements},
            ),
        )
        body = result.model_dump(mode="json")
        if idempotency is not None:
            service.remember_key(
                session,
                user_id=user_id,
                key=idempotency.key,
                request_hash=idempotency.request_hash,
                status_code=OK,
                response=body,
                submission_id=submission.id,
                now=now,
            )
    return Replay(OK, body)
