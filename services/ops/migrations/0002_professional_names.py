"""Professionals by name on the dashboard: the read model records the name each
`professional.changed` event carries.

Revision ID: ops_0002
Revises: ops_0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "ops_0002"
down_revision = "ops_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ops_professional_version", sa.Column("name", sa.String))


def downgrade() -> None:
    op.drop_column("ops_professional_version", "name")
