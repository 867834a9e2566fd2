"""Messages to professionals: each notification tried on its channels in the professional's order.

A channel is retried with a growing delay; after MAX_TRIES_PER_CHANNEL failures it is given up
and the next one is tried. Every channel gets the message (the contract: each offer is e-mailed
and sent on the professional's other channels); every attempt is kept. An offer's messages go
out one after another (see services/common/delivery.py).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlmodel import col, select

from services.common import metrics
from services.common.db import Database, Transaction
from services.notifier.channels import Message, Sender
from services.notifier.models import Notification, NotificationStatus, Offer

log = structlog.get_logger(__name__)
MAX_TRIES_PER_CHANNEL = 4

Compose = Callable[[Notification, Offer, dict[str, str]], Message]


@dataclass(frozen=True)
class Outgoing:
    notification_id: int
    offer_id: str
    request_id: str
    purpose: str
    message: Message
    channel_index: int = 0  # the channel and the attempt it is sent at (see record)
    attempts: int = 0


class ProfessionalMessages:
    """The notifier's `Outbound`: `compose` writes a message for one channel."""

    def __init__(self, senders: dict[str, Sender], compose: Compose, on_next_channel: list[Callable[[], None]]) -> None:
        self.senders, self.compose, self.on_next_channel = senders, compose, on_next_channel

    def outgoing(self, notification: Notification, offer: Offer) -> Outgoing:
        """The notification's message on its current channel."""
        assert notification.id is not None, "flushed"
        channel = (notification.channels or [])[notification.channel_index]
        message = self.compose(notification, offer, channel)
        return Outgoing(
            notification.id,
            offer.offer_id,
            offer.request_id,
            notification.purpose,
            message,
            notification.channel_index,
            notification.attempts,
        )

    async def claim(self, tx: Transaction, now: datetime, limit: int, lease_until: datetime) -> list[Outgoing]:
        due = (
            await tx.session.execute(
                select(Notification, Offer)
                .join(Offer, col(Offer.offer_id) == col(Notification.offer_id))
                .where(col(Notification.status) == NotificationStatus.PENDING, col(Notification.next_attempt_at) <= now)
                .order_by(col(Notification.id))
                .limit(limit)
                .with_for_update(of=Notification, skip_locked=True)
            )
        ).all()
        for notification, _ in due:
            notification.next_attempt_at = lease_until
        return [self.outgoing(notification, offer) for notification, offer in due]

    def key(self, item: Outgoing) -> Hashable:
        return item.offer_id

    async def send(self, item: Outgoing) -> None:
        await self.senders[item.message.channel].send(item.message)

    async def record(self, db: Database, sent: list[tuple[Outgoing, str | None]], now: datetime) -> bool:
        """Every outcome in one statement on its own (RECORD): each attempt kept; a channel that
        took the message, or failed MAX_TRIES_PER_CHANNEL times, is done with and the next one is
        tried (the pump poked); a failure before that is retried with a growing delay. Only a row
        still at the channel and attempt it was sent at is moved, so that the statement tried again
        after a lost connection changes nothing twice. An offer's messages are not held back by
        one another between rounds: never more to do at once."""
        by_id = {item.notification_id: (item, error) for item, error in sent}
        rows = await db.statement(
            RECORD,
            ids=[item.notification_id for item, _ in sent],
            indexes=[item.channel_index for item, _ in sent],
            attempts=[item.attempts for item, _ in sent],
            channels=[item.message.channel for item, _ in sent],
            errors=[error for _, error in sent],
            tries=MAX_TRIES_PER_CHANNEL,
            now=now,
        )
        next_channel = False
        for row in rows:
            item, error = by_id[row.id]
            metrics.MESSAGES.labels(row.channel, "failed" if error else "sent").inc()
            about = {"offer_id": item.offer_id, "request_id": item.request_id, "purpose": item.purpose}
            if error is None:
                log.info("message sent", channel=row.channel, **about)
            else:
                log.warning("message not sent", channel=row.channel, attempts=item.attempts + 1, error=error, **about)
            next_channel = next_channel or (row.over and row.status == NotificationStatus.PENDING)
        if next_channel:
            for poke in self.on_next_channel:  # go on right away
                poke()
        return False


RECORD = (
    "WITH sent AS (SELECT r.*, (r.error IS NULL OR r.attempts + 1 >= :tries) AS over"
    "  FROM unnest(CAST(:ids AS bigint[]), CAST(:indexes AS int[]), CAST(:attempts AS int[]),"
    "    CAST(:channels AS varchar[]), CAST(:errors AS varchar[])) AS r(id, channel_index, attempts, channel, error)),"
    " moved AS (UPDATE notification n SET"
    "  attempts = CASE WHEN s.over THEN 0 ELSE n.attempts + 1 END,"
    "  delivered = CASE WHEN s.error IS NULL"
    "    THEN coalesce(n.delivered, '[]'::jsonb) || jsonb_build_array(s.channel) ELSE n.delivered END,"
    "  last_error = coalesce(s.error, n.last_error),"
    "  channel_index = CASE WHEN s.over THEN n.channel_index + 1 ELSE n.channel_index END,"
    "  next_attempt_at = CASE WHEN s.over THEN CAST(:now AS timestamptz)"
    "    ELSE CAST(:now AS timestamptz) + least(60, power(2, n.attempts + 1)) * interval '1 second' END,"
    "  status = CASE WHEN s.over AND n.channel_index + 1 >= jsonb_array_length(coalesce(n.channels, '[]'::jsonb))"
    "    THEN CASE WHEN s.error IS NULL OR jsonb_array_length(coalesce(n.delivered, '[]'::jsonb)) > 0"
    "      THEN 'sent' ELSE 'failed' END"
    "    ELSE n.status END,"
    "  sent_at = CASE WHEN s.over AND n.channel_index + 1 >= jsonb_array_length(coalesce(n.channels, '[]'::jsonb))"
    "    THEN CAST(:now AS timestamptz) ELSE n.sent_at END"
    "  FROM sent s WHERE n.id = s.id AND n.status = 'pending'"
    "  AND n.channel_index = s.channel_index AND n.attempts = s.attempts"
    "  RETURNING n.id, n.offer_id, n.status, s.channel, s.error, s.over),"
    " tried AS (INSERT INTO delivery_attempt (notification_id, offer_id, channel, at, ok, error)"
    "  SELECT id, offer_id, channel, CAST(:now AS timestamptz), error IS NULL, error FROM moved)"
    " SELECT id, status, channel, over FROM moved"
)
