"""Several channels per message, every delivery attempt recorded; offer choices and reminders.

Revision ID: notifier_0002
Revises: notifier_0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from services.common.migration_ops import TS

revision = "notifier_0002"
down_revision = "notifier_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("offer", sa.Column("channels", JSONB))
    op.add_column("offer", sa.Column("choices", JSONB))
    op.add_column("offer", sa.Column("protocol", sa.String))
    op.add_column("offer", sa.Column("reminded_at", TS))
    op.add_column("notification", sa.Column("channels", JSONB))
    op.add_column("notification", sa.Column("channel_index", sa.Integer, nullable=False, server_default="0"))
    op.add_column("notification", sa.Column("delivered", JSONB))
    op.add_column("notification", sa.Column("recipient_name", sa.String))
    op.alter_column("notification", "channel", nullable=True)
    op.alter_column("notification", "recipient", nullable=True)
    op.create_table(
        "delivery_attempt",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("notification_id", sa.BigInteger, nullable=False, index=True),
        sa.Column("offer_id", sa.String, nullable=False, index=True),
        sa.Column("channel", sa.String, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("error", sa.String),
    )


def downgrade() -> None:
    op.drop_table("delivery_attempt")
    for column in ("recipient_name", "delivered", "channel_index", "channels"):
        op.drop_column("notification", column)
    for column in ("reminded_at", "protocol", "choices", "channels"):
        op.drop_column("offer", column)
