"""How to reach professionals, the territory's time to answer, the patient's own doctor.

Revision ID: matcher_0003
Revises: matcher_0002
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "matcher_0003"
down_revision = "matcher_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("professional", sa.Column("channels", JSONB))
    op.add_column("territory", sa.Column("offer_timeout_minutes", sa.Float, nullable=False, server_default="15"))
    op.add_column("search", sa.Column("treating_rpps", sa.String))


def downgrade() -> None:
    op.drop_column("search", "treating_rpps")
    op.drop_column("territory", "offer_timeout_minutes")
    op.drop_column("professional", "channels")
