"""Rate limit counters shared by every process (services/common/rate_limits.py).

Revision ID: access_0002
Revises: access_0001
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "access_0002"
down_revision = "access_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_counter",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rate_counter")
