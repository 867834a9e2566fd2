"""Why a searching request waits, shown to the regulator.

Revision ID: intake_0004
Revises: intake_0003
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "intake_0004"
down_revision = "intake_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orientation_request", sa.Column("waiting", JSONB))


def downgrade() -> None:
    op.drop_column("orientation_request", "waiting")
