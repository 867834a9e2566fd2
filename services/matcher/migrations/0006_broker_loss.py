"""What a broker loss needs: the epoch last seen whole, the outbox by time (services/common/broker_watch.py).

Revision ID: matcher_0006
Revises: matcher_0005
Create Date: 2026-11-25
"""

from services.common.migration_ops import create_broker_loss_tables, drop_broker_loss_tables

revision = "matcher_0006"
down_revision = "matcher_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_broker_loss_tables()


def downgrade() -> None:
    drop_broker_loss_tables()
