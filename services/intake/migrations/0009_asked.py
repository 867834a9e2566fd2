"""While a request is offered, who is being asked and until when (the regulators' console shows
it): the latest offer's professional and answer time, cleared when the request ends.

Revision ID: intake_0009
Revises: intake_0008
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "intake_0009"
down_revision = "intake_0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orientation_request", sa.Column("asked", JSONB))
    op.create_index("orientation_request_organisation_recent", "orientation_request", ["organisation", "received_at"])


def downgrade() -> None:
    op.drop_index("orientation_request_organisation_recent", "orientation_request")
    op.drop_column("orientation_request", "asked")
