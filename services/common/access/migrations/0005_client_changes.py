"""Every process keeps the keys it verified lately (services/common/access/registry.py) and forgets
them when a client changes: this trigger says so on channel `access_clients` at commit. Only
`last_used_at` changing (written at most once a minute per client) says nothing.

Revision ID: access_0005
Revises: access_0004
Create Date: 2026-12-03
"""

from alembic import op

revision = "access_0005"
down_revision = "access_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION api_client_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'UPDATE' AND (to_jsonb(OLD) - 'last_used_at') = (to_jsonb(NEW) - 'last_used_at') THEN
                RETURN NULL;
            END IF;
            PERFORM pg_notify('access_clients', '');
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER api_client_changed AFTER INSERT OR UPDATE OR DELETE ON api_client "
        "FOR EACH ROW EXECUTE FUNCTION api_client_changed()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER api_client_changed ON api_client")
    op.execute("DROP FUNCTION api_client_changed()")
