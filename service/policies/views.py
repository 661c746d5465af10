"""Routes: the active policy library (anyone authenticated)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from service.api.deps import CurrentUser, Page, PaginationDep
from service.evaluation.runtime import RuntimeDep
from service.policies import service
from service.policies.schemas import ClauseRead, PoliciesRead, RuleRead

router = APIRouter(tags=["policies"])
openapi_tag = {
    "name": "policies",
    "description": "The policy library in force: manuals, clauses, parameters and rules (read only).",
}


@router.get(
    "/policies",
    summary="The library in force: version, company, manuals, parameters with values and defaults",
    response_model=PoliciesRead,
)
def get_policies(_user: CurrentUser, runtime: RuntimeDep) -> PoliciesRead:
    return service.policies(runtime.library)


@router.get(
    "/clauses", summary="Clauses of the manuals, with the rules citing them", response_model=Page[ClauseRead]
)
def list_clauses(
    _user: CurrentUser,
    runtime: RuntimeDep,
    page: PaginationDep,
    manual: Annotated[str | None, Query(max_length=32, description="A manual id, e.g. `m001`.")] = None,
    checkable: Annotated[bool | None, Query(description="Only clauses a rule can (or cannot) check.")] = None,
) -> Page[ClauseRead]:
    items = service.clauses(runtime.library, manual=manual, checkable=checkable)
    return page.of(items[page.offset : page.offset + page.limit], len(items))


@router.get(
    "/rules",
    summary="The rules: clauses, record type, severity, parameters used",
    response_model=list[RuleRead],
)
def list_rules(
    _user: CurrentUser,
    runtime: RuntimeDep,
    record_type: Annotated[
        str | None, Query(max_length=64, description="Only rules judging this type.")
    ] = None,
) -> list[RuleRead]:
    return service.rules(runtime.library, record_type=record_type)
