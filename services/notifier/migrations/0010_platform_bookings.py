"""The read model records bookings of the national SAS platform and appointments' outcomes.

Revision ID: notifier_0010
Revises: notifier_0009
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "notifier_0010"
down_revision = "notifier_0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL: the request came through a regulator's request and our cascade; 'platform': booked over FHIR
    op.add_column("ops_request", sa.Column("channel", sa.String))
    # the appointment took place (true) or the patient did not come (false); NULL: not reported
    op.add_column("ops_request", sa.Column("honoured", sa.Boolean))


def downgrade() -> None:
    op.drop_column("ops_request", "honoured")
    op.drop_column("ops_request", "channel")
