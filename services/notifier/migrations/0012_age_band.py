"""Offers keep the patient's age band, never the exact age (services/common/patient.py).

Revision ID: notifier_0012
Revises: notifier_0011
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

from services.common.migration_ops import age_band_sql

revision = "notifier_0012"
down_revision = "notifier_0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("offer", sa.Column("patient_age_band", sa.Text))
    op.execute(f"UPDATE offer SET patient_age_band = {age_band_sql('patient_age')}")
    op.drop_column("offer", "patient_age")


def downgrade() -> None:
    op.add_column("offer", sa.Column("patient_age", sa.Integer))
    op.drop_column("offer", "patient_age_band")
