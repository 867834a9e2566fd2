"""Where appointments take place, for the dashboard's map.

Revision ID: notifier_0005
Revises: notifier_0004
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "notifier_0005"
down_revision = "notifier_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ops_request", sa.Column("appointment_commune", sa.String))


def downgrade() -> None:
    op.drop_column("ops_request", "appointment_commune")
