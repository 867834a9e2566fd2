"""Migration steps every service shares (used from each service's Alembic revisions)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

TS = sa.DateTime(timezone=True)


def create_outbox_and_inbox() -> None:
    op.create_table(
        "outbox_message",
        sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("event_id", sa.Uuid, nullable=False, unique=True),
        sa.Column("topic", sa.String, nullable=False),
        sa.Column("key", sa.String, nullable=False),
        sa.Column("value", JSONB, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("published_at", TS),
    )
    op.create_index("outbox_unpublished", "outbox_message", ["seq"], postgresql_where=sa.text("published_at IS NULL"))
    op.create_table(
        "processed_event",
        sa.Column("consumer", sa.String, primary_key=True),
        sa.Column("event_id", sa.String, primary_key=True),
        sa.Column("processed_at", TS, nullable=False),
    )


def drop_outbox_and_inbox() -> None:
    op.drop_table("processed_event")
    op.drop_table("outbox_message")


def create_outbox_notify() -> None:
    """Writing to the outbox notifies `outbox_<schema>` on commit: it wakes the relaying process,
    whichever process committed."""
    op.execute(
        """
        CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('outbox_' || TG_TABLE_SCHEMA, '');
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER outbox_notify AFTER INSERT ON outbox_message "
        "FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify()"
    )


def drop_outbox_notify() -> None:
    op.execute("DROP TRIGGER outbox_notify ON outbox_message")
    op.execute("DROP FUNCTION outbox_notify()")


def create_broker_loss_tables() -> None:
    """The broker epoch a service last saw whole, and when; the outbox and the processed event ids
    read by time (replay after a broker loss, pruning)."""
    op.create_table(
        "broker_epoch",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("epoch", sa.String, nullable=False),
        sa.Column("whole_at", TS, nullable=False),
        sa.CheckConstraint("id = 1", name="broker_epoch_one_row"),
    )
    op.create_index("outbox_published_at", "outbox_message", ["published_at"])
    op.create_index("processed_event_at", "processed_event", ["processed_at"])


def drop_broker_loss_tables() -> None:
    op.drop_index("processed_event_at", "processed_event")
    op.drop_index("outbox_published_at", "outbox_message")
    op.drop_table("broker_epoch")


def age_band_sql(age: str) -> str:
    """services/common/patient.py's `age_band` as SQL, for rows written before bands were kept."""
    return f"""CASE WHEN {age} IS NULL THEN NULL WHEN {age} < 2 THEN '<2' WHEN {age} < 18 THEN '2-17'
        WHEN {age} < 30 THEN '18-29' WHEN {age} >= 90 THEN '90+'
        ELSE ({age} / 10 * 10)::text || '-' || ({age} / 10 * 10 + 9)::text END"""
