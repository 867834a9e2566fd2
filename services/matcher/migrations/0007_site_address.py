"""A practice's postal address (line, postal code, city): from the RPPS import or the directory API.

Revision ID: matcher_0007
Revises: matcher_0006
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "matcher_0007"
down_revision = "matcher_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("site", sa.Column("address", JSONB))


def downgrade() -> None:
    op.drop_column("site", "address")
