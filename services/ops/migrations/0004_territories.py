"""The CPTS territories as the matcher announces them (name, communes), for the picker and the map.

Revision ID: ops_0004
Revises: ops_0003
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from services.common.migration_ops import TS

revision = "ops_0004"
down_revision = "ops_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ops_territory",
        sa.Column("cpts_id", sa.String, primary_key=True),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("communes", JSONB, nullable=False),
        sa.Column("changed_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ops_territory")
