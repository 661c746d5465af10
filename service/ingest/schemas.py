"""Shapes of ingestion: what a submission stored, rejected and changed."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from service.records.schemas import Outcome
from service.violations.schemas import ViolationChange


class RejectedRow(BaseModel):
    """One problem of one row (or of the whole input when `row` is null: a header problem, an
    unreadable file). A row with several bad cells has one entry per cell."""

    row: int | None = Field(description="1-based data row (the header excluded); null: the whole input.")
    record_id: str | None = Field(description="The row's `id`, when it has a usable one.")
    field: str | None = Field(description="The field (column) concerned, if any.")
    message: str = Field(description="Why, in English.")
    message_zh: str = Field(description="Why, in Chinese.")


class StoredRecord(BaseModel):
    row: int = Field(description="1-based data row it came from.")
    record_id: str
    outcome: Outcome = Field(
        description="`created` (version 1), `versioned` (changed: a new version), `unchanged` (identical "
        "to the current version: nothing written)."
    )
    version: int = Field(description="The current version after this submission.")


class Counts(BaseModel):
    received: int = Field(description="Rows in the input.")
    created: int
    versioned: int
    unchanged: int
    rejected: int = Field(description="Rows refused (not stored).")


class ViolationChanges(BaseModel):
    opened: list[ViolationChange] = Field(description="Found for the first time.")
    reopened: list[ViolationChange] = Field(description="Closed before, violated again.")
    closed: list[ViolationChange] = Field(description="No longer violated (e.g. a later record fixed it).")
    still_open: int = Field(description="Judged again and still violated (open or waived).")


class EvaluationSummary(BaseModel):
    as_of: datetime = Field(description="The time the records were judged at.")
    policy_version: str
    judged: dict[str, int] = Field(
        description="Records judged per record type: the stored ones and the stored records related to them."
    )


class IngestResult(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "submission_id": 41,
                    "record_type": "goods_receipt",
                    "source": "api",
                    "partial": False,
                    "counts": {"received": 1, "created": 1, "versioned": 0, "unchanged": 0, "rejected": 0},
                    "records": [{"row": 1, "record_id": "GR0000017", "outcome": "created", "version": 1}],
                    "rejected": [],
                    "violations": {
                        "opened": [],
                        "reopened": [],
                        "closed": [
                            {
                                "id": 17,
                                "rule": "PUR-007",
                                "record_type": "payment",
                                "record_id": "PM0000042",
                                "dept": "D03",
                                "severity": "critical",
                                "status": "closed",
                            }
                        ],
                        "still_open": 0,
                    },
                    "evaluation": {
                        "as_of": "2026-03-05T02:00:00Z",
                        "policy_version": "66411fc2c9707b66",
                        "judged": {"goods_receipt": 1, "payment": 1},
                    },
                }
            ]
        }
    )

    submission_id: int | None = Field(description="The stored submission (null when nothing was stored).")
    record_type: str
    source: str = Field(description="`api`, or the uploaded file's name.")
    partial: bool = Field(description="Whether valid rows were kept although others were rejected.")
    counts: Counts
    records: list[StoredRecord] = Field(description="Every stored row, what became of it.")
    rejected: list[RejectedRow] = Field(description="Every problem of every rejected row.")
    violations: ViolationChanges
    evaluation: EvaluationSummary
