"""People's accounts (operations and regulators' console) move to the shared schema: a
regulator's console (the intake) and the operations pages (ops) check the same sessions.
Version 2 adds the `regulator` role, with an `organisation` (its requests) and `departments`.
The rows of the operations schema are copied by its own migration (ops_0007), which then drops
its tables.

Revision ID: access_0006
Revises: access_0005
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "access_0006"
down_revision = "access_0005"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "account",
        sa.Column("email", sa.String, primary_key=True),
        sa.Column("password_hash", sa.String, nullable=False),
        sa.Column("role", sa.String, nullable=False),
        sa.Column("cpts_id", sa.String),
        sa.Column("organisation", sa.String),
        sa.Column("departments", ARRAY(sa.Text)),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.CheckConstraint(
            "(role = 'coordinator' AND cpts_id IS NOT NULL AND organisation IS NULL) OR "
            "(role = 'sas_admin' AND cpts_id IS NULL AND organisation IS NULL) OR "
            "(role = 'regulator' AND cpts_id IS NULL AND organisation IS NOT NULL)",
            name="account_role_scope",
        ),
    )
    op.create_table(
        "account_session",
        sa.Column("token_hash", sa.String, primary_key=True),
        sa.Column("email", sa.String, nullable=False, index=True),
        sa.Column("csrf", sa.String, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("last_seen_at", TS, nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "login_attempt",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("email", sa.String, nullable=False, index=True),
        sa.Column("client", sa.String, nullable=False, index=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
    )


def downgrade() -> None:
    for table in ("login_attempt", "account_session", "account"):
        op.drop_table(table)
