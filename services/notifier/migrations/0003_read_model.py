"""The operations read model, fed by the topics (then in services/notifier/read_model.py; the
operations service took it over, services/ops/read_model.py, and notifier_0013 drops these tables).

Revision ID: notifier_0003
Revises: notifier_0002
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from services.common.migration_ops import TS

revision = "notifier_0003"
down_revision = "notifier_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
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
        sa.Column("kind", sa.String),
        sa.Column("slot_id", sa.String),
        sa.Column("unresolved_at", TS),
        sa.Column("reason", sa.String),
        sa.Column("cancelled_at", TS),
    )
    op.create_table(
        "ops_offer",
        sa.Column("offer_id", sa.String, primary_key=True),
        sa.Column("request_id", sa.String, nullable=False),
        sa.Column("rpps", sa.String),
        sa.Column("cpts_id", sa.String),
        sa.Column("proposed_at", TS, index=True),
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


def downgrade() -> None:
    for table in ("ops_slot", "ops_professional_version", "ops_offer", "ops_request"):
        op.drop_table(table)
