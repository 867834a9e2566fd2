"""Bookings made by the national SAS platform over FHIR, and the CPTS's FINESS number.

Revision ID: matcher_0009
Revises: matcher_0008
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "matcher_0009"
down_revision = "matcher_0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("territory", sa.Column("finess", sa.String, nullable=True))
    op.create_table(
        "platform_appointment",
        sa.Column("appointment_id", sa.String, primary_key=True),
        sa.Column("identifier_system", sa.String, nullable=False),
        sa.Column("identifier_value", sa.String, nullable=False),
        sa.Column("slot_id", sa.String, nullable=False),
        sa.Column("rpps", sa.String, nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("operator", JSONB, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("identifier_system", "identifier_value", name="platform_appointment_identifier"),
    )


def downgrade() -> None:
    op.drop_table("platform_appointment")
    op.drop_column("territory", "finess")
