"""Reaching professionals: the messages of an offer's life (offer, reminder, withdrawn, the
treating doctor's news, the national platform's bookings) written in the transaction that
decided them and handed to the sender once it commits; the links they carry."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import structlog
from jinja2 import Environment

from services.common import metrics, personal_link
from services.common.db import Database, Transaction
from services.common.delivery import DeliveryQueue
from services.notifier.channels import Message, Sender
from services.notifier.dispatch import ProfessionalMessages
from services.notifier.domain import offer_token
from services.notifier.link_messages import LinkMessages
from services.notifier.models import AuditEntry, Notification, Offer
from services.notifier.ports import NotifierStore

log = structlog.get_logger(__name__)

# the messages to the professional of the offer (not the treating doctor's) carry their own page's link
OWN_LINK_PURPOSES = ("offer", "reminder", "withdrawn", "platform_booked", "platform_cancelled")


class Messages:
    def __init__(
        self,
        db: Database,
        clock: Callable[[], datetime],
        secret: bytes,
        base_url: str,
        senders: dict[str, Sender],
        templates: Environment,
        wake_dispatch: Callable[[], None] | None = None,
        wake_link_emails: Callable[[], None] | None = None,
    ) -> None:
        """`wake_dispatch` pokes the pump that sends a message on its next channel (a new message
        is handed to the sender instead); `wake_link_emails` the one of the link e-mails."""
        self.clock, self.secret, self.base_url, self.templates = clock, secret, base_url, templates
        self.on_notification: list[Callable[[], None]] = [wake_dispatch] if wake_dispatch else []
        self.on_link_email: list[Callable[[], None]] = [wake_link_emails] if wake_link_emails else []
        self.outbound = ProfessionalMessages(senders, self.render, self.on_notification)
        self.queue = DeliveryQueue(db, self.outbound, clock)
        self.link_emails = DeliveryQueue(db, LinkMessages(senders["email"], templates, self.own_link), clock)

    def link(self, offer: Offer) -> str:
        return f"{self.base_url}/o/{offer_token(self.secret, offer.offer_id, offer.rpps)}"

    def own_link(self, rpps: str) -> str:
        """The professional's own page, signed now (services/common/personal_link.py)."""
        return f"{self.base_url}/p/{personal_link.mint(self.secret, rpps, self.clock())}"

    async def dispatch(self) -> int:
        """Send the messages that are due (see dispatch.py); for a Pump (see deliver_more)."""
        return await self.queue.deliver_more()

    async def send_link_emails(self) -> int:
        """Send the "send me my link" e-mails that are due (their own pump: an offer's messages
        never wait for them, and a round of offers makes no claim on their table)."""
        return await self.link_emails.deliver_more()

    def notify(
        self,
        tx: Transaction,
        store: NotifierStore,
        offer: Offer,
        purpose: str,
        now: datetime,
        channels: list[dict[str, str]] | None = None,
        recipient_name: str | None = None,
    ) -> None:
        """Write a message, handed to the sender once this transaction commits.

        It is written leased (its next attempt a lease ahead), so that no round of `dispatch`
        claims it meanwhile: it costs no claim of its own. Should the process die before sending
        it, a round takes it up once the lease is over; a failed channel is retried by the rounds."""
        channels = offer.channels if channels is None else channels
        if not channels:
            log.warning("no way to reach this professional: nothing sent", rpps=offer.rpps, purpose=purpose)
            return
        notification = Notification(
            offer_id=offer.offer_id,
            purpose=purpose,
            channels=channels,
            delivered=[],
            recipient_name=recipient_name or offer.professional_name,
            next_attempt_at=self.queue.lease_until(now),
            created_at=now,
        )
        store.add(notification)
        tx.after_commit.append(lambda: self.queue.send_claimed([self.outbound.outgoing(notification, offer)]))

    def render(self, notification: Notification, offer: Offer, channel: dict[str, str]) -> Message:
        """The message on one channel: its template's text (e-mail or SMS) and its data (webhook)."""
        link = self.link(offer) if notification.purpose in ("offer", "reminder") else None
        own_link = self.own_link(offer.rpps) if notification.purpose in OWN_LINK_PURPOSES else None
        context = {"offer": offer, "link": link, "own_link": own_link, "recipient_name": notification.recipient_name}
        subject, text = "", ""  # a webhook carries the data alone: no template is rendered for it
        if channel["type"] == "email":
            subject, _, text = (
                self.templates.get_template(f"email/{notification.purpose}.txt").render(**context).partition("\n")
            )
        elif channel["type"] == "sms":
            text = self.templates.get_template(f"sms/{notification.purpose}.txt").render(**context).strip()
        data = {
            "event": notification.purpose,
            "offer_id": offer.offer_id,
            "request_id": offer.request_id,
            "motive": offer.motive,
            "kind": offer.kind,
            "mode": offer.mode,
            "site": offer.site,
            "start": offer.start.isoformat(),
            "window_end": offer.window_end.isoformat() if offer.window_end else None,
            "deadline": offer.deadline.isoformat(),
            "answer_by": offer.expires_at.isoformat(),
            "link": link,
        }
        return Message(
            f"{notification.id}-{notification.channel_index}",
            channel["type"],
            channel["destination"],
            subject.removeprefix("Subject: ").strip(),
            text.strip(),
            data,
            int(channel.get("secret_version") or 1),
            str(channel["previous_until"]) if channel.get("previous_until") else None,
        )


def record(
    tx: Transaction, store: NotifierStore, offer: Offer, actor: str, action: str, detail: str | None, now: datetime
) -> None:
    """An entry of the offer's audit trail (and the offers metric, but for a view)."""
    if action != "viewed":
        tx.after_commit.append(lambda: metrics.OFFERS.labels(action).inc())
    store.add(
        AuditEntry(
            at=now, offer_id=offer.offer_id, request_id=offer.request_id, actor=actor, action=action, detail=detail
        )
    )
