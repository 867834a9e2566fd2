"""The notifier's use cases: the professional's answers from the link, and offers lapsing.
The matcher's news is recorded in `news.py`, messages are queued and sent in `messages.py`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from jinja2 import Environment

from schemas.events import OfferAccepted, OfferExpired, OfferRefused
from schemas.topics import Topics
from services.common.db import Database, Transaction
from services.common.patient import contact_shown_until
from services.common.sealing import Vault
from services.notifier import repository
from services.notifier.channels import ContactSource, ContactUnavailable, Sender, ShownContact
from services.notifier.domain import REFUSAL_REASONS, OfferUnavailable, token_hash, within_choices
from services.notifier.messages import Messages, record
from services.notifier.models import Offer, OfferStatus
from services.notifier.news import MatcherNews

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
        """Built whole with its parts: the messages (and their senders), the matcher's news.
        `wake_dispatch` and `wake_link_emails` poke the pumps that send (after a commit)."""
        self.db, self.topics, self.clock, self.contacts = db, topics, clock, contacts
        self.reminder_minutes = reminder_minutes
        self.messages = Messages(db, clock, secret, base_url, senders, templates, wake_dispatch, wake_link_emails)
        self.news = MatcherNews(clock, secret, offer_timeout, vault, self.messages)

    # --- the professional's link ---------------------------------------------------------------

    async def open(self, token: str) -> OfferPage:
        """The offer behind a link; raises OfferUnavailable for an unknown link, or when another
        professional already accepted the patient (parallel offers)."""
        async with self.db.transaction() as tx:
            offer = await self._by_token(tx, token)
            record(tx, offer, offer.rpps, "viewed", None, self.clock())
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
            record(tx, offer, offer.rpps, "accepted", start.isoformat(), now)
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
            record(tx, offer, offer.rpps, "refused", reason, now)
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
        offer = await repository.offer_by_token_hash(tx.session, hashed=token_hash(token))
        if offer is None:
            raise OfferUnavailable("unknown", "this link is not valid")
        return offer

    async def _decidable(self, tx: Transaction, token: str, now: datetime) -> Offer:
        """The offer behind a link, locked with its siblings (the other offers of the same request,
        in one order so that two answers never deadlock), if it can still be decided."""
        offer = await self._by_token(tx, token)
        await repository.lock_offers_of(tx.session, request_id=offer.request_id)
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
        return await repository.accepted_by_another(tx.session, offer=offer)

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
            due = await repository.pending_past(tx.session, now=now, limit=100)
            for offer in due:
                offer.status, offer.decided_at = OfferStatus.EXPIRED, now
                record(tx, offer, "system", "expired", None, now)
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
        async with self.db.transaction() as tx:
            for offer in await repository.pending_unreminded_until(tx.session, now=now, until=now + before):
                offer.reminded_at = now
                if offer.expires_at - offer.created_at > 2 * before:  # a short time limit needs no reminder
                    self.messages.notify(tx, offer, "reminder", now)
                    reminded += 1
        return reminded
