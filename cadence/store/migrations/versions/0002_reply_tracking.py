"""reply tracking: folder checkpoints, inbound messages, quarantine, webhooks

Revision ID: 0002_reply_tracking
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_reply_tracking"
down_revision = "0001"  # the initial schema's revision id (file 0001_initial_schema.py)
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mailbox") as batch:
        batch.add_column(
            sa.Column("watch_folders", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch.add_column(
            sa.Column("reply_fallback", sa.String(10), nullable=False, server_default="address")
        )
    with op.batch_alter_table("cadence") as batch:
        batch.add_column(
            sa.Column(
                "stop_others_on_reply", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
    with op.batch_alter_table("prospect") as batch:
        batch.add_column(
            sa.Column("undeliverable", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("undeliverable_reason", sa.Text(), nullable=True))
    with op.batch_alter_table("outbound_message") as batch:
        batch.add_column(sa.Column("thread_guid", sa.String(32), nullable=True))
        batch.add_column(
            sa.Column("bounce_retries", sa.Integer(), nullable=False, server_default="0")
        )
        batch.create_index("ix_outbound_message_thread_guid", ["thread_guid"])

    op.create_table(
        "folder_checkpoint",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("folder", sa.String(500), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["mailbox_id"], ["mailbox.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("mailbox_id", "folder"),
    )
    op.create_table(
        "inbound_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("folder", sa.String(500), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.String(500), nullable=False),
        sa.Column("from_address", sa.String(320), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("matched_by", sa.String(20), nullable=True),
        sa.Column("outbound_id", sa.Integer(), nullable=True),
        sa.Column("enrollment_id", sa.Integer(), nullable=True),
        sa.Column("prospect_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("reply_text", sa.Text(), nullable=True),
        sa.Column("return_date", sa.Date(), nullable=True),
        sa.Column("bounce", sa.JSON(), nullable=False),
        sa.Column("truncated", sa.Boolean(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["mailbox_id"], ["mailbox.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["outbound_id"], ["outbound_message.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["enrollment_id"], ["enrollment.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["prospect_id"], ["prospect.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("mailbox_id", "message_id"),
    )
    op.create_index("ix_inbound_enrollment", "inbound_message", ["enrollment_id"])
    op.create_table(
        "outbound_alias",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("outbound_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["outbound_id"], ["outbound_message.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_id"),
    )
    op.create_index("ix_outbound_alias_outbound_id", "outbound_alias", ["outbound_id"])
    op.create_table(
        "quarantined_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mailbox_id", sa.Integer(), nullable=True),
        sa.Column("folder", sa.String(500), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("truncated", sa.Boolean(), nullable=False),
        sa.Column("error_code", sa.String(80), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retried_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved", sa.Boolean(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["mailbox_id"], ["mailbox.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_quarantine_open", "quarantined_message", ["resolved", "id"])
    op.create_table(
        "webhook",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "webhook_delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("webhook_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(60), nullable=False),
        sa.Column("event", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["webhook_id"], ["webhook.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_webhook_delivery_due", "webhook_delivery", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_webhook_delivery_due", table_name="webhook_delivery")
    op.drop_table("webhook_delivery")
    op.drop_table("webhook")
    op.drop_index("ix_quarantine_open", table_name="quarantined_message")
    op.drop_table("quarantined_message")
    op.drop_index("ix_outbound_alias_outbound_id", table_name="outbound_alias")
    op.drop_table("outbound_alias")
    op.drop_index("ix_inbound_enrollment", table_name="inbound_message")
    op.drop_table("inbound_message")
    op.drop_table("folder_checkpoint")
    with op.batch_alter_table("outbound_message") as batch:
        batch.drop_index("ix_outbound_message_thread_guid")
        batch.drop_column("bounce_retries")
        batch.drop_column("thread_guid")
    with op.batch_alter_table("prospect") as batch:
        batch.drop_column("undeliverable_reason")
        batch.drop_column("undeliverable")
    with op.batch_alter_table("cadence") as batch:
        batch.drop_column("stop_others_on_reply")
    with op.batch_alter_table("mailbox") as batch:
        batch.drop_column("reply_fallback")
        batch.drop_column("watch_folders")
