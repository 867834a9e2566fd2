"""A key per request, wrapped under the application's keys: the patient's details travel in
events sealed under it, and erasing them deletes it (services/common/sealing.py).

Revision ID: access_0004
Revises: access_0003
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "access_0004"
down_revision = "access_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "request_key",
        sa.Column("request_id", sa.Text, primary_key=True),
        sa.Column("wrapped_key", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("request_key")
