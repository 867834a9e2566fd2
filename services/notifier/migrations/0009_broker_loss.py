"""What a broker loss needs: the epoch last seen whole, the outbox by time (services/common/broker_watch.py).

Revision ID: notifier_0009
Revises: notifier_0008
Create Date: 2026-11-25
"""

from services.common.migration_ops import create_broker_loss_tables, drop_broker_loss_tables

revision = "notifier_0009"
down_revision = "notifier_0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_broker_loss_tables()


def downgrade() -> None:
    drop_broker_loss_tables()
