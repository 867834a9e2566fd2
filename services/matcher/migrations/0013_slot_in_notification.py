"""A slot's change notification carries the slot: every matcher process puts it in its index from
the payload instead of reading the row again (two statements per request per process under load,
issue 24). The other kinds still name the row to reload (`<kind>:<key>`).

Revision ID: matcher_0013
Revises: matcher_0012
Create Date: 2026-12-03
"""

from alembic import op

revision = "matcher_0013"
down_revision = "matcher_0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION slot_announce() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.revision := nextval('directory_revision');
            PERFORM pg_notify('matcher_directory', 'slotrow:' || json_build_object(
                'slot_id', NEW.slot_id, 'rpps', NEW.rpps, 'site_id', NEW.site_id,
                'start', extract(epoch FROM NEW.start), 'end', extract(epoch FROM NEW."end"),
                'mode', NEW.mode, 'state', NEW.state, 'revision', NEW.revision)::text);
            RETURN NEW;
        END $$
        """
    )
    op.execute("DROP TRIGGER slot_touch ON slot")
    op.execute(
        "CREATE TRIGGER slot_touch BEFORE INSERT OR UPDATE ON slot FOR EACH ROW EXECUTE FUNCTION slot_announce()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER slot_touch ON slot")
    op.execute(
        "CREATE TRIGGER slot_touch BEFORE INSERT OR UPDATE ON slot "
        "FOR EACH ROW EXECUTE FUNCTION directory_touch('slot', 'slot_id')"
    )
    op.execute("DROP FUNCTION slot_announce()")
