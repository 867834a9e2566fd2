"""The outbox notifies its relay on commit (see services/common/messaging.py).

Revision ID: notifier_0008
Revises: notifier_0007
Create Date: 2026-11-25
"""

from services.common.migration_ops import create_outbox_notify, drop_outbox_notify

revision = "notifier_0008"
down_revision = "notifier_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_outbox_notify()


def downgrade() -> None:
    drop_outbox_notify()
