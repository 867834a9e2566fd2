"""An operations session ends after a while without use (idle timeout), not only 12 h after login.

Revision ID: ops_0006
Revises: ops_0005
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "ops_0006"
down_revision = "ops_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "ops_session",
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_column("ops_session", "last_seen_at")
