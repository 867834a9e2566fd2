"""The cascade's events, each in the transaction its consumer opened: a new request, an
answer to an offer, a cancellation, an erasure, an offer a directory change made impossible.
What each decides is in `cascade.py`; the table of which event goes where is in
`services/matcher/entrypoint.py`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import structlog

from schemas.events import (
    AppointmentConfirmed,
    Channel,
    CloudEvent,
    OfferAccepted,
    OfferExpired,
    OfferInvalidated,
    OfferRefused,
    OfferWithdrawn,
    PatientDetails,
    PatientErased,
    RequestCancelled,
    RequestReceived,
    TreatingDoctor,
)
from schemas.topics import Topics
from services.common.db import Transaction
from services.common.motives import catalogue, deadline_for, effective_urgency
from services.matcher.adapters import models
from services.matcher.allocation import proposals
from services.matcher.allocation.cascade import Cascade, Outcome, current
from services.matcher.allocation.ports import AllocationStorage, AllocationStore

log = structlog.get_logger(__name__)


class Allocation:
    """Requests matched to professionals: the event handlers of the cascade."""

    def __init__(
        self, storage: AllocationStorage, topics: Topics, clock: Callable[[], datetime], cascade: Cascade
    ) -> None:
        self.storage, self.topics, self.clock, self.cascade = storage, topics, clock, cascade

    async def on_request_received(self, tx: Transaction, event: RequestReceived, _: CloudEvent) -> None:
        store = self.storage.store(tx)
        if await store.search(event.request_id) is not None:
            return  # same request announced twice
        now = self.clock()
        urgency = effective_urgency(event.urgency, catalogue().motives.get(event.motive))
        opened = await store.open_sealed(event.request_id, event.sealed_patient, PatientDetails)
        # erased before it reached us: the commune's centre, nothing more
        patient = opened or proposals.commune_centre(event.commune_insee)
        search = models.SearchRecord(
            request_id=event.request_id,
            received_at=event.received_at,
            deadline=deadline_for(event.received_at, urgency),
            urgency=urgency,
            motive=event.motive,
            commune_insee=event.commune_insee,
            lat=patient.lat,
            lon=patient.lon,
            age=patient.age,
            age_band=event.age_band,
            sex=patient.sex,
            red_flags=list(patient.red_flags),
            teleconsultation_ok=event.teleconsultation_ok,
            treating_rpps=patient.treating_rpps,
            patient_erased_at=None if opened else now,
            status=models.SearchStatus.SEARCHING,
            updated_at=now,
        )
        store.add_search(search)
        await self.cascade.search(tx, search, now)

    async def on_offer_accepted(self, tx: Transaction, event: OfferAccepted, _: CloudEvent) -> None:
        now = self.clock()
        store = self.storage.store(tx)
        search, offer = await current(store, event.request_id, event.offer_id)
        if search is None or offer is None:
            booked = await store.offer(event.offer_id)
            if booked is not None and booked.status == models.OfferState.ACCEPTED:
                return  # this acceptance again (under another event id): it was booked already
            gone = "this offer no longer stands (the request was cancelled or already handled)"
            withdrawn = OfferWithdrawn(
                request_id=event.request_id, offer_id=event.offer_id, reason=gone, cause="handled"
            )
            tx.emit(self.topics.matching, withdrawn, now)
            return
        start = offer.start
        if offer.kind == "overflow" and offer.window_end and offer.start <= event.start <= offer.window_end:
            start = event.start  # the professional chose a time inside the window
        offer.status, offer.decided_at, offer.start = models.OfferState.ACCEPTED, now, start
        await store.book_slot(offer.offer_id, now)
        search.status, search.updated_at = models.SearchStatus.CONFIRMED, now
        for other in await store.pending_offers_for(search.request_id):  # parallel offers: first wins
            await self.cascade.withdraw(tx, other, "another professional accepted this patient first", "taken", now)
        tx.emit(self.topics.matching, await self._confirmed(store, search, offer), now)

    async def _confirmed(
        self, store: AllocationStore, search: models.SearchRecord, offer: models.MatchOffer
    ) -> AppointmentConfirmed:
        pro = await store.professional(offer.rpps)
        site = await store.site(offer.rpps, offer.site_id)
        assert pro is not None and site is not None  # kept while an offer refers to them
        log.info("appointment confirmed", rpps=pro.rpps, kind=offer.kind)
        return AppointmentConfirmed(
            request_id=search.request_id,
            offer_id=offer.offer_id,
            professional=proposals.professional_ref(pro),
            professional_cpts_id=pro.cpts_id,
            site=proposals.site_ref(site),
            start=offer.start,
            kind=offer.kind,
            mode=offer.mode,
            slot_id=offer.slot_id,
            motive=search.motive,
            sealed_treating_doctor=await _sealed_treating_doctor(store, search, offer.rpps),
        )

    async def on_patient_erased(self, tx: Transaction, event: PatientErased, _: CloudEvent) -> None:
        """The request's details go; a search still running goes on from the commune's centre."""
        search = await self.storage.store(tx).search(event.request_id, lock=True)
        if search is None or search.patient_erased_at is not None:
            return
        centre = proposals.commune_centre(search.commune_insee)
        search.lat, search.lon = centre.lat, centre.lon
        search.age = search.sex = search.red_flags = search.treating_rpps = None
        search.patient_erased_at = event.erased_at

    async def on_offer_refused(self, tx: Transaction, event: OfferRefused, _: CloudEvent) -> None:
        await self.cascade.next_candidate(tx, (event.request_id, event.offer_id), Outcome.REFUSED, self.clock())

    async def on_offer_expired(self, tx: Transaction, event: OfferExpired, _: CloudEvent) -> None:
        await self.cascade.next_candidate(tx, (event.request_id, event.offer_id), Outcome.EXPIRED, self.clock())

    async def on_offer_invalidated(self, tx: Transaction, event: OfferInvalidated, _: CloudEvent) -> None:
        ending = (event.request_id, event.offer_id)
        await self.cascade.next_candidate(tx, ending, Outcome.WITHDRAWN, self.clock(), event.reason)

    async def on_request_cancelled(self, tx: Transaction, event: RequestCancelled, _: CloudEvent) -> None:
        now = self.clock()
        store = self.storage.store(tx)
        search = await store.search(event.request_id, lock=True)
        if search is None or search.status == models.SearchStatus.CANCELLED:
            return
        for offer in await store.live_offers_for(search.request_id):  # pending, or accepted (booked)
            await self.cascade.withdraw(tx, offer, "the regulator cancelled the request", "cancelled", now)
        search.status, search.updated_at = models.SearchStatus.CANCELLED, now
        log.info("search cancelled")

    async def expire_overdue(self) -> int:
        """A safety net: an offer still pending 15 minutes after its time limit — the notifier's
        answer never came, even with the offer published again — ends as expired and the search
        goes on; the notifier is told it is withdrawn. Returns how many offers."""
        async with self.storage.transaction() as tx:
            store = self.storage.store(tx)
            overdue = await store.offers_past_their_time(grace=timedelta(minutes=15), now=self.clock())
        for ending in overdue:
            async with self.storage.transaction() as tx:  # one at a time: a search claims professionals
                late = "no answer came in time"
                await self.cascade.next_candidate(tx, ending, Outcome.EXPIRED, self.clock(), late, cause="handled")
            log.warning("offer past its time limit ended by the matcher", request_id=ending[0], offer_id=ending[1])
        return len(overdue)


async def _sealed_treating_doctor(store: AllocationStore, search: models.SearchRecord, seen_by: str) -> str | None:
    """The patient's own doctor ("médecin traitant") is told, unless it is them who saw the
    patient: who they are, sealed under the request's key (see TreatingDoctor)."""
    treating = await store.professional(search.treating_rpps) if search.treating_rpps else None
    if treating is None or not treating.active or treating.rpps == seen_by:
        return None
    channels = [Channel.model_validate(c) for c in (treating.channels or [])]
    told = TreatingDoctor(professional=proposals.professional_ref(treating), channels=channels)
    return await store.seal(search.request_id, told)
