"""Why an offer was withdrawn (parallel offers: another professional accepted first).

Revision ID: notifier_0006
Revises: notifier_0005
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "notifier_0006"
down_revision = "notifier_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("offer", sa.Column("withdrawal_cause", sa.String))


def downgrade() -> None:
    op.drop_column("offer", "withdrawal_cause")
