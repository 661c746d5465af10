"""inspections (runs, summaries, findings, data-quality findings), rectification notices (numbering,
items, events, reminders, responses, evidence), waivers, penalties and appeals, self-checks and
missing self-checks

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the portable types in service/db/types.py (a migration must not change
# when the application's code does).
BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "inspections",
        sa.Column("id", BIGINT_PK, nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("period_start", UTC_DATETIME, nullable=False),
        sa.Column("period_end", UTC_DATETIME, nullable=False),
        sa.Column("as_of", UTC_DATETIME, nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("depts", JSON_DOCUMENT, nullable=True),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("run_key", sa.String(length=200), nullable=True),
        sa.Column("requested_by", sa.String(length=128), nullable=False),
        sa.Column("started_at", UTC_DATETIME, nullable=False),
        sa.Column("finished_at", UTC_DATETIME, nullable=False),
        sa.Column("policy_version", sa.String(length=64), nullable=False),
        sa.Column("records_checked", sa.Integer(), nullable=False),
        sa.Column("counts", JSON_DOCUMENT, nullable=False),
        sa.Column("timings", JSON_DOCUMENT, nullable=False),
        sa.CheckConstraint(
            "trigger IN ('api', 'cli', 'scheduled')", name=op.f("ck_inspections_trigger_known")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspections")),
        sa.UniqueConstraint("run_key", name=op.f("uq_inspections_run_key")),
    )
    op.create_index(op.f("ix_inspections_period"), "inspections", ["period"])
    op.create_index(op.f("ix_inspections_started_at"), "inspections", ["started_at"])

    op.create_table(
        "missing_selfchecks",
        sa.Column("id", BIGINT_PK, nullable=False),
        sa.Column("dept", sa.String(), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("due_at", UTC_DATETIME, nullable=False),
        sa.Column("detected_at", UTC_DATETIME, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("resolved_at", UTC_DATETIME, nullable=True),
        sa.CheckConstraint(
            "status IN ('open', 'submitted_late')", name=op.f("ck_missing_selfchecks_status_known")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_missing_selfchecks")),
        sa.UniqueConstraint("dept", "period", name=op.f("uq_missing_selfchecks_dept_period")),
    )
    op.create_index(op.f("ix_missing_selfchecks_status"), "missing_selfchecks", ["status"])

    op.create_table(
        "notice_sequences",
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("month", name=op.f("pk_notice_sequences")),
    )
    op.create_table(
        "selfchecks",
        sa.Column("id", BIGINT_PK, nullable=False),
        sa.Column("dept", sa.String(), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("submitted_by", sa.String(length=128), nullable=False),
        sa.Column("submitted_at", UTC_DATETIME, nullable=False),
        sa.Column("due_at", UTC_DATETIME, nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("as_of", UTC_DATETIME, nullable=False),
        sa.Column("policy_version", sa.String(length=64), nullable=False),
        sa.Column("declaration", JSON_DOCUMENT, nullable=False),
        sa.Column("records_checked", sa.Integer(), nullable=False),
        sa.Column("result", JSON_DOCUMENT, nullable=False),
        sa.Column("comparison", JSON_DOCUMENT, nullable=False),
        sa.Column("under_reported", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_selfchecks")),
        sa.UniqueConstraint("dept", "period", name=op.f("uq_selfchecks_dept_period")),
    )
    op.create_index(op.f("ix_selfchecks_period"), "selfchecks", ["period"])

    op.create_table(
        "data_quality_findings",
        sa.Column("id", BIGINT_PK, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("record_type", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.String(), nullable=False),
        sa.Column("dept", sa.String(), nullable=True),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("fields", JSON_DOCUMENT, nullable=False),
        sa.Column("clauses", JSON_DOCUMENT, nullable=False),
        sa.Column("message_zh", sa.Text(), nullable=False),
        sa.Column("message_en", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("first_inspection_id", BIGINT_PK, nullable=False),
        sa.Column("last_inspection_id", BIGINT_PK, nullable=False),
        sa.Column("first_seen_at", UTC_DATETIME, nullable=False),
        sa.Column("last_seen_at", UTC_DATETIME, nullable=False),
        sa.Column("resolved_at", UTC_DATETIME, nullable=True),
        sa.CheckConstraint(
            "kind IN ('expectation', 'unverifiable')", name=op.f("ck_data_quality_findings_kind_known")
        ),
        sa.CheckConstraint(
            "status IN ('open', 'resolved')", name=op.f("ck_data_quality_findings_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["first_inspection_id"],
            ["inspections.id"],
            name=op.f("fk_data_quality_findings_first_inspection_id_inspections"),
        ),
        sa.ForeignKeyConstraint(
            ["last_inspection_id"],
            ["inspections.id"],
            name=op.f("fk_data_quality_findings_last_inspection_id_inspections"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_quality_findings")),
        sa.UniqueConstraint(
            "kind",
            "code",
            "record_type",
            "record_id",
            name=op.f("uq_data_quality_findings_kind_code_record_type_record_id"),
        ),
    )
    op.create_index("ix_data_quality_findings_dept_status", "data_quality_findings", ["dept", "status"])
    op.create_index(
        op.f("ix_data_quality_findings_last_inspection_id"), "data_quality_findings", ["last_inspection_id"]
    )
    op.create_index(
        "ix_data_quality_findings_record_type_record_id",
        "data_quality_findings",
        ["record_type", "record_id"],
    )

    op.create_table(
        "inspection_findings",
        sa.Column("id", BIGINT_PK, nullable=False),
        sa.Column("inspection_id", BIGINT_PK, nullable=False),
        sa.Column("violation_id", BIGINT_PK, nullable=False),
        sa.Column("dept", sa.String(), nullable=True),
        sa.Column("change", sa.String(length=16), nullable=False),
        sa.CheckConstraint(
            "change IN ('opened', 'reopened', 'still_open', 'waived', 'closed')",
            name=op.f("ck_inspection_findings_change_known"),
        ),
        sa.ForeignKeyConstraint(
            ["inspection_id"],
            ["inspections.id"],
            name=op.f("fk_inspection_findings_inspection_id_inspections"),
        ),
        sa.ForeignKeyConstraint(
            ["violation_id"], ["violations.id"], name=op.f("fk_inspection_findings_violation_id_violations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspection_findings")),
        sa.UniqueConstraint(
            "inspection_id", "violation_id", name=op.f("uq_inspection_findings_inspection_id_violation_id")
        ),
    )
    op.create_index(op.f("ix_inspection_findings_inspection_id"), "inspection_findings", ["inspection_id"])
    op.create_index(op.f("ix_inspection_findings_violation_id"), "inspection_findings", ["violation_id"])

    op.create_table(
        "inspection_summaries",
        sa.Column("id", BIGINT_PK, nullable=False),
        sa.Column("inspection_id", BIGINT_PK, nullable=False),
        sa.Column("dept", sa.String(), nullable=False),
        sa.Column("records_checked", sa.Integer(), nullable=False),
        sa.Column("findings_minor", sa.Integer(), nullable=False),
        sa.Column("findings_major", sa.Integer(), nullable=False),
        sa.Column("findings_critical", sa.Integer(), nullable=False),
        sa.Column("waived", sa.Integer(), nullable=False),
        sa.Column("data_quality", sa.Integer(), nullable=False),
        sa.Column("opened", sa.Integer(), nullable=False),
        sa.Column("closed", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["inspection_id"],
            ["inspections.id"],
            name=op.f("fk_inspection_summaries_inspection_id_inspections"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspection_summaries")),
        sa.UniqueConstraint("inspection_id", "dept", name=op.f("uq_inspection_summaries_inspection_id_dept")),
    )
    op.create_index(op.f("ix_inspection_summaries_dept"), "inspection_summaries", ["dept"])
    op.create_index(op.f("ix_inspection_summaries_inspection_id"), "inspection_summaries", ["inspection_id"])

    op.create_table(
        "notices",
        sa.Column("id", BIGINT_PK, nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("dept", sa.String(), nullable=False),
        sa.Column("inspection_id", BIGINT_PK, nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        sa.Column("issued_at", UTC_DATETIME, nullable=False),
        sa.Column("issued_by", sa.String(length=128), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("due_at", UTC_DATETIME, nullable=False),
        sa.Column("department_head", sa.String(), nullable=True),
        sa.Column("status_changed_at", UTC_DATETIME, nullable=False),
        sa.Column("acknowledged_at", UTC_DATETIME, nullable=True),
        sa.Column("acknowledged_by", sa.String(length=128), nullable=True),
        sa.Column("verified_at", UTC_DATETIME, nullable=True),
        sa.Column("verified_by", sa.String(length=128), nullable=True),
        sa.Column("closed_at", UTC_DATETIME, nullable=True),
        sa.Column("closed_by", sa.String(length=128), nullable=True),
        sa.Column("escalated_at", UTC_DATETIME, nullable=True),
        sa.CheckConstraint(
            "status IN ('issued', 'acknowledged', 'response_submitted', 'returned', 'verified', 'closed')",
            name=op.f("ck_notices_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["inspection_id"], ["inspections.id"], name=op.f("fk_notices_inspection_id_inspections")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notices")),
        sa.UniqueConstraint("month", "seq", name=op.f("uq_notices_month_seq")),
        sa.UniqueConstraint("number", name=op.f("uq_notices_number")),
    )
    op.create_index("ix_notices_dept_status", "notices", ["dept", "status"])
    op.create_index(op.f("ix_notices_inspection_id"), "notices", ["inspection_id"])
    op.create_index(op.f("ix_notices_status"), "notices", ["status"])

    op.create_table(
        "waivers",
        sa.Column("id", BIGINT_PK, nullable=False),
        sa.Column("violation_id", BIGINT_PK, nullable=False),
        sa.Column("dept", sa.String(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("expires_at", UTC_DATETIME, nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("ended_at", UTC_DATETIME, nullable=True),
        sa.Column("ended_note", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('active', 'expired', 'revoked')", name=op.f("ck_waivers_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["violation_id"], ["violations.id"], name=op.f("fk_waivers_violation_id_violations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_waivers")),
    )
    op.create_index("ix_waivers_status_expires_at", "waivers", ["status", "expires_at"])
    op.create_index(op.f("ix_waivers_violation_id"), "waivers", ["violation_id"])

    op.create_table(
        "notice_events",
        sa.Column("id", BIGINT_PK, nullable=False),
        sa.Column("notice_id", BIGINT_PK, nullable=False),
        sa.Column("at", UTC_DATETIME, nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("from_status", sa.String(length=24), nullable=True),
        sa.Column("to_status", sa.String(length=24), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["notice_id"], ["notices.id"], name=op.f("fk_notice_events_notice_id_notices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice_events")),
    )
    op.create_index(op.f("ix_notice_events_notice_id"), "notice_events", ["notice_id"])

    op.create_table(
        "notice_items",
        sa.Column("id", BIGINT_PK, nullable=False),
        sa.Column("notice_id", BIGINT_PK, nullable=False),
        sa.Column("violation_id", BIGINT_PK, nullable=False),
        sa.Column("rule_id", sa.String(length=32), nullable=False),
        sa.Column("record_type", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.String(), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("responsible", sa.String(), nullable=True),
        sa.Column("clauses", JSON_DOCUMENT, nullable=False),
        sa.Column("message_zh", sa.Text(), nullable=False),
        sa.Column("message_en", sa.Text(), nullable=False),
        sa.Column("rectify_days", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("verification", JSON_DOCUMENT, nullable=True),
        sa.CheckConstraint(
            "outcome IN ('pending', 'rectified', 'waived', 'confirmed')",
            name=op.f("ck_notice_items_outcome_known"),
        ),
        sa.ForeignKeyConstraint(
            ["notice_id"], ["notices.id"], name=op.f("fk_notice_items_notice_id_notices")
        ),
        sa.ForeignKeyConstraint(
            ["violation_id"], ["violations.id"], name=op.f("fk_notice_items_violation_id_violations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice_items")),
        sa.UniqueConstraint("notice_id", "violation_id", name=op.f("uq_notice_items_notice_id_violation_id")),
    )
    op.create_index(op.f("ix_notice_items_notice_id"), "notice_items", ["notice_id"])
    op.create_index(op.f("ix_notice_items_violation_id"), "notice_items", ["violation_id"])

    op.create_table(
        "notice_reminders",
        sa.Column("id", BIGINT_PK, nullable=False),
        sa.Column("notice_id", BIGINT_PK, nullable=False),
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("level", sa.Integer(), nullable=True),
        sa.Column("recipients", JSON_DOCUMENT, nullable=False),
        sa.Column("subject_zh", sa.Text(), nullable=False),
        sa.Column("subject_en", sa.Text(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("sent_at", UTC_DATETIME, nullable=True),
        sa.CheckConstraint(
            "kind IN ('due', 'overdue', 'escalation')", name=op.f("ck_notice_reminders_kind_known")
        ),
        sa.ForeignKeyConstraint(
            ["notice_id"], ["notices.id"], name=op.f("fk_notice_reminders_notice_id_notices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice_reminders")),
        sa.UniqueConstraint("notice_id", "key", name=op.f("uq_notice_reminders_notice_id_key")),
    )
    op.create_index(op.f("ix_notice_reminders_notice_id"), "notice_reminders", ["notice_id"])
    op.create_index(op.f("ix_notice_reminders_sent_at"), "notice_reminders", ["sent_at"])

    op.create_table(
        "notice_responses",
        sa.Column("id", BIGINT_PK, nullable=False),
        sa.Column("notice_id", BIGINT_PK, nullable=False),
        sa.Column("submitted_by", sa.String(length=128), nullable=False),
        sa.Column("submitted_at", UTC_DATETIME, nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("item_ids", JSON_DOCUMENT, nullable=True),
        sa.Column("records", JSON_DOCUMENT, nullable=False),
        sa.Column("verification", JSON_DOCUMENT, nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.Column("decided_by", sa.String(length=128), nullable=True),
        sa.Column("decided_at", UTC_DATETIME, nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["notice_id"], ["notices.id"], name=op.f("fk_notice_responses_notice_id_notices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice_responses")),
    )
    op.create_index(op.f("ix_notice_responses_notice_id"), "notice_responses", ["notice_id"])

    op.create_table(
        "notice_evidence",
        sa.Column("id", BIGINT_PK, nullable=False),
        sa.Column("response_id", BIGINT_PK, nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=128), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["response_id"],
            ["notice_responses.id"],
            name=op.f("fk_notice_evidence_response_id_notice_responses"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice_evidence")),
    )
    op.create_index(op.f("ix_notice_evidence_response_id"), "notice_evidence", ["response_id"])

    op.create_table(
        "penalties",
        sa.Column("id", BIGINT_PK, nullable=False),
        sa.Column("violation_id", BIGINT_PK, nullable=False),
        sa.Column("notice_id", BIGINT_PK, nullable=False),
        sa.Column("notice_item_id", BIGINT_PK, nullable=False),
        sa.Column("rule_id", sa.String(length=32), nullable=False),
        sa.Column("record_type", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.String(), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("dept", sa.String(), nullable=False),
        sa.Column("person", sa.String(), nullable=False),
        sa.Column("occurrence", sa.Integer(), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("confirmed_finding_at", UTC_DATETIME, nullable=False),
        sa.Column("proposed_kind", sa.String(length=24), nullable=False),
        sa.Column("proposed_amount_cents", sa.BigInteger(), nullable=True),
        sa.Column("proposed_points", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=True),
        sa.Column("points", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("adjusted", sa.Boolean(), nullable=False),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.String(length=128), nullable=True),
        sa.Column("decided_at", UTC_DATETIME, nullable=True),
        sa.CheckConstraint(
            "kind IN ('warning', 'fine', 'performance_points', 'demotion')",
            name=op.f("ck_penalties_kind_known"),
        ),
        sa.CheckConstraint(
            "status IN ('proposed', 'confirmed', 'appealed', 'upheld', 'reduced', 'overturned')",
            name=op.f("ck_penalties_status_known"),
        ),
        sa.ForeignKeyConstraint(["notice_id"], ["notices.id"], name=op.f("fk_penalties_notice_id_notices")),
        sa.ForeignKeyConstraint(
            ["notice_item_id"], ["notice_items.id"], name=op.f("fk_penalties_notice_item_id_notice_items")
        ),
        sa.ForeignKeyConstraint(
            ["violation_id"], ["violations.id"], name=op.f("fk_penalties_violation_id_violations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_penalties")),
        sa.UniqueConstraint("notice_item_id", name=op.f("uq_penalties_notice_item_id")),
    )
    op.create_index("ix_penalties_dept_status", "penalties", ["dept", "status"])
    op.create_index(op.f("ix_penalties_notice_id"), "penalties", ["notice_id"])
    op.create_index("ix_penalties_person_rule_id", "penalties", ["person", "rule_id"])
    op.create_index(op.f("ix_penalties_violation_id"), "penalties", ["violation_id"])

    op.create_table(
        "penalty_appeals",
        sa.Column("id", BIGINT_PK, nullable=False),
        sa.Column("penalty_id", BIGINT_PK, nullable=False),
        sa.Column("filed_by", sa.String(length=128), nullable=False),
        sa.Column("filed_at", UTC_DATETIME, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=128), nullable=True),
        sa.Column("decided_at", UTC_DATETIME, nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'upheld', 'reduced', 'overturned')",
            name=op.f("ck_penalty_appeals_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["penalty_id"], ["penalties.id"], name=op.f("fk_penalty_appeals_penalty_id_penalties")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_penalty_appeals")),
        sa.UniqueConstraint("penalty_id", name=op.f("uq_penalty_appeals_penalty_id")),
    )


def downgrade() -> None:
    op.drop_table("penalty_appeals")
    op.drop_index(op.f("ix_penalties_violation_id"), table_name="penalties")
    op.drop_index("ix_penalties_person_rule_id", table_name="penalties")
    op.drop_index(op.f("ix_penalties_notice_id"), table_name="penalties")
    op.drop_index("ix_penalties_dept_status", table_name="penalties")

    op.drop_table("penalties")
    op.drop_index(op.f("ix_notice_evidence_response_id"), table_name="notice_evidence")

    op.drop_table("notice_evidence")
    op.drop_index(op.f("ix_notice_responses_notice_id"), table_name="notice_responses")

    op.drop_table("notice_responses")
    op.drop_index(op.f("ix_notice_reminders_sent_at"), table_name="notice_reminders")
    op.drop_index(op.f("ix_notice_reminders_notice_id"), table_name="notice_reminders")

    op.drop_table("notice_reminders")
    op.drop_index(op.f("ix_notice_items_violation_id"), table_name="notice_items")
    op.drop_index(op.f("ix_notice_items_notice_id"), table_name="notice_items")

    op.drop_table("notice_items")
    op.drop_index(op.f("ix_notice_events_notice_id"), table_name="notice_events")

    op.drop_table("notice_events")
    op.drop_index(op.f("ix_waivers_violation_id"), table_name="waivers")
    op.drop_index("ix_waivers_status_expires_at", table_name="waivers")

    op.drop_table("waivers")
    op.drop_index(op.f("ix_notices_status"), table_name="notices")
    op.drop_index(op.f("ix_notices_inspection_id"), table_name="notices")
    op.drop_index("ix_notices_dept_status", table_name="notices")

    op.drop_table("notices")
    op.drop_index(op.f("ix_inspection_summaries_inspection_id"), table_name="inspection_summaries")
    op.drop_index(op.f("ix_inspection_summaries_dept"), table_name="inspection_summaries")

    op.drop_table("inspection_summaries")
    op.drop_index(op.f("ix_inspection_findings_violation_id"), table_name="inspection_findings")
    op.drop_index(op.f("ix_inspection_findings_inspection_id"), table_name="inspection_findings")

    op.drop_table("inspection_findings")
    op.drop_index("ix_data_quality_findings_record_type_record_id", table_name="data_quality_findings")
    op.drop_index(op.f("ix_data_quality_findings_last_inspection_id"), table_name="data_quality_findings")
    op.drop_index("ix_data_quality_findings_dept_status", table_name="data_quality_findings")

    op.drop_table("data_quality_findings")
    op.drop_index(op.f("ix_selfchecks_period"), table_name="selfchecks")

    op.drop_table("selfchecks")
    op.drop_table("notice_sequences")
    op.drop_index(op.f("ix_missing_selfchecks_status"), table_name="missing_selfchecks")

    op.drop_table("missing_selfchecks")
    op.drop_index(op.f("ix_inspections_started_at"), table_name="inspections")
    op.drop_index(op.f("ix_inspections_period"), table_name="inspections")

    op.drop_table("inspections")
