"""Operations accounts, sessions and login attempts.

Revision ID: notifier_0004
Revises: notifier_0003
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from services.common.migration_ops import TS

revision = "notifier_0004"
down_revision = "notifier_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ops_account",
        sa.Column("email", sa.String, primary_key=True),
        sa.Column("password_hash", sa.String, nullable=False),
        sa.Column("role", sa.String, nullable=False),
        sa.Column("cpts_id", sa.String),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "ops_session",
        sa.Column("token_hash", sa.String, primary_key=True),
        sa.Column("email", sa.String, nullable=False),
        sa.Column("csrf", sa.String, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )
    op.create_table(
        "ops_login_attempt",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("email", sa.String, nullable=False, index=True),
        sa.Column("client", sa.String, nullable=False, index=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
    )


def downgrade() -> None:
    for table in ("ops_login_attempt", "ops_session", "ops_account"):
        op.drop_table(table)
