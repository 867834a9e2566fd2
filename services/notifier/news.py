"""The matcher's news about offers (handlers of the `matching` and `requests` topics): each is
recorded as the professional's offer and told to them on their channels."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from schemas.events import (
    AppointmentConfirmed,
    Channel,
    CloudEvent,
    OfferProposed,
    OfferWithdrawn,
    PatientErased,
    PlatformAppointmentBooked,
    PlatformAppointmentChanged,
    ProfessionalLinkRequested,
    TreatingDoctor,
)
from services.common.db import Transaction
from services.notifier.domain import offer_expiry, offer_token, token_hash
from services.notifier.messages import Messages, record
from services.notifier.models import LinkMessage, Offer, OfferStatus
from services.notifier.ports import NotifierStorage

WITHDRAWAL_REASONS = {  # shown to the professional, in French (the e-mail's language)
    "cancelled": "annulée par le régulateur",
    "taken": "un autre professionnel a accepté ce patient avant vous",
    "directory": "vos disponibilités ont changé",
    "handled": "la demande a déjà été traitée",
}


class MatcherNews:
    def __init__(
        self,
        storage: NotifierStorage,
        clock: Callable[[], datetime],
        secret: bytes,
        offer_timeout: timedelta,
        messages: Messages,
    ) -> None:
        self.storage, self.clock, self.secret, self.offer_timeout = storage, clock, secret, offer_timeout
        self.messages = messages

    async def on_link_requested(self, tx: Transaction, event: ProfessionalLinkRequested, _: CloudEvent) -> None:
        """ "Send me my link": an e-mail with a fresh personal link, to the address given."""
        now = self.clock()
        self.storage.store(tx).add(
            LinkMessage(rpps=event.rpps, name=event.name, email=event.email, requested_at=now, next_attempt_at=now)
        )
        tx.after_commit.extend(self.messages.on_link_email)

    async def on_offer_proposed(self, tx: Transaction, event: OfferProposed, _: CloudEvent) -> None:
        store = self.storage.store(tx)
        if await store.offer(event.offer_id) is not None:
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
        store.add(offer)
        self.messages.notify(tx, store, offer, "offer", now)

    async def on_offer_withdrawn(self, tx: Transaction, event: OfferWithdrawn, _: CloudEvent) -> None:
        store = self.storage.store(tx)
        offer = await store.offer(event.offer_id, lock=True)
        if offer is None or offer.status in (OfferStatus.WITHDRAWN, OfferStatus.REFUSED, OfferStatus.EXPIRED):
            return
        now = self.clock()
        offer.status, offer.withdrawal_cause = OfferStatus.WITHDRAWN, event.cause
        offer.decision_reason = WITHDRAWAL_REASONS.get(event.cause or "", event.reason)
        offer.decided_at = offer.decided_at or now
        record(tx, store, offer, "system", "withdrawn", event.reason, now)
        self.messages.notify(tx, store, offer, "withdrawn", now)

    async def on_appointment_confirmed(self, tx: Transaction, event: AppointmentConfirmed, _: CloudEvent) -> None:
        store = self.storage.store(tx)
        offer = await store.offer(event.offer_id, lock=True)
        if offer is None or offer.status not in (OfferStatus.PENDING, OfferStatus.ACCEPTED):
            return  # unknown, or this confirmation again (under another event id)
        offer.status = OfferStatus.CONFIRMED
        treating = await store.open_sealed(event.request_id, event.sealed_treating_doctor, TreatingDoctor)
        if treating is not None:  # "retour au médecin traitant" (nobody to tell once the patient's data is erased)
            channels = [c.model_dump() for c in treating.channels]
            name = treating.professional.name
            self.messages.notify(tx, store, offer, "treating_doctor", self.clock(), channels, name)

    async def on_patient_erased(self, tx: Transaction, event: PatientErased, _: CloudEvent) -> None:
        """Who the patient's own doctor is says something of the patient: the messages to them go
        (the offers keep what the request keeps: motive, commune, age band)."""
        await self.storage.store(tx).delete_treating_doctor_messages(event.request_id)

    async def on_platform_booked(self, tx: Transaction, event: PlatformAppointmentBooked, _: CloudEvent) -> None:
        """The national platform booked one of the professional's slots: they are told, as of any
        appointment (kept as an offer already confirmed, so that messages and audit work alike)."""
        store = self.storage.store(tx)
        if await store.offer(event.appointment_id) is not None:
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
        store.add(offer)
        record(tx, store, offer, "platform", "booked", event.platform_identifier, now)
        self.messages.notify(tx, store, offer, "platform_booked", now)

    async def on_platform_changed(self, tx: Transaction, event: PlatformAppointmentChanged, _: CloudEvent) -> None:
        """A cancellation is told to the professional; fulfilled and noshow are only recorded."""
        store = self.storage.store(tx)
        offer = await store.offer(event.appointment_id, lock=True)
        if offer is None or offer.status == OfferStatus.WITHDRAWN:
            return
        now = self.clock()
        record(tx, store, offer, "platform", event.status, None, now)
        if event.status == "cancelled":
            offer.status, offer.withdrawal_cause = OfferStatus.WITHDRAWN, "cancelled"
            offer.decision_reason = "annulé par la plateforme nationale du SAS"
            self.messages.notify(tx, store, offer, "platform_cancelled", now)


def _channels(channels: list[Channel], email: str | None) -> list[dict[str, str]]:
    """How to reach the professional, in order; their e-mail alone when they named no channel."""
    return [c.model_dump(mode="json", exclude_none=True) for c in channels] or (
        [{"type": "email", "destination": email}] if email else []
    )
