"""mail: users' email addresses, managers' digest subscriptions, the mail outbox and its inline images

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the portable types in service/db/types.py (a migration must not change
# when the application's code does).
BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("users", sa.Column("email", sa.String(length=254), nullable=True))

    op.create_table(
        "digest_subscriptions",
        sa.Column("id", BIGINT_PK, nullable=False),
        sa.Column("user_id", BIGINT_PK, nullable=False),
        sa.Column("depts", JSON_DOCUMENT, nullable=False),
        sa.Column("cadence", sa.String(length=8), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.CheckConstraint(
            "cadence IN ('weekly', 'monthly')", name=op.f("ck_digest_subscriptions_cadence_known")
        ),
        sa.CheckConstraint("language IN ('zh', 'en')", name=op.f("ck_digest_subscriptions_language_known")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_digest_subscriptions_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_digest_subscriptions")),
        sa.UniqueConstraint("user_id", "cadence", name=op.f("uq_digest_subscriptions_user_id_cadence")),
    )
    op.create_index(op.f("ix_digest_subscriptions_user_id"), "digest_subscriptions", ["user_id"])

    op.create_table(
        "mail_outbox",
        sa.Column("id", BIGINT_PK, nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("source_key", sa.String(length=200), nullable=False),
        sa.Column("subscription_id", BIGINT_PK, nullable=True),
        sa.Column("period", sa.String(length=32), nullable=True),
        sa.Column("reminder_id", BIGINT_PK, nullable=True),
        sa.Column("owner_id", BIGINT_PK, nullable=True),
        sa.Column("recipients", JSON_DOCUMENT, nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTC_DATETIME, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", UTC_DATETIME, nullable=True),
        sa.CheckConstraint("kind IN ('digest', 'notice_reminder')", name=op.f("ck_mail_outbox_kind_known")),
        sa.CheckConstraint(
            "status IN ('queued', 'sent', 'failed', 'outbox_only', 'no_recipient')",
            name=op.f("ck_mail_outbox_status_known"),
        ),
        sa.CheckConstraint("language IN ('zh', 'en')", name=op.f("ck_mail_outbox_language_known")),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["digest_subscriptions.id"],
            name=op.f("fk_mail_outbox_subscription_id_digest_subscriptions"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["reminder_id"], ["notice_reminders.id"], name=op.f("fk_mail_outbox_reminder_id_notice_reminders")
        ),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_mail_outbox_owner_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_outbox")),
        sa.UniqueConstraint("source_key", name=op.f("uq_mail_outbox_source_key")),
    )
    op.create_index(op.f("ix_mail_outbox_subscription_id"), "mail_outbox", ["subscription_id"])
    op.create_index(op.f("ix_mail_outbox_reminder_id"), "mail_outbox", ["reminder_id"])
    op.create_index(op.f("ix_mail_outbox_owner_id"), "mail_outbox", ["owner_id"])
    op.create_index("ix_mail_outbox_status_next_attempt_at", "mail_outbox", ["status", "next_attempt_at"])

    op.create_table(
        "mail_outbox_images",
        sa.Column("id", BIGINT_PK, nullable=False),
        sa.Column("message_id", BIGINT_PK, nullable=False),
        sa.Column("cid", sa.String(length=200), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"], ["mail_outbox.id"], name=op.f("fk_mail_outbox_images_message_id_mail_outbox")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_outbox_images")),
        sa.UniqueConstraint("message_id", "cid", name=op.f("uq_mail_outbox_images_message_id_cid")),
    )
    op.create_index(op.f("ix_mail_outbox_images_message_id"), "mail_outbox_images", ["message_id"])


def downgrade() -> None:
    op.drop_table("mail_outbox_images")
    op.drop_table("mail_outbox")
    op.drop_table("digest_subscriptions")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("email")
