"""The matcher's first tables: the directory and the searches.

Revision ID: matcher_0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from services.common.migration_ops import TS, create_outbox_and_inbox, drop_outbox_and_inbox

revision = "matcher_0001"
down_revision = None
branch_labels = None
depends_on = None


def _directory() -> None:
    op.create_table(
        "territory",
        sa.Column("cpts_id", sa.String, primary_key=True),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("communes", JSONB, nullable=False),
        sa.Column("radius_km", sa.Float, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("territory_communes", "territory", ["communes"], postgresql_using="gin")
    op.create_table(
        "professional",
        sa.Column("rpps", sa.String, primary_key=True),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("profession", sa.String, nullable=False),
        sa.Column("cpts_id", sa.String),
        sa.Column("sas_participation", sa.String, nullable=False),
        sa.Column("accepts_overflow", sa.Boolean, nullable=False),
        sa.Column("overflow_daily_cap", sa.Integer, nullable=False),
        sa.Column("email", sa.String),
        sa.Column("phone", sa.String),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "site",
        sa.Column("rpps", sa.String, sa.ForeignKey("professional.rpps"), primary_key=True),
        sa.Column("site_id", sa.String, primary_key=True),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("commune_insee", sa.String),
        sa.Column("department", sa.String),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("lon", sa.Float, nullable=False),
        sa.Column("opening_hours", JSONB),
        sa.Column("active", sa.Boolean, nullable=False),
    )
    op.create_table(
        "slot",
        sa.Column("slot_id", sa.String, primary_key=True),
        sa.Column("rpps", sa.String, nullable=False),
        sa.Column("site_id", sa.String, nullable=False),
        sa.Column("start", TS, nullable=False),
        sa.Column("end", TS, nullable=False),
        sa.Column("mode", sa.String, nullable=False),
        sa.Column("state", sa.String, nullable=False),
        sa.Column("request_id", sa.String),
        sa.Column("offer_id", sa.String, index=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["rpps", "site_id"], ["site.rpps", "site.site_id"]),
    )
    op.create_index("slot_free_by_start", "slot", ["start"], postgresql_where=sa.text("state = 'free'"))


def _searches() -> None:
    op.create_table(
        "search",
        sa.Column("request_id", sa.String, primary_key=True),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("deadline", TS, nullable=False),
        sa.Column("urgency", sa.String, nullable=False),
        sa.Column("motive", sa.String, nullable=False),
        sa.Column("commune_insee", sa.String),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("lon", sa.Float, nullable=False),
        sa.Column("age", sa.Integer),
        sa.Column("teleconsultation_ok", sa.Boolean, nullable=False),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("current_offer_id", sa.String),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "match_offer",
        sa.Column("offer_id", sa.String, primary_key=True),
        sa.Column("request_id", sa.String, nullable=False, index=True),
        sa.Column("rpps", sa.String, nullable=False, index=True),
        sa.Column("site_id", sa.String, nullable=False),
        sa.Column("slot_id", sa.String),
        sa.Column("kind", sa.String, nullable=False),
        sa.Column("mode", sa.String, nullable=False),
        sa.Column("start", TS, nullable=False),
        sa.Column("window_end", TS),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("explanation", JSONB),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("decided_at", TS),
    )


def upgrade() -> None:
    _directory()
    _searches()
    create_outbox_and_inbox()


def downgrade() -> None:
    drop_outbox_and_inbox()
    for table in ("match_offer", "search", "slot", "site", "professional", "territory"):
        op.drop_table(table)
