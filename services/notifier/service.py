"""The notifier's use cases: the professional's answers from the link, and offers lapsing.
The matcher's news is recorded in `news.py`, messages are queued and sent in `messages.py`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from schemas.events import OfferAccepted, OfferExpired, OfferRefused
from schemas.topics import Topics
from services.common.patient import contact_shown_until
from services.notifier.channels import ContactSource, ContactUnavailable, ShownContact
from services.notifier.domain import REFUSAL_REASONS, OfferUnavailable, token_hash, within_choices
from services.notifier.messages import Messages, record
from services.notifier.models import Offer, OfferStatus
from services.notifier.ports import NotifierStorage, NotifierStore

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class OfferPage:
    """What the page behind a link shows: the offer, and the patient's contact once accepted."""

    offer: Offer
    token: str
    contact: ShownContact | None = None
    contact_until: datetime | None = None  # once accepted: the contact shows until then, no longer


class NotifierService:
    def __init__(
        self,
        storage: NotifierStorage,
        topics: Topics,
        clock: Callable[[], datetime],
        contacts: ContactSource,
        messages: Messages,
        reminder_minutes: float = 5.0,
    ) -> None:
        """`messages` queues what professionals are told (and sends it, see messages.py)."""
        self.storage, self.topics, self.clock, self.contacts = storage, topics, clock, contacts
        self.messages, self.reminder_minutes = messages, reminder_minutes

    # --- the professional's link ---------------------------------------------------------------

    async def open(self, token: str) -> OfferPage:
        """The offer behind a link; raises OfferUnavailable for an unknown link, or when another
        professional already accepted the patient (parallel offers)."""
        async with self.storage.transaction() as tx:
            store = self.storage.store(tx)
            offer = await _by_token(store, token)
            record(tx, store, offer, offer.rpps, "viewed", None, self.clock())
            taken = offer.status == OfferStatus.PENDING and await store.accepted_by_another(offer)
        if taken or offer.withdrawal_cause == "taken":
            raise OfferUnavailable("taken", "another professional accepted this patient first")
        return await self._page(offer, token)

    async def accept(self, token: str, chosen_start: datetime | None) -> OfferPage:
        now = self.clock()
        async with self.storage.transaction() as tx:
            store = self.storage.store(tx)
            offer = await _decidable(store, token, now)
            start = offer.start
            if offer.kind == "overflow" and chosen_start is not None:
                if not within_choices(chosen_start, offer.start, offer.window_end, offer.choices):
                    raise OfferUnavailable("invalid_time", "the chosen time is outside the proposed window")
                start = chosen_start
            offer.status, offer.decided_at, offer.chosen_start = OfferStatus.ACCEPTED, now, start
            record(tx, store, offer, offer.rpps, "accepted", start.isoformat(), now)
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
        async with self.storage.transaction() as tx:
            store = self.storage.store(tx)
            offer = await _decidable(store, token, now)
            offer.status, offer.decided_at, offer.decision_reason = OfferStatus.REFUSED, now, reason
            record(tx, store, offer, offer.rpps, "refused", reason, now)
            tx.emit(
                self.topics.offers,
                OfferRefused(
                    request_id=offer.request_id, offer_id=offer.offer_id, rpps=offer.rpps, reason=reason, refused_at=now
                ),
                now,
            )
        log.info("offer refused", request_id=offer.request_id, offer_id=offer.offer_id, reason=reason)
        return await self._page(offer, token)

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
        async with self.storage.transaction() as tx:
            store = self.storage.store(tx)
            due = await store.pending_past(now=now, limit=100)
            for offer in due:
                offer.status, offer.decided_at = OfferStatus.EXPIRED, now
                record(tx, store, offer, "system", "expired", None, now)
                expired = OfferExpired(
                    request_id=offer.request_id, offer_id=offer.offer_id, rpps=offer.rpps, expired_at=now
                )
                tx.emit(self.topics.offers, expired, now)
        for offer in due:
            log.info("offer expired", request_id=offer.request_id, offer_id=offer.offer_id)
        return len(due)

    async def remind_due(self) -> int:
        """Remind professionals of offers about to lapse (once, and only when there was time)."""
        now = self.clock()
        before = timedelta(minutes=self.reminder_minutes)
        reminded = 0
        async with self.storage.transaction() as tx:
            store = self.storage.store(tx)
            for offer in await store.pending_unreminded_until(now=now, until=now + before):
                offer.reminded_at = now
                if offer.expires_at - offer.created_at > 2 * before:  # a short time limit needs no reminder
                    self.messages.notify(tx, store, offer, "reminder", now)
                    reminded += 1
        return reminded


async def _by_token(store: NotifierStore, token: str) -> Offer:
    offer = await store.offer_by_token_hash(token_hash(token))
    if offer is None:
        raise OfferUnavailable("unknown", "this link is not valid")
    return offer


async def _decidable(store: NotifierStore, token: str, now: datetime) -> Offer:
    """The offer behind a link, locked with its siblings (the other offers of the same request,
    in one order so that two answers never deadlock), if it can still be decided. Parallel
    offers: the first acceptance wins here, at once, so that a second one never sees the
    patient's contact."""
    offer = await _by_token(store, token)
    await store.lock_offers_of(offer.request_id, offer)  # and read as it is now that it is locked
    if offer.withdrawal_cause == "taken" or (
        offer.status == OfferStatus.PENDING and await store.accepted_by_another(offer)
    ):
        raise OfferUnavailable("taken", "another professional accepted this patient first")
    if offer.status == OfferStatus.PENDING and offer.expires_at <= now:
        raise OfferUnavailable("expired", "the time to answer this offer has passed")
    if offer.status != OfferStatus.PENDING:
        raise OfferUnavailable(offer.status, f"this offer was already {offer.status}")
    return offer
