"""The notifier's first tables: offers, messages, audit trail.

Revision ID: notifier_0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from services.common.migration_ops import TS, create_outbox_and_inbox, drop_outbox_and_inbox

revision = "notifier_0001"
down_revision = None
branch_labels = None
depends_on = None


def _offers_and_messages() -> None:
    op.create_table(
        "offer",
        sa.Column("offer_id", sa.String, primary_key=True),
        sa.Column("request_id", sa.String, nullable=False, index=True),
        sa.Column("rpps", sa.String, nullable=False),
        sa.Column("professional_name", sa.String, nullable=False),
        sa.Column("profession", sa.String, nullable=False),
        sa.Column("email", sa.String),
        sa.Column("phone", sa.String),
        sa.Column("site", JSONB, nullable=False),
        sa.Column("kind", sa.String, nullable=False),
        sa.Column("mode", sa.String, nullable=False),
        sa.Column("start", TS, nullable=False),
        sa.Column("window_end", TS),
        sa.Column("deadline", TS, nullable=False),
        sa.Column("motive", sa.String, nullable=False),
        sa.Column("patient_age", sa.Integer),
        sa.Column("patient_commune_insee", sa.String),
        sa.Column("distance_km", sa.Float, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("token_hash", sa.String, nullable=False, unique=True),
        sa.Column("chosen_start", TS),
        sa.Column("decided_at", TS),
        sa.Column("decision_reason", sa.String),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("offer_pending_expiry", "offer", ["expires_at"], postgresql_where=sa.text("status = 'pending'"))
    op.create_table(
        "notification",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("offer_id", sa.String, nullable=False, index=True),
        sa.Column("purpose", sa.String, nullable=False),
        sa.Column("channel", sa.String, nullable=False),
        sa.Column("recipient", sa.String, nullable=False),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.String),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sent_at", TS),
    )
    op.create_index("notification_pending", "notification", ["id"], postgresql_where=sa.text("status = 'pending'"))


def _audit_trail() -> None:
    op.create_table(
        "audit_entry",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("offer_id", sa.String, nullable=False, index=True),
        sa.Column("request_id", sa.String, nullable=False),
        sa.Column("actor", sa.String, nullable=False),
        sa.Column("action", sa.String, nullable=False),
        sa.Column("detail", sa.String),
    )
    # The audit trail is append-only: refuse updates and deletes at the database level.
    op.execute(
        "CREATE FUNCTION audit_entry_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'audit_entry is append-only'; END $$"
    )
    op.execute(
        "CREATE TRIGGER audit_entry_append_only BEFORE UPDATE OR DELETE ON audit_entry "
        "FOR EACH ROW EXECUTE FUNCTION audit_entry_append_only()"
    )


def upgrade() -> None:
    _offers_and_messages()
    _audit_trail()
    create_outbox_and_inbox()


def downgrade() -> None:
    drop_outbox_and_inbox()
    op.execute("DROP TRIGGER audit_entry_append_only ON audit_entry")
    op.execute("DROP FUNCTION audit_entry_append_only()")
    for table in ("audit_entry", "notification", "offer"):
        op.drop_table(table)
