"""The operations accounts and their live sessions move to the shared schema (access_0006), where
the regulators' console checks them too; this schema's tables go.

Revision ID: ops_0007
Revises: ops_0006
Create Date: 2026-12-03
"""

from alembic import op

revision = "ops_0007"
down_revision = "ops_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "INSERT INTO access.account (email, password_hash, role, cpts_id, updated_at, disabled) "
        "SELECT email, password_hash, role, cpts_id, updated_at, disabled FROM ops_account ON CONFLICT DO NOTHING"
    )
    op.execute(
        "INSERT INTO access.account_session SELECT token_hash, email, csrf, expires_at, last_seen_at "
        "FROM ops_session WHERE expires_at > now() ON CONFLICT DO NOTHING"
    )
    for table in ("ops_login_attempt", "ops_session", "ops_account"):
        op.drop_table(table)


def downgrade() -> None:
    raise NotImplementedError("the accounts live in the shared schema from here on")
