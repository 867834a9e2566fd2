"""The operations read model and accounts once lived in the notifier's schema; the operations
service has its own since (services/ops, which copied the accounts in ops_0001): nothing reads
these tables any more.

Revision ID: notifier_0013
Revises: notifier_0012
Create Date: 2026-12-03
"""

from alembic import op

revision = "notifier_0013"
down_revision = "notifier_0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        DO $$ DECLARE r record; BEGIN
            FOR r IN SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE 'ops\\_%'
            LOOP EXECUTE format('DROP TABLE %I CASCADE', r.tablename); END LOOP;
        END $$
        """
    )


def downgrade() -> None:
    """Nothing to bring back: the operations service holds these (services/ops/migrations)."""
