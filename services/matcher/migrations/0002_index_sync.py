"""Revisions and change notifications for the in-memory candidate index; closures; teleconsultation.

Every write to a directory row (territory, professional, site, slot) or an offer stamps it with
a revision from one sequence and notifies channel `matcher_directory` with `<kind>:<key>`.
Notifications are delivered on commit, in commit order, to every matcher process listening.

Revision ID: matcher_0002
Revises: matcher_0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "matcher_0002"
down_revision = "matcher_0001"
branch_labels = None
depends_on = None

# table -> (the kind of change announced, the column naming what to reload)
WATCHED = {
    "territory": ("territory", "cpts_id"),
    "professional": ("professional", "rpps"),
    "site": ("professional", "rpps"),
    "slot": ("slot", "slot_id"),
    "match_offer": ("load", "rpps"),
}


def upgrade() -> None:
    op.execute("CREATE SEQUENCE directory_revision")
    for table in WATCHED:
        op.add_column(
            table,
            sa.Column(
                "revision", sa.BigInteger, nullable=False, server_default=sa.text("nextval('directory_revision')")
            ),
        )
    op.add_column("professional", sa.Column("teleconsultation", sa.Boolean, nullable=False, server_default=sa.false()))
    op.add_column("site", sa.Column("closures", JSONB))
    op.add_column("search", sa.Column("sex", sa.String))
    op.add_column("search", sa.Column("red_flags", JSONB))
    op.create_index(
        "match_offer_pending_by_rpps", "match_offer", ["rpps"], postgresql_where=sa.text("status = 'pending'")
    )
    op.execute(
        """
        CREATE FUNCTION directory_touch() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.revision := nextval('directory_revision');
            PERFORM pg_notify('matcher_directory', TG_ARGV[0] || ':' || (to_jsonb(NEW) ->> TG_ARGV[1]));
            RETURN NEW;
        END $$
        """
    )
    for table, (kind, key) in WATCHED.items():
        op.execute(
            f"CREATE TRIGGER {table}_touch BEFORE INSERT OR UPDATE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION directory_touch('{kind}', '{key}')"
        )


def downgrade() -> None:
    for table in WATCHED:
        op.execute(f"DROP TRIGGER {table}_touch ON {table}")
        op.drop_column(table, "revision")
    op.execute("DROP FUNCTION directory_touch()")
    op.execute("DROP SEQUENCE directory_revision")
    op.drop_index("match_offer_pending_by_rpps", "match_offer")
    op.drop_column("site", "closures")
    op.drop_column("search", "sex")
    op.drop_column("search", "red_flags")
    op.drop_column("professional", "teleconsultation")
