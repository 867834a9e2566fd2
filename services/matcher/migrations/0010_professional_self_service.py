"""What a professional sets on their own page: a pause, no extra patients today, their links.

Revision ID: matcher_0010
Revises: matcher_0009
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "matcher_0010"
down_revision = "matcher_0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("professional", sa.Column("paused_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("professional", sa.Column("no_overflow_on", sa.Date, nullable=True))
    op.add_column("professional", sa.Column("links_valid_from", sa.DateTime(timezone=True), nullable=True))
    op.add_column("professional", sa.Column("link_sent_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for column in ("link_sent_at", "links_valid_from", "no_overflow_on", "paused_until"):
        op.drop_column("professional", column)
