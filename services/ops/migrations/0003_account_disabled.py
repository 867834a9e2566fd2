"""An operations account can be disabled (its sessions end, it cannot log in) without being deleted.

Revision ID: ops_0003
Revises: ops_0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "ops_0003"
down_revision = "ops_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ops_account", sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    op.drop_column("ops_account", "disabled")
