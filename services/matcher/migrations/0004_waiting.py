"""Requests wait for a busy or closed professional; parallel offers per territory.

Revision ID: matcher_0004
Revises: matcher_0003
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "matcher_0004"
down_revision = "matcher_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("territory", sa.Column("parallel_offers", sa.Integer, nullable=False, server_default="1"))
    op.add_column("search", sa.Column("wait_reason", sa.String))
    op.add_column("search", sa.Column("look_again_at", sa.DateTime(timezone=True)))
    op.add_column("search", sa.Column("waited", sa.Boolean, nullable=False, server_default=sa.false()))
    op.drop_column("search", "current_offer_id")  # a request may have several offers out
    op.create_index("search_waiting", "search", ["look_again_at"], postgresql_where=sa.text("status = 'waiting'"))
    op.create_index(
        "match_offer_pending_by_request", "match_offer", ["request_id"], postgresql_where=sa.text("status = 'pending'")
    )


def downgrade() -> None:
    op.drop_index("match_offer_pending_by_request", "match_offer")
    op.drop_index("search_waiting", "search")
    op.add_column("search", sa.Column("current_offer_id", sa.String))
    op.drop_column("search", "waited")
    op.drop_column("search", "look_again_at")
    op.drop_column("search", "wait_reason")
    op.drop_column("territory", "parallel_offers")
