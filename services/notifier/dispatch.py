"""Messages to professionals: each notification tried on its channels in the professional's order.

A channel is retried with a growing delay; after MAX_TRIES_PER_CHANNEL failures it is given up
and the next one is tried. Every channel gets the message (the contract: each offer is e-mailed
and sent on the professional's other channels); every attempt is kept. An offer's messages go
out one after another (see services/common/delivery.py).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlmodel import col, select

from services.common import metrics
from services.common.db import Database, Transaction
from services.common.delivery import record_in_one_transaction
from services.notifier.channels import Message, Sender
from services.notifier.models import DeliveryAttempt, Notification, NotificationStatus, Offer

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


class ProfessionalMessages:
    """The notifier's `Outbound`: `compose` writes a message for one channel."""

    def __init__(self, senders: dict[str, Sender], compose: Compose, on_next_channel: list[Callable[[], None]]) -> None:
        self.senders, self.compose, self.on_next_channel = senders, compose, on_next_channel

    def outgoing(self, notification: Notification, offer: Offer) -> Outgoing:
        """The notification's message on its current channel."""
        assert notification.id is not None, "flushed"
        channel = (notification.channels or [])[notification.channel_index]
        message = self.compose(notification, offer, channel)
        return Outgoing(notification.id, offer.offer_id, offer.request_id, notification.purpose, message)

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
        return await record_in_one_transaction(db, self.record_one, sent, now)

    async def record_one(self, tx: Transaction, item: Outgoing, error: str | None, now: datetime) -> bool:
        """An offer's messages are not held back by one another between rounds: never more to do
        at once (a next channel pokes the pump itself)."""
        notification = await tx.session.get(Notification, item.notification_id, with_for_update=True)
        if notification is None or notification.status != NotificationStatus.PENDING:
            return False
        channel = item.message.channel
        notification.attempts += 1
        tx.after_commit.append(lambda: metrics.MESSAGES.labels(channel, "failed" if error else "sent").inc())
        tx.session.add(
            DeliveryAttempt(
                notification_id=item.notification_id,
                offer_id=item.offer_id,
                channel=channel,
                at=now,
                ok=error is None,
                error=error,
            )
        )
        if error is None:
            notification.delivered = [*(notification.delivered or []), channel]
            log.info(
                "message sent",
                offer_id=item.offer_id,
                request_id=item.request_id,
                purpose=item.purpose,
                channel=channel,
            )
        else:
            notification.last_error = error
            log.warning(
                "message not sent", offer_id=item.offer_id, channel=channel, attempts=notification.attempts, error=error
            )
            if notification.attempts < MAX_TRIES_PER_CHANNEL:
                notification.next_attempt_at = now + timedelta(seconds=min(60, 2**notification.attempts))
                return False
        notification.channel_index += 1  # this channel is done with: the next one
        notification.attempts = 0
        notification.next_attempt_at = now
        if notification.channel_index >= len(notification.channels or []):
            notification.status = NotificationStatus.SENT if notification.delivered else NotificationStatus.FAILED
            notification.sent_at = now
        else:
            tx.after_commit.extend(self.on_next_channel)  # go on right away
        return False
