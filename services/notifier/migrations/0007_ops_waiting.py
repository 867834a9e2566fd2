"""Why a request waits, for the live queue of the operations dashboard.

Revision ID: notifier_0007
Revises: notifier_0006
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "notifier_0007"
down_revision = "notifier_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ops_request", sa.Column("waiting_reason", sa.String))
    op.add_column("ops_request", sa.Column("waiting_since", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("ops_request", "waiting_since")
    op.drop_column("ops_request", "waiting_reason")
