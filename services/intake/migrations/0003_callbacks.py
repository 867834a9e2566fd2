"""Status changes pushed to the regulator's callback URL.

Revision ID: intake_0003
Revises: intake_0002
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from services.common.migration_ops import TS

revision = "intake_0003"
down_revision = "intake_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orientation_request", sa.Column("callback_url", sa.String))
    op.add_column("orientation_request", sa.Column("correlation_id", sa.String))
    op.create_table(
        "callback_delivery",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("event_id", sa.String, nullable=False, unique=True),
        sa.Column("request_id", sa.String, nullable=False, index=True),
        sa.Column("url", sa.String, nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.String),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("delivered_at", TS),
    )
    op.create_index("callback_pending", "callback_delivery", ["id"], postgresql_where=sa.text("status = 'pending'"))


def downgrade() -> None:
    op.drop_table("callback_delivery")
    op.drop_column("orientation_request", "correlation_id")
    op.drop_column("orientation_request", "callback_url")
