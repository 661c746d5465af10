"""key index of records (record_key_fields, record_keys), violations and their history,
idempotency keys

Revision ID: 0003
Revises: 0002
Create Date: 2025-11-26

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the portable types in service/db/types.py (a migration must not change
# when the application's code does).
BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "record_key_fields",
        sa.Column("record_type", sa.String(length=64), nullable=False),
        sa.Column("field", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("record_type", "field", name=op.f("pk_record_key_fields")),
    )
    op.create_table(
        "record_keys",
        sa.Column("id", BIGINT_PK, nullable=False),
        sa.Column("record_pk", BIGINT_PK, nullable=False),
        sa.Column("record_type", sa.String(length=64), nullable=False),
        sa.Column("field", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["record_pk"], ["records.id"], name=op.f("fk_record_keys_record_pk_records")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record_keys")),
    )
    op.create_index(op.f("ix_record_keys_record_pk"), "record_keys", ["record_pk"])
    op.create_index(
        "ix_record_keys_record_type_field_value", "record_keys", ["record_type", "field", "value"]
    )

    op.create_table(
        "violations",
        sa.Column("id", BIGINT_PK, nullable=False),
        sa.Column("rule_id", sa.String(length=32), nullable=False),
        sa.Column("record_type", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.String(), nullable=False),
        sa.Column("dept", sa.String(), nullable=True),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("responsible", sa.String(), nullable=True),
        sa.Column("clauses", JSON_DOCUMENT, nullable=False),
        sa.Column("message_zh", sa.Text(), nullable=False),
        sa.Column("message_en", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("policy_version", sa.String(length=64), nullable=False),
        sa.Column("first_detected_at", UTC_DATETIME, nullable=False),
        sa.Column("last_evaluated_at", UTC_DATETIME, nullable=False),
        sa.Column("status_changed_at", UTC_DATETIME, nullable=False),
        sa.Column("closed_at", UTC_DATETIME, nullable=True),
        sa.CheckConstraint("status IN ('open', 'closed', 'waived')", name=op.f("ck_violations_status_known")),
        sa.CheckConstraint(
            "severity IN ('minor', 'major', 'critical')", name=op.f("ck_violations_severity_known")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_violations")),
        sa.UniqueConstraint(
            "rule_id", "record_type", "record_id", name=op.f("uq_violations_rule_id_record_type_record_id")
        ),
    )
    op.create_index("ix_violations_record_type_record_id", "violations", ["record_type", "record_id"])
    op.create_index("ix_violations_dept_status", "violations", ["dept", "status"])
    op.create_index(op.f("ix_violations_first_detected_at"), "violations", ["first_detected_at"])
    op.create_index(op.f("ix_violations_status"), "violations", ["status"])

    op.create_table(
        "violation_history",
        sa.Column("id", BIGINT_PK, nullable=False),
        sa.Column("violation_id", BIGINT_PK, nullable=False),
        sa.Column("at", UTC_DATETIME, nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("policy_version", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["violation_id"], ["violations.id"], name=op.f("fk_violation_history_violation_id_violations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_violation_history")),
    )
    op.create_index(op.f("ix_violation_history_violation_id"), "violation_history", ["violation_id"])

    op.create_table(
        "idempotency_keys",
        sa.Column("id", BIGINT_PK, nullable=False),
        sa.Column("user_id", BIGINT_PK, nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response", JSON_DOCUMENT, nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("submission_id", BIGINT_PK, nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_idempotency_keys_user_id_users")),
        sa.ForeignKeyConstraint(
            ["submission_id"], ["submissions.id"], name=op.f("fk_idempotency_keys_submission_id_submissions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_keys")),
        sa.UniqueConstraint("user_id", "key", name=op.f("uq_idempotency_keys_user_id_key")),
    )


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_index(op.f("ix_violation_history_violation_id"), table_name="violation_history")
    op.drop_table("violation_history")
    op.drop_index(op.f("ix_violations_status"), table_name="violations")
    op.drop_index(op.f("ix_violations_first_detected_at"), table_name="violations")
    op.drop_index("ix_violations_dept_status", table_name="violations")
    op.drop_index("ix_violations_record_type_record_id", table_name="violations")
    op.drop_table("violations")
    op.drop_index("ix_record_keys_record_type_field_value", table_name="record_keys")
    op.drop_index(op.f("ix_record_keys_record_pk"), table_name="record_keys")
    op.drop_table("record_keys")
    op.drop_table("record_key_fields")
