"""The operations service's tables (schema `ops`): the read model fed by the topics, and the
operations accounts. Until 2026-11-25 both lived in the notifier's schema.

Revision ID: ops_0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

from services.common.migration_ops import (
    TS,
    create_broker_loss_tables,
    create_outbox_and_inbox,
    create_outbox_notify,
    drop_broker_loss_tables,
    drop_outbox_and_inbox,
    drop_outbox_notify,
)

revision = "ops_0001"
down_revision = None
branch_labels = None
depends_on = None


def _read_model() -> None:
    op.create_table(
        "ops_request",
        sa.Column("request_id", sa.String, primary_key=True),
        sa.Column("received_at", TS, index=True),
        sa.Column("commune_insee", sa.String),
        sa.Column("patient_cpts", sa.String),
        sa.Column("deadline", TS),
        sa.Column("confirmed_at", TS),
        sa.Column("appointment_start", TS),
        sa.Column("appointment_rpps", sa.String),
        sa.Column("appointment_cpts", sa.String),
        sa.Column("appointment_commune", sa.String),
        sa.Column("kind", sa.String),
        sa.Column("slot_id", sa.String),
        sa.Column("unresolved_at", TS),
        sa.Column("reason", sa.String),
        sa.Column("cancelled_at", TS),
        sa.Column("waiting_reason", sa.String),
        sa.Column("waiting_since", TS),
        # NULL: through a regulator's request and the cascade; 'platform': booked over FHIR
        sa.Column("channel", sa.String),
        # the appointment took place (true) or the patient did not come (false); NULL: not reported
        sa.Column("honoured", sa.Boolean),
    )
    op.create_table(
        "ops_offer",
        sa.Column("offer_id", sa.String, primary_key=True),
        sa.Column("request_id", sa.String, nullable=False),
        sa.Column("rpps", sa.String),
        sa.Column("cpts_id", sa.String),
        sa.Column("proposed_at", TS, index=True),
        sa.Column("answer_by", TS),
        sa.Column("accepted_at", TS),
        sa.Column("refused_at", TS),
        sa.Column("refusal_reason", sa.String),
        sa.Column("expired_at", TS),
        sa.Column("withdrawn_at", TS),
    )
    op.create_table(
        "ops_professional_version",
        sa.Column("rpps", sa.String, primary_key=True),
        sa.Column("at", TS, primary_key=True),
        sa.Column("profession", sa.String, nullable=False),
        sa.Column("cpts_id", sa.String),
        sa.Column("sas_participation", sa.String, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
    )
    op.create_table(
        "ops_slot",
        sa.Column("slot_id", sa.String, primary_key=True),
        sa.Column("rpps", sa.String, nullable=False),
        sa.Column("start", TS, index=True),
        sa.Column("end", TS),
        sa.Column("state", sa.String),
        sa.Column("changed_at", TS),
        sa.Column("booked", sa.Boolean, nullable=False, server_default=sa.false()),
    )


def _accounts() -> None:
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
    # Accounts made while they lived in the notifier's schema come along, once (the only
    # statement across schemas; the read model itself is rebuilt from the topics by the new
    # consumer group, which starts from the earliest records).
    op.execute(
        """
        DO $$ BEGIN
            -- (a role of its own cannot see the notifier's schema: then there is nothing to copy,
            -- the installations that had such accounts ran this before roles existed)
            IF EXISTS (SELECT FROM pg_tables WHERE schemaname = 'notifier' AND tablename = 'ops_account') THEN
                IF has_schema_privilege('notifier', 'USAGE') THEN
                    INSERT INTO ops_account SELECT email, password_hash, role, cpts_id, updated_at
                    FROM notifier.ops_account ON CONFLICT DO NOTHING;
                END IF;
            END IF;
        END $$
        """
    )


def upgrade() -> None:
    create_outbox_and_inbox()
    create_outbox_notify()
    create_broker_loss_tables()
    _read_model()
    _accounts()


def downgrade() -> None:
    for table in (
        "ops_login_attempt",
        "ops_session",
        "ops_account",
        "ops_slot",
        "ops_professional_version",
        "ops_offer",
        "ops_request",
    ):
        op.drop_table(table)
    drop_broker_loss_tables()
    drop_outbox_notify()
    drop_outbox_and_inbox()
