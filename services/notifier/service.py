"""The notifier's use cases: record offers, reach professionals, take their answers, expire."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from jinja2 import Environment
from sqlmodel import col, delete, select

from schemas.events import (
    AppointmentConfirmed,
    Channel,
    CloudEvent,
    OfferAccepted,
    OfferExpired,
    OfferProposed,
    OfferRefused,
    OfferWithdrawn,
    PatientErased,
    PlatformAppointmentBooked,
    PlatformAppointmentChanged,
    ProfessionalLinkRequested,
    TreatingDoctor,
)
from schemas.topics import Topics
from services.common import metrics, personal_link
from services.common.db import Database, Transaction
from services.common.delivery import DeliveryQueue
from services.common.patient import contact_shown_until
from services.common.sealing import Vault
from services.notifier.channels import ContactSource, ContactUnavailable, Message, Sender, ShownContact
from services.notifier.dispatch import ProfessionalMessages
from services.notifier.domain import (
    REFUSAL_REASONS,
    OfferUnavailable,
    offer_expiry,
    offer_token,
    token_hash,
    within_choices,
)
from services.notifier.link_messages import LinkMessages
from services.notifier.models import (
    AuditEntry,
    DeliveryAttempt,
    LinkMessage,
    Notification,
    Offer,
    OfferStatus,
)

log = structlog.get_logger(__name__)
WITHDRAWAL_REASONS = {  # shown to the professional, in French (the e-mail's language)
    "cancelled": "annulée par le régulateur",
    "taken": "un autre professionnel a accepté ce patient avant vous",
    "directory": "vos disponibilités ont changé",
    "handled": "la demande a déjà été traitée",
}


@dataclass(frozen=True)
class OfferPage:
    """What the page behind a link shows: the offer, and the patient's contact once accepted."""

    offer: Offer
    token: str
    contact: ShownContact | None = None
    contact_until: datetime | None = None  # once accepted: the contact shows until then, no longer


# the messages to the professional of the offer (not the treating doctor's) carry their own page's link
OWN_LINK_PURPOSES = ("offer", "reminder", "withdrawn", "platform_booked", "platform_cancelled")


class NotifierService:
    def __init__(
        self,
        db: Database,
        topics: Topics,
        clock: Callable[[], datetime],
        secret: bytes,
        base_url: str,
        offer_timeout: timedelta,
        senders: dict[str, Sender],
        contacts: ContactSource,
        templates: Environment,
        vault: Vault,
        reminder_minutes: float = 5.0,
        wake_dispatch: Callable[[], None] | None = None,
        wake_link_emails: Callable[[], None] | None = None,
    ) -> None:
        """`wake_dispatch` and `wake_link_emails` poke the pumps that send (after a commit)."""
        self.db, self.topics, self.clock, self.secret, self.vault = db, topics, clock, secret, vault
        self.base_url, self.offer_timeout, self.senders, self.contacts = base_url, offer_timeout, senders, contacts
        self.templates, self.reminder_minutes = templates, reminder_minutes
        self.on_notification: list[Callable[[], None]] = [wake_dispatch] if wake_dispatch else []
        self.on_link_email: list[Callable[[], None]] = [wake_link_emails] if wake_link_emails else []
        self.messages = DeliveryQueue(db, ProfessionalMessages(senders, self._message, self.on_notification), clock)
        self.link_emails = DeliveryQueue(db, LinkMessages(senders["email"], templates, self.own_link), clock)

    def link(self, offer: Offer) -> str:
        return f"{self.base_url}/o/{offer_token(self.secret, offer.offer_id, offer.rpps)}"

    def own_link(self, rpps: str) -> str:
        """The professional's own page, signed now (services/common/personal_link.py)."""
        return f"{self.base_url}/p/{personal_link.mint(self.secret, rpps, self.clock())}"

    async def on_link_requested(self, tx: Transaction, event: ProfessionalLinkRequested, _: CloudEvent) -> None:
        """ "Send me my link": an e-mail with a fresh personal link, to the address given."""
        now = self.clock()
        tx.session.add(
            LinkMessage(rpps=event.rpps, name=event.name, email=event.email, requested_at=now, next_attempt_at=now)
        )
        tx.after_commit.extend(self.on_link_email)

    # --- the matcher's news ------------------------------------------------------------------

    async def on_offer_proposed(self, tx: Transaction, event: OfferProposed, _: CloudEvent) -> None:
        if await tx.session.get(Offer, event.offer_id) is not None:
            return
        now = self.clock()
        offer = Offer(
            offer_id=event.offer_id,
            request_id=event.request_id,
            rpps=event.professional.rpps,
            professional_name=event.professional.name,
            profession=event.professional.profession,
            email=event.email,
            phone=event.phone,
            channels=_channels(event.channels, event.email),
            site=event.site.model_dump(mode="json"),
            kind=event.kind,
            mode=event.mode,
            start=event.start,
            window_end=event.window_end,
            choices=[[p.start.isoformat(), p.end.isoformat()] for p in event.choices] or None,
            deadline=event.deadline,
            motive=event.motive,
            protocol=event.protocol,
            patient_age_band=event.patient_age_band,
            patient_commune_insee=event.patient_commune_insee,
            distance_km=event.distance_km,
            expires_at=event.answer_by or offer_expiry(now, event.deadline, self.offer_timeout),
            status=OfferStatus.PENDING,
            token_hash=token_hash(offer_token(self.secret, event.offer_id, event.professional.rpps)),
            created_at=now,
        )
        tx.session.add(offer)
        self._notify(tx, offer, "offer", now)

    async def on_offer_withdrawn(self, tx: Transaction, event: OfferWithdrawn, _: CloudEvent) -> None:
        offer = await tx.session.get(Offer, event.offer_id, with_for_update=True)
        if offer is None or offer.status in (OfferStatus.WITHDRAWN, OfferStatus.REFUSED, OfferStatus.EXPIRED):
            return
        now = self.clock()
        offer.status, offer.withdrawal_cause = OfferStatus.WITHDRAWN, event.cause
        offer.decision_reason = WITHDRAWAL_REASONS.get(event.cause or "", event.reason)
        offer.decided_at = offer.decided_at or now
        _audit(tx, offer, "system", "withdrawn", event.reason, now)
        self._notify(tx, offer, "withdrawn", now)

    async def on_appointment_confirmed(self, tx: Transaction, event: AppointmentConfirmed, _: CloudEvent) -> None:
        offer = await tx.session.get(Offer, event.offer_id, with_for_update=True)
        if offer is None or offer.status not in (OfferStatus.PENDING, OfferStatus.ACCEPTED):
            return  # unknown, or this confirmation again (under another event id)
        offer.status = OfferStatus.CONFIRMED
        treating = await self.vault.open(tx.session, event.request_id, event.sealed_treating_doctor, TreatingDoctor)
        if treating is not None:  # "retour au médecin traitant" (nobody to tell once the patient's data is erased)
            channels = [c.model_dump() for c in treating.channels]
            self._notify(tx, offer, "treating_doctor", self.clock(), channels, treating.professional.name)

    async def on_patient_erased(self, tx: Transaction, event: PatientErased, _: CloudEvent) -> None:
        """Who the patient's own doctor is says something of the patient: the messages to them go
        (the offers keep what the request keeps: motive, commune, age band)."""
        told = select(Notification.id).where(
            col(Notification.purpose) == "treating_doctor",
            col(Notification.offer_id).in_(select(Offer.offer_id).where(col(Offer.request_id) == event.request_id)),
        )
        await tx.session.execute(delete(DeliveryAttempt).where(col(DeliveryAttempt.notification_id).in_(told)))
        await tx.session.execute(delete(Notification).where(col(Notification.id).in_(told)))

    async def on_platform_booked(self, tx: Transaction, event: PlatformAppointmentBooked, _: CloudEvent) -> None:
        """The national platform booked one of the professional's slots: they are told, as of any
        appointment (kept as an offer already confirmed, so that messages and audit work alike)."""
        if await tx.session.get(Offer, event.appointment_id) is not None:
            return  # told already
        now = self.clock()
        offer = Offer(
            offer_id=event.appointment_id,
            request_id=event.request_id,
            rpps=event.professional.rpps,
            professional_name=event.professional.name,
            profession=event.professional.profession,
            email=event.email,
            channels=_channels(event.channels, event.email),
            site=event.site.model_dump(mode="json"),
            kind="slot",
            mode=event.mode,
            start=event.start,
            deadline=event.start,
            motive="platform_booking",
            distance_km=0.0,
            expires_at=event.start,
            status=OfferStatus.CONFIRMED,
            token_hash=token_hash(offer_token(self.secret, event.appointment_id, event.professional.rpps)),
            decided_at=now,
            decision_reason="réservé par la plateforme nationale du SAS",
            created_at=now,
        )
        tx.session.add(offer)
        _audit(tx, offer, "platform", "booked", event.platform_identifier, now)
        self._notify(tx, offer, "platform_booked", now)

    async def on_platform_changed(self, tx: Transaction, event: PlatformAppointmentChanged, _: CloudEvent) -> None:
        """A cancellation is told to the professional; fulfilled and noshow are only recorded."""
        offer = await tx.session.get(Offer, event.appointment_id, with_for_update=True)
        if offer is None or offer.status == OfferStatus.WITHDRAWN:
            return
        now = self.clock()
        _audit(tx, offer, "platform", event.status, None, now)
        if event.status == "cancelled":
            offer.status, offer.withdrawal_cause = OfferStatus.WITHDRAWN, "cancelled"
            offer.decision_reason = "annulé par la plateforme nationale du SAS"
            self._notify(tx, offer, "platform_cancelled", now)

    # --- the professional's link ---------------------------------------------------------------

    async def open(self, token: str) -> OfferPage:
        """The offer behind a link; raises OfferUnavailable for an unknown link, or when another
        professional already accepted the patient (parallel offers)."""
        async with self.db.transaction() as tx:
            offer = await self._by_token(tx, token)
            _audit(tx, offer, offer.rpps, "viewed", None, self.clock())
            taken = offer.status == OfferStatus.PENDING and await self._taken_by_another(tx, offer)
        if taken or offer.withdrawal_cause == "taken":
            raise OfferUnavailable("taken", "another professional accepted this patient first")
        return await self._page(offer, token)

    async def accept(self, token: str, chosen_start: datetime | None) -> OfferPage:
        now = self.clock()
        async with self.db.transaction() as tx:
            offer = await self._decidable(tx, token, now)
            start = offer.start
            if offer.kind == "overflow" and chosen_start is not None:
                if not within_choices(chosen_start, offer.start, offer.window_end, offer.choices):
                    raise OfferUnavailable("invalid_time", "the chosen time is outside the proposed window")
                start = chosen_start
            offer.status, offer.decided_at, offer.chosen_start = OfferStatus.ACCEPTED, now, start
            _audit(tx, offer, offer.rpps, "accepted", start.isoformat(), now)
            tx.emit(
                self.topics.offers,
                OfferAccepted(
                    request_id=offer.request_id, offer_id=offer.offer_id, rpps=offer.rpps, start=start, accepted_at=now
                ),
                now,
            )
        log.info("offer accepted", request_id=offer.request_id, offer_id=offer.offer_id)
        return await self._page(offer, token)

    async def refuse(self, token: str, reason: str | None) -> OfferPage:
        now = self.clock()
        reason = reason if reason in REFUSAL_REASONS else None
        async with self.db.transaction() as tx:
            offer = await self._decidable(tx, token, now)
            offer.status, offer.decided_at, offer.decision_reason = OfferStatus.REFUSED, now, reason
            _audit(tx, offer, offer.rpps, "refused", reason, now)
            tx.emit(
                self.topics.offers,
                OfferRefused(
                    request_id=offer.request_id, offer_id=offer.offer_id, rpps=offer.rpps, reason=reason, refused_at=now
                ),
                now,
            )
        log.info("offer refused", request_id=offer.request_id, offer_id=offer.offer_id, reason=reason)
        return await self._page(offer, token)

    async def _by_token(self, tx: Transaction, token: str) -> Offer:
        query = select(Offer).where(col(Offer.token_hash) == token_hash(token))
        offer = (await tx.session.execute(query)).scalars().first()
        if offer is None:
            raise OfferUnavailable("unknown", "this link is not valid")
        return offer

    async def _decidable(self, tx: Transaction, token: str, now: datetime) -> Offer:
        """The offer behind a link, locked with its siblings (the other offers of the same request,
        in one order so that two answers never deadlock), if it can still be decided."""
        offer = await self._by_token(tx, token)
        await tx.session.execute(
            select(Offer.offer_id)
            .where(col(Offer.request_id) == offer.request_id)
            .order_by(col(Offer.offer_id))
            .with_for_update()
        )
        await tx.session.refresh(offer)  # as it is now that it is locked
        if offer.withdrawal_cause == "taken" or (
            offer.status == OfferStatus.PENDING and await self._taken_by_another(tx, offer)
        ):
            raise OfferUnavailable("taken", "another professional accepted this patient first")
        if offer.status == OfferStatus.PENDING and offer.expires_at <= now:
            raise OfferUnavailable("expired", "the time to answer this offer has passed")
        if offer.status != OfferStatus.PENDING:
            raise OfferUnavailable(offer.status, f"this offer was already {offer.status}")
        return offer

    async def _taken_by_another(self, tx: Transaction, offer: Offer) -> bool:
        """Parallel offers: has another professional accepted this request already? The first
        acceptance wins here, at once, so that a second one never sees the patient's contact."""
        found = await tx.session.execute(
            select(Offer.offer_id).where(
                col(Offer.request_id) == offer.request_id,
                col(Offer.offer_id) != offer.offer_id,
                col(Offer.status).in_([OfferStatus.ACCEPTED, OfferStatus.CONFIRMED]),
            )
        )
        return found.first() is not None

    async def _page(self, offer: Offer, token: str) -> OfferPage:
        contact, until = None, None
        if offer.status in (OfferStatus.ACCEPTED, OfferStatus.CONFIRMED):
            until = contact_shown_until(offer.chosen_start or offer.start)
            try:
                if self.clock() < until:
                    contact = await self.contacts.contact(offer.request_id, offer.rpps)
            except ContactUnavailable as error:  # the decision counts; the page says to reload for the contact
                log.warning("patient contact unavailable", request_id=offer.request_id, error=str(error))
        return OfferPage(offer, token, contact, until)

    # --- background work -----------------------------------------------------------------------

    async def expire_due(self) -> int:
        """Lapse unanswered offers whose time is up (safe on several processes at once)."""
        now = self.clock()
        async with self.db.transaction() as tx:
            due = (
                (
                    await tx.session.execute(
                        select(Offer)
                        .where(col(Offer.status) == OfferStatus.PENDING, col(Offer.expires_at) <= now)
                        .order_by(col(Offer.expires_at))
                        .limit(100)
                        .with_for_update(skip_locked=True)
                    )
                )
                .scalars()
                .all()
            )
            for offer in due:
                offer.status, offer.decided_at = OfferStatus.EXPIRED, now
                _audit(tx, offer, "system", "expired", None, now)
                tx.emit(
                    self.topics.offers,
                    OfferExpired(request_id=offer.request_id, offer_id=offer.offer_id, rpps=offer.rpps, expired_at=now),
                    now,
                )
        for offer in due:
            log.info("offer expired", request_id=offer.request_id, offer_id=offer.offer_id)
        return len(due)

    async def remind_due(self) -> int:
        """Remind professionals of offers about to lapse (once, and only when there was time)."""
        now = self.clock()
        before = timedelta(minutes=self.reminder_minutes)
        async with self.db.transaction() as tx:
            due = (
                (
                    await tx.session.execute(
                        select(Offer)
                        .where(
                            col(Offer.status) == OfferStatus.PENDING,
                            col(Offer.reminded_at).is_(None),
                            col(Offer.expires_at) > now,
                            col(Offer.expires_at) <= now + before,
                        )
                        .with_for_update(skip_locked=True)
                    )
                )
                .scalars()
                .all()
            )
            reminded = 0
            for offer in due:
                offer.reminded_at = now
                if offer.expires_at - offer.created_at > 2 * before:  # a short time limit needs no reminder
                    self._notify(tx, offer, "reminder", now)
                    reminded += 1
        return reminded

    async def dispatch(self) -> int:
        """Send the messages that are due (see dispatch.py); for a Pump (see deliver_more)."""
        return await self.messages.deliver_more()

    async def send_link_emails(self) -> int:
        """Send the "send me my link" e-mails that are due (their own pump: an offer's messages
        never wait for them, and a round of offers makes no claim on their table)."""
        return await self.link_emails.deliver_more()

    def _message(self, notification: Notification, offer: Offer, channel: dict[str, str]) -> Message:
        link = self.link(offer) if notification.purpose in ("offer", "reminder") else None
        own_link = self.own_link(offer.rpps) if notification.purpose in OWN_LINK_PURPOSES else None
        context = {"offer": offer, "link": link, "own_link": own_link, "recipient_name": notification.recipient_name}
        subject, _, text = (
            self.templates.get_template(f"email/{notification.purpose}.txt").render(**context).partition("\n")
        )
        if channel["type"] == "sms":
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

    def _notify(
        self,
        tx: Transaction,
        offer: Offer,
        purpose: str,
        now: datetime,
        channels: list[dict[str, str]] | None = None,
        recipient_name: str | None = None,
    ) -> None:
        """Queue a message (sent by `dispatch` once this transaction is committed)."""
        channels = offer.channels if channels is None else channels
        if not channels:
            log.warning("no way to reach this professional: nothing sent", rpps=offer.rpps, purpose=purpose)
            return
        tx.session.add(
            Notification(
                offer_id=offer.offer_id,
                purpose=purpose,
                channels=channels,
                delivered=[],
                recipient_name=recipient_name or offer.professional_name,
                next_attempt_at=now,
                created_at=now,
            )
        )
        tx.after_commit.extend(self.on_notification)


def _channels(channels: list[Channel], email: str | None) -> list[dict[str, str]]:
    """How to reach the professional, in order; their e-mail alone when they named no channel."""
    return [c.model_dump(mode="json", exclude_none=True) for c in channels] or (
        [{"type": "email", "destination": email}] if email else []
    )


def _audit(tx: Transaction, offer: Offer, actor: str, action: str, detail: str | None, now: datetime) -> None:
    if action != "viewed":
        tx.after_commit.append(lambda: metrics.OFFERS.labels(action).inc())
    tx.session.add(
        AuditEntry(
            at=now, offer_id=offer.offer_id, request_id=offer.request_id, actor=actor, action=action, detail=detail
        )
    )
