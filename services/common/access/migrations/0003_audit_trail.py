"""The audit trail of patient data (contract v2), append-only in fact: the database refuses to
update, delete or truncate it, whoever asks (services/common/audit.py).

Revision ID: access_0003
Revises: access_0002
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "access_0003"
down_revision = "access_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_entry",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_kind", sa.Text, nullable=False),
        sa.Column("actor_id", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("request_id", sa.Text),
        sa.Column("ip", sa.Text),
        sa.Column("detail", sa.Text),
        sa.CheckConstraint("actor_kind IN ('client', 'account', 'professional', 'system')", name="audit_actor_kind"),
    )
    op.create_index("audit_entry_request", "audit_entry", ["request_id", "at"])
    op.execute(
        "CREATE FUNCTION refuse_audit_change() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'the audit trail is append-only: % refused', TG_OP; END $$"
    )
    op.execute(
        "CREATE TRIGGER audit_entry_append_only BEFORE UPDATE OR DELETE ON audit_entry "
        "FOR EACH ROW EXECUTE FUNCTION refuse_audit_change()"
    )
    op.execute(
        "CREATE TRIGGER audit_entry_no_truncate BEFORE TRUNCATE ON audit_entry "
        "FOR EACH STATEMENT EXECUTE FUNCTION refuse_audit_change()"
    )


def downgrade() -> None:
    op.drop_table("audit_entry")
    op.execute("DROP FUNCTION refuse_audit_change()")
