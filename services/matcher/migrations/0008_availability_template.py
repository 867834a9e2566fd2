"""Weekly availability templates, kept so that the weeks ahead are filled again every hour.

Revision ID: matcher_0008
Revises: matcher_0007
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "matcher_0008"
down_revision = "matcher_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "availability_template",
        sa.Column("rpps", sa.String, primary_key=True),
        sa.Column("site_id", sa.String, primary_key=True),
        sa.Column("rules", JSONB, nullable=False),
        sa.Column("weeks", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("availability_template")
