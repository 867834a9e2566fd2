"""An offer's time limit as a column of its own (it was read back out of the outbox's JSON).

Revision ID: matcher_0012
Revises: matcher_0011
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "matcher_0012"
down_revision = "matcher_0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("match_offer", sa.Column("answer_by", sa.DateTime(timezone=True)))
    # from the offer.proposed event still in the outbox; else the longest a territory allows
    op.execute(
        """
        UPDATE match_offer o SET answer_by = coalesce(
            (SELECT (e.value->'data'->>'answer_by')::timestamptz FROM outbox_message e
             WHERE e.key = o.request_id AND e.value->'data'->>'offer_id' = o.offer_id
               AND e.value->>'type' LIKE '%.offer.proposed.%' LIMIT 1),
            o.created_at + interval '240 minutes')
        """
    )
    op.alter_column("match_offer", "answer_by", nullable=False)
    op.create_index(
        "match_offer_pending_answer_by", "match_offer", ["answer_by"], postgresql_where="status = 'pending'"
    )


def downgrade() -> None:
    op.drop_index("match_offer_pending_answer_by", "match_offer")
    op.drop_column("match_offer", "answer_by")
