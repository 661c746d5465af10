"""Routes: penalties (scoped reads), the supervisor's decision, appeals (申诉) by the department and
their decision, ledgers per person and per department."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy.orm import Session

from service.accounts.models import User
from service.accounts.schemas import DeptCode, Role
from service.api.deps import (
    ConflictError,
    CurrentUser,
    ErrorResponse,
    NotFoundError,
    Page,
    PaginationDep,
    PathId,
    ScopeDep,
    SessionDep,
    SupervisorUser,
    require_roles,
    visible_depts,
)
from service.evaluation.runtime import ClockDep
from service.inspections.deps import ConfigDep
from service.penalties import flows, service
from service.penalties.models import Penalty
from service.penalties.schemas import (
    AppealDecisionRequest,
    AppealRead,
    AppealRequest,
    DecisionRequest,
    DeptLedger,
    PenaltyRead,
    PenaltyStatus,
    PersonLedger,
)

router = APIRouter(tags=["penalties"])
openapi_tag = {
    "name": "penalties",
    "description": "Penalties of confirmed findings by the penalty ladder (severity × repetitions of the same "
    "rule by the same person within the window): supervisors confirm or adjust them and decide appeals; "
    "departments appeal their own; ledgers per person and department.",
}

DepartmentUser = Annotated[User, Depends(require_roles(Role.DEPARTMENT))]
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorResponse, "description": "Not allowed in the penalty's current state"}
}


def _not_found(penalty_id: int) -> NotFoundError:
    return NotFoundError(f"penalty {penalty_id} not found", f"处罚 {penalty_id} 不存在")


@contextmanager
def _domain_errors(not_found: NotFoundError) -> Iterator[None]:
    """The flows' errors as the API's: unknown or outside the caller's departments → 404, not
    allowed in the penalty's current state → 409."""
    try:
        yield
    except flows.NotFoundError:
        raise not_found from None
    except service.PenaltyError as exc:
        raise ConflictError(exc.message, exc.message_zh, code=exc.code) from None


def penalty_reads(session: Session, penalties: Sequence[Penalty]) -> list[PenaltyRead]:
    appeals = service.appeals_of(session, penalty_ids=[p.id for p in penalties])
    return [
        PenaltyRead(
            id=p.id,
            violation_id=p.violation_id,
            notice_id=p.notice_id,
            rule=p.rule_id,
            record_type=p.record_type,
            record_id=p.record_id,
            severity=p.severity,
            dept=p.dept,
            person=p.person,
            occurrence=p.occurrence,
            window_days=p.window_days,
            confirmed_finding_at=p.confirmed_finding_at,
            proposed=service.terms(p.proposed_kind, p.proposed_amount_cents, p.proposed_points),
            penalty=service.terms(p.kind, p.amount_cents, p.points),
            status=PenaltyStatus(p.status),
            adjusted=p.adjusted,
            decision_reason=p.decision_reason,
            decided_by=p.decided_by,
            decided_at=p.decided_at,
            appeal=None if p.id not in appeals else AppealRead.model_validate(appeals[p.id]),
        )
        for p in penalties
    ]


@router.get(
    "/penalties", summary="Penalties in your departments, newest first", response_model=Page[PenaltyRead]
)
def list_penalties(
    _user: CurrentUser,
    scope: ScopeDep,
    session: SessionDep,
    page: PaginationDep,
    person: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    dept: Annotated[DeptCode | None, Query()] = None,
    rule: Annotated[str | None, Query(max_length=32)] = None,
    status: Annotated[PenaltyStatus | None, Query()] = None,
    notice_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> Page[PenaltyRead]:
    items, total = service.list_penalties(
        session,
        scope=scope.where(Penalty.dept),
        person=person,
        dept=dept,
        rule=rule,
        status=status,
        notice_id=notice_id,
        limit=page.limit,
        offset=page.offset,
    )
    return page.of(penalty_reads(session, items), total)


@router.get("/penalties/{penalty_id}", summary="One penalty with its appeal", response_model=PenaltyRead)
def get_penalty(penalty_id: PathId, _user: CurrentUser, scope: ScopeDep, session: SessionDep) -> PenaltyRead:
    penalty = service.get(session, penalty_id=penalty_id)
    if penalty is None or not scope.can_see(penalty.dept):
        raise _not_found(penalty_id)
    return penalty_reads(session, [penalty])[0]


@router.post(
    "/penalties/{penalty_id}/decision",
    summary="Confirm the ladder's proposal or adjust it with a reason (supervisor, admin)",
    response_model=PenaltyRead,
    responses=_CONFLICT,
)
def decide(
    penalty_id: PathId, body: DecisionRequest, user: SupervisorUser, session: SessionDep, clock: ClockDep
) -> PenaltyRead:
    with _domain_errors(_not_found(penalty_id)):
        penalty = flows.decide(
            session,
            penalty_id=penalty_id,
            request=body,
            visible=visible_depts(user),
            actor=user.username,
            now=clock(),
        )
    return penalty_reads(session, [penalty])[0]


@router.post(
    "/penalties/{penalty_id}/appeal",
    status_code=201,
    summary="Appeal (申诉) a confirmed penalty of your department within the appeal period (department)",
    response_model=PenaltyRead,
    responses=_CONFLICT,
)
def appeal(
    penalty_id: PathId,
    body: AppealRequest,
    user: DepartmentUser,
    session: SessionDep,
    config: ConfigDep,
    clock: ClockDep,
) -> PenaltyRead:
    with _domain_errors(_not_found(penalty_id)):
        penalty, _ = flows.appeal(
            session,
            config=config,
            penalty_id=penalty_id,
            reason=body.reason,
            visible=visible_depts(user),
            actor=user.username,
            now=clock(),
        )
    return penalty_reads(session, [penalty])[0]


@router.post(
    "/penalties/{penalty_id}/appeal/decision",
    summary="Decide an appeal: upheld, overturned or reduced (supervisor, admin)",
    response_model=PenaltyRead,
    responses=_CONFLICT,
)
def decide_appeal(
    penalty_id: PathId,
    body: AppealDecisionRequest,
    user: SupervisorUser,
    session: SessionDep,
    clock: ClockDep,
) -> PenaltyRead:
    with _domain_errors(_not_found(penalty_id)):
        penalty, _ = flows.decide_appeal(
            session,
            penalty_id=penalty_id,
            request=body,
            visible=visible_depts(user),
            actor=user.username,
            now=clock(),
        )
    return penalty_reads(session, [penalty])[0]


@router.get(
    "/penalties/ledger/persons/{person}",
    summary="A person's penalty ledger (penalties in your departments)",
    response_model=PersonLedger,
)
def person_ledger(
    person: Annotated[str, Path(min_length=1, max_length=200)],
    _user: CurrentUser,
    scope: ScopeDep,
    session: SessionDep,
) -> PersonLedger:
    items, _ = service.list_penalties(session, scope=scope.where(Penalty.dept), person=person, limit=None)
    return PersonLedger(person=person, totals=service.totals(items), penalties=penalty_reads(session, items))


@router.get(
    "/penalties/ledger/depts/{dept}",
    summary="A department's penalty ledger, with totals per person",
    response_model=DeptLedger,
)
def dept_ledger(
    dept: Annotated[str, Path(min_length=1, max_length=64)],
    _user: CurrentUser,
    scope: ScopeDep,
    session: SessionDep,
) -> DeptLedger:
    scope.require(dept, NotFoundError(f"department {dept} not found", f"部门 {dept} 不存在"))
    items, _ = service.list_penalties(session, scope=scope.where(Penalty.dept), dept=dept, limit=None)
    people = sorted({p.person for p in items})
    return DeptLedger(
        dept=dept,
        totals=service.totals(items),
        by_person={person: service.totals([p for p in items if p.person == person]) for person in people},
        penalties=penalty_reads(session, items),
    )
