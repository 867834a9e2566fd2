"""The outbox notifies its relay on commit (see services/common/messaging.py).

Revision ID: intake_0005
Revises: intake_0004
Create Date: 2026-11-25
"""

from services.common.migration_ops import create_outbox_notify, drop_outbox_notify

revision = "intake_0005"
down_revision = "intake_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_outbox_notify()


def downgrade() -> None:
    drop_outbox_notify()
