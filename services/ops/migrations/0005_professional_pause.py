"""A professional's pause as the matcher announces it (the coordinator's directory page shows it).

Revision ID: ops_0005
Revises: ops_0004
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

from services.common.migration_ops import TS

revision = "ops_0005"
down_revision = "ops_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ops_professional_version", sa.Column("paused_until", TS))


def downgrade() -> None:
    op.drop_column("ops_professional_version", "paused_until")
