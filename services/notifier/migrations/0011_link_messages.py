"""E-mails carrying a professional's personal link, asked for on the "send me my link" form.

Revision ID: notifier_0011
Revises: notifier_0010
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "notifier_0011"
down_revision = "notifier_0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "link_message",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("rpps", sa.String, nullable=False),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("email", sa.String, nullable=False),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.String),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
    )
    op.create_index("link_message_pending", "link_message", ["id"], postgresql_where=sa.text("status = 'pending'"))


def downgrade() -> None:
    op.drop_table("link_message")
