"""records and submissions

Revision ID: 0001
Revises:
Create Date: 2025-11-23

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the portable types in service/db/types.py (a migration must not change
# when the application's code does).
BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "submissions",
        sa.Column("id", BIGINT_PK, nullable=False),
        sa.Column("record_type", sa.String(length=64), nullable=False),
        sa.Column("submitted_by", sa.String(), nullable=False),
        sa.Column("submitted_at", UTC_DATETIME, nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("stored", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("versioned", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submissions")),
    )
    op.create_index(op.f("ix_submissions_submitted_at"), "submissions", ["submitted_at"])

    op.create_table(
        "records",
        sa.Column("id", BIGINT_PK, nullable=False),
        sa.Column("record_type", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.String(), nullable=False),
        sa.Column("dept", sa.String(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("payload", JSON_DOCUMENT, nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("submitted_by", sa.String(), nullable=False),
        sa.Column("submitted_at", UTC_DATETIME, nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("is_current", sa.Boolean(), nullable=False),
        sa.Column("submission_id", BIGINT_PK, nullable=True),
        sa.CheckConstraint("version >= 1", name=op.f("ck_records_version_positive")),
        sa.ForeignKeyConstraint(
            ["submission_id"], ["submissions.id"], name=op.f("fk_records_submission_id_submissions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_records")),
        sa.UniqueConstraint(
            "record_type", "record_id", "version", name=op.f("uq_records_record_type_record_id_version")
        ),
    )
    op.create_index(
        "ix_records_record_type_record_id_is_current", "records", ["record_type", "record_id", "is_current"]
    )
    op.create_index("ix_records_record_type_dept", "records", ["record_type", "dept"])
    op.create_index(op.f("ix_records_submission_id"), "records", ["submission_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_records_submission_id"), table_name="records")
    op.drop_index("ix_records_record_type_dept", table_name="records")
    op.drop_index("ix_records_record_type_record_id_is_current", table_name="records")
    op.drop_table("records")
    op.drop_index(op.f("ix_submissions_submitted_at"), table_name="submissions")
    op.drop_table("submissions")
