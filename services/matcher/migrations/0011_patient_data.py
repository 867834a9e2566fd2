"""A search keeps the age band for its offers, and when the patient's data was erased (then its
exact age, sex, red flags, treating doctor are gone and its coordinates are the commune's centre).

Revision ID: matcher_0011
Revises: matcher_0010
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

from services.common.migration_ops import age_band_sql

revision = "matcher_0011"
down_revision = "matcher_0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("search", sa.Column("age_band", sa.Text))
    op.add_column("search", sa.Column("patient_erased_at", sa.DateTime(timezone=True)))
    op.execute(f"UPDATE search SET age_band = {age_band_sql('age')}")


def downgrade() -> None:
    op.drop_column("search", "patient_erased_at")
    op.drop_column("search", "age_band")
