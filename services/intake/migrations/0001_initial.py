"""The intake's first tables.

Revision ID: intake_0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from services.common.migration_ops import TS, create_outbox_and_inbox, drop_outbox_and_inbox

revision = "intake_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "orientation_request",
        sa.Column("request_id", sa.String, primary_key=True),
        sa.Column("fingerprint", sa.String, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("urgency", sa.String, nullable=False),
        sa.Column("motive", sa.String, nullable=False),
        sa.Column("commune_insee", sa.String),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("lon", sa.Float, nullable=False),
        sa.Column("age", sa.Integer),
        sa.Column("teleconsultation_ok", sa.Boolean, nullable=False),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("deadline", TS),
        sa.Column("appointment", JSONB),
        sa.Column("explanation", JSONB),
        sa.Column("reason", sa.String),
        sa.Column("detail", sa.String),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "patient_contact",
        sa.Column("request_id", sa.String, sa.ForeignKey("orientation_request.request_id"), primary_key=True),
        sa.Column("name", sa.String),
        sa.Column("phone", sa.String),
    )
    op.create_table(
        "request_history",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("request_id", sa.String, sa.ForeignKey("orientation_request.request_id"), nullable=False, index=True),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("reason", sa.String),
    )
    create_outbox_and_inbox()


def downgrade() -> None:
    drop_outbox_and_inbox()
    op.drop_table("request_history")
    op.drop_table("patient_contact")
    op.drop_table("orientation_request")
