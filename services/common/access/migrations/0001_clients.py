"""API clients with roles and scopes (contract v2).

Revision ID: access_0001
Revises:
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "access_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_client",
        sa.Column("client_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("organisation", sa.Text, nullable=False),
        sa.Column("departments", ARRAY(sa.Text)),
        sa.Column("cpts_ids", ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("key_hash", sa.Text, nullable=False, unique=True),
        sa.Column("signing_secret", sa.Text, nullable=False),
        sa.Column("previous_signing_secret", sa.Text),
        sa.Column("previous_secret_until", sa.DateTime(timezone=True)),
        sa.Column("source", sa.Text, nullable=False, server_default="api"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("role IN ('admin', 'regulator', 'directory', 'platform')", name="api_client_role"),
    )


def downgrade() -> None:
    op.drop_table("api_client")
