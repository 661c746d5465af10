"""Shapes of penalties, decisions, appeals and ledgers."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Amount = Annotated[Decimal, Field(gt=0, le=Decimal("100000000"), max_digits=11, decimal_places=2)]
Points = Annotated[int, Field(ge=1, le=1000)]


class PenaltyKind(StrEnum):
    WARNING = "warning"
    PERFORMANCE_POINTS = "performance_points"
    FINE = "fine"
    DEMOTION = "demotion"


# Lighter to heavier: a reduction on appeal must move down this order (or lower the amount/points).
KIND_RANK = {
    PenaltyKind.WARNING: 0,
    PenaltyKind.PERFORMANCE_POINTS: 1,
    PenaltyKind.FINE: 2,
    PenaltyKind.DEMOTION: 3,
}


class PenaltyStatus(StrEnum):
    PROPOSED = "proposed"  # the ladder's proposal, awaiting the supervisor
    CONFIRMED = "confirmed"  # decided by the supervisor (as proposed or adjusted)
    APPEALED = "appealed"  # the department appealed; awaiting the decision
    UPHELD = "upheld"  # appeal rejected: the penalty stands
    REDUCED = "reduced"  # appeal partly granted: a lighter penalty
    OVERTURNED = "overturned"  # appeal granted: no penalty (and it does not count as a repetition)


IN_FORCE = (PenaltyStatus.CONFIRMED, PenaltyStatus.APPEALED, PenaltyStatus.UPHELD, PenaltyStatus.REDUCED)


class PenaltyTerms(BaseModel):
    """A penalty: a fine needs an amount (CNY), performance points need points."""

    model_config = ConfigDict(extra="forbid")

    kind: PenaltyKind
    amount: Amount | None = None
    points: Points | None = None

    @model_validator(mode="after")
    def _consistent(self) -> PenaltyTerms:
        if self.kind == PenaltyKind.FINE and self.amount is None:
            raise ValueError("a fine needs an amount")
        if self.kind == PenaltyKind.PERFORMANCE_POINTS and self.points is None:
            raise ValueError("performance_points needs points")
        if self.kind != PenaltyKind.FINE and self.amount is not None:
            raise ValueError("only a fine has an amount")
        if self.kind != PenaltyKind.PERFORMANCE_POINTS and self.points is not None:
            raise ValueError("only performance_points has points")
        return self


class DecisionRequest(BaseModel):
    """Confirm the ladder's proposal, or adjust it (a reason is required)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"action": "confirm"},
                {"action": "adjust", "kind": "fine", "amount": "500.00", "reason": "首次发生，情节较轻"},
            ]
        },
    )

    action: Literal["confirm", "adjust"]
    kind: PenaltyKind | None = None
    amount: Amount | None = None
    points: Points | None = None
    reason: Reason | None = None

    @model_validator(mode="after")
    def _adjust(self) -> DecisionRequest:
        if self.action == "adjust":
            if self.kind is None or self.reason is None:
                raise ValueError("an adjustment needs the kind of penalty and a reason")
            PenaltyTerms(kind=self.kind, amount=self.amount, points=self.points)
        elif self.kind is not None or self.amount is not None or self.points is not None:
            raise ValueError("confirm takes no penalty terms: use action adjust")
        return self


class AppealRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "发票已于次日补交，属系统录入延迟"}]}
    )

    reason: Reason


class AppealDecisionRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"outcome": "upheld", "reason": "证据不足"},
                {"outcome": "reduced", "reason": "情节较轻", "kind": "warning"},
            ]
        },
    )

    outcome: Literal["upheld", "overturned", "reduced"]
    reason: Reason
    kind: PenaltyKind | None = None
    amount: Amount | None = None
    points: Points | None = None

    @model_validator(mode="after")
    def _reduced(self) -> AppealDecisionRequest:
        if self.outcome == "reduced":
            if self.kind is None:
                raise ValueError("a reduction needs the lighter penalty (kind, and amount or points)")
            PenaltyTerms(kind=self.kind, amount=self.amount, points=self.points)
        elif self.kind is not None or self.amount is not None or self.points is not None:
            raise ValueError("only a reduction takes penalty terms")
        return self


class AppealRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    filed_by: str
    filed_at: datetime
    reason: str
    status: str
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str | None


class PenaltyRead(BaseModel):
    id: int
    violation_id: int
    notice_id: int
    rule: str
    record_type: str
    record_id: str
    severity: str
    dept: str
    person: str = Field(
        description="Who answers for it: the rule's responsible field (the department if empty)."
    )
    occurrence: int = Field(
        description="The n-th confirmed finding of this rule against this person within the window."
    )
    window_days: int
    confirmed_finding_at: datetime
    proposed: PenaltyTerms = Field(description="The ladder's step for the occurrence.")
    penalty: PenaltyTerms = Field(description="The penalty in force (as confirmed, adjusted or reduced).")
    status: PenaltyStatus
    adjusted: bool
    decision_reason: str | None
    decided_by: str | None
    decided_at: datetime | None
    appeal: AppealRead | None


class LedgerTotals(BaseModel):
    """Penalties in force (confirmed, appealed, upheld, reduced); proposed and overturned aside."""

    penalties: int
    by_kind: dict[str, int]
    fines: Decimal = Field(description="Sum of fines, CNY.")
    points: int = Field(description="Sum of performance points deducted.")
    demotions: int
    proposed: int = Field(description="Proposals awaiting a decision (not in the totals).")
    overturned: int


class PersonLedger(BaseModel):
    person: str
    totals: LedgerTotals
    penalties: list[PenaltyRead]


class DeptLedger(BaseModel):
    dept: str
    totals: LedgerTotals
    by_person: dict[str, LedgerTotals]
    penalties: list[PenaltyRead]
