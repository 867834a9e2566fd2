"""What the regulator may try when a request ends unresolved.

Revision ID: intake_0002
Revises: intake_0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "intake_0002"
down_revision = "intake_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orientation_request", sa.Column("alternatives", JSONB))


def downgrade() -> None:
    op.drop_column("orientation_request", "alternatives")
