"""A request belongs to the organisation whose client posted it (contract v2).

`request_id` stays the id every service and event knows; `external_id` is the regulator's own
id, unique within its organisation only. Requests received before this belong to `legacy`
(read by an admin key).

Revision ID: intake_0007
Revises: intake_0006
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "intake_0007"
down_revision = "intake_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orientation_request", sa.Column("organisation", sa.Text, nullable=False, server_default="legacy"))
    op.add_column("orientation_request", sa.Column("external_id", sa.Text))
    op.add_column("orientation_request", sa.Column("client_id", sa.Text))
    op.execute("UPDATE orientation_request SET external_id = request_id")
    op.alter_column("orientation_request", "external_id", nullable=False)
    op.create_unique_constraint("orientation_request_owner", "orientation_request", ["organisation", "external_id"])


def downgrade() -> None:
    op.drop_constraint("orientation_request_owner", "orientation_request")
    op.drop_column("orientation_request", "client_id")
    op.drop_column("orientation_request", "external_id")
    op.drop_column("orientation_request", "organisation")
