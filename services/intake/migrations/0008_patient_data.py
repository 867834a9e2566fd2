"""Patient data kept to what the intake uses, encrypted, and erasable (issue 22).

- `orientation_request` keeps the commune and an age band; the exact age and the coordinates,
  which only the matcher uses (sealed in `request.received`), go. `patient_erased_at` says when
  the patient's data was erased (asked for, or by retention).
- `patient_contact` keeps the contact encrypted (`sealed`, services/common/sealing.py); rows of
  the plain columns are encrypted by the retention sweeper's first round, then the plain columns
  are empty.

Revision ID: intake_0008
Revises: intake_0007
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

from services.common.migration_ops import age_band_sql

revision = "intake_0008"
down_revision = "intake_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orientation_request", sa.Column("age_band", sa.Text))
    op.add_column("orientation_request", sa.Column("patient_erased_at", sa.DateTime(timezone=True)))
    op.add_column("orientation_request", sa.Column("contact_erased_at", sa.DateTime(timezone=True)))
    op.execute(f"UPDATE orientation_request SET age_band = {age_band_sql('age')}")
    for column in ("age", "lat", "lon"):
        op.drop_column("orientation_request", column)
    op.add_column("patient_contact", sa.Column("sealed", sa.Text))
    op.create_index(
        "orientation_request_retention",
        "orientation_request",
        ["received_at"],
        postgresql_where="patient_erased_at IS NULL",
    )


def downgrade() -> None:
    op.drop_index("orientation_request_retention", "orientation_request")
    op.drop_column("patient_contact", "sealed")
    op.add_column("orientation_request", sa.Column("age", sa.Integer))
    op.add_column("orientation_request", sa.Column("lat", sa.Float))
    op.add_column("orientation_request", sa.Column("lon", sa.Float))
    for column in ("contact_erased_at", "patient_erased_at", "age_band"):
        op.drop_column("orientation_request", column)
