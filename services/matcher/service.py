"""The matcher's cascade: find a candidate, hold it, offer it; on an answer book or move on."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog

from schemas.events import (
    AppointmentConfirmed,
    CandidateExplanation,
    CloudEvent,
    OfferAccepted,
    OfferExpired,
    OfferProposed,
    OfferRefused,
    OfferWithdrawn,
    ProfessionalRef,
    RequestCancelled,
    RequestReceived,
    RequestUnresolved,
    SearchStarted,
    SiteRef,
)
from schemas.topics import Topics
from services.common.db import Transaction
from services.common.motives import catalogue
from services.matcher import models as m
from services.matcher import repository as repo
from services.matcher.domain import matching as d

log = structlog.get_logger(__name__)
EXPLAINED_CANDIDATES = 3


class MatcherService:
    def __init__(self, topics: Topics, clock: Callable[[], datetime], lead_time: timedelta) -> None:
        self.topics = topics
        self.clock = clock
        self.lead_time = lead_time

    # --- handlers (see consumers.py) -------------------------------------------------------

    async def on_request_received(self, tx: Transaction, event: RequestReceived, _: CloudEvent) -> None:
        if await tx.session.get(m.SearchRecord, event.request_id) is not None:
            return  # same request announced twice
        now = self.clock()
        search = m.SearchRecord(
            request_id=event.request_id,
            received_at=event.received_at,
            deadline=d.deadline_for(event.received_at, event.urgency),
            urgency=event.urgency,
            motive=event.motive,
            commune_insee=event.location.commune_insee,
            lat=event.location.lat,
            lon=event.location.lon,
            age=event.age,
            teleconsultation_ok=event.teleconsultation_ok,
            status=m.SearchStatus.SEARCHING,
            updated_at=now,
        )
        tx.session.add(search)
        await self._search(tx, search, now)

    async def on_offer_accepted(self, tx: Transaction, event: OfferAccepted, _: CloudEvent) -> None:
        now = self.clock()
        search, offer = await self._current(tx, event.request_id, event.offer_id)
        if search is None or offer is None:
            tx.emit(
                self.topics.matching,
                OfferWithdrawn(
                    request_id=event.request_id,
                    offer_id=event.offer_id,
                    reason="this offer no longer stands (the request was cancelled or already handled)",
                ),
                now,
            )
            return
        start = offer.start
        if offer.kind == "overflow" and offer.window_end and offer.start <= event.start <= offer.window_end:
            start = event.start  # the professional chose a time inside the window
        offer.status, offer.decided_at, offer.start = m.OfferState.ACCEPTED, now, start
        await repo.settle_slot(tx.session, offer.offer_id, m.SlotState.BOOKED, now)
        search.status, search.updated_at = m.SearchStatus.CONFIRMED, now
        pro = await tx.session.get(m.Professional, offer.rpps)
        site = await tx.session.get(m.Site, (offer.rpps, offer.site_id))
        assert pro is not None and site is not None  # kept while an offer refers to them
        tx.emit(
            self.topics.matching,
            AppointmentConfirmed(
                request_id=search.request_id,
                offer_id=offer.offer_id,
                professional=ProfessionalRef(rpps=pro.rpps, name=pro.name, profession=pro.profession),
                site=_site_ref(site),
                start=start,
                kind=offer.kind,
                mode=offer.mode,
                slot_id=offer.slot_id,
            ),
            now,
        )
        log.info("appointment confirmed", rpps=pro.rpps, kind=offer.kind)

    async def on_offer_refused(self, tx: Transaction, event: OfferRefused, _: CloudEvent) -> None:
        await self._next_candidate(tx, event.request_id, event.offer_id, m.OfferState.REFUSED)

    async def on_offer_expired(self, tx: Transaction, event: OfferExpired, _: CloudEvent) -> None:
        await self._next_candidate(tx, event.request_id, event.offer_id, m.OfferState.EXPIRED)

    async def on_request_cancelled(self, tx: Transaction, event: RequestCancelled, _: CloudEvent) -> None:
        now = self.clock()
        search = await tx.session.get(m.SearchRecord, event.request_id, with_for_update=True)
        if search is None or search.status == m.SearchStatus.CANCELLED:
            return
        if search.current_offer_id and search.status in (m.SearchStatus.OFFERED, m.SearchStatus.CONFIRMED):
            offer = await tx.session.get(m.MatchOffer, search.current_offer_id)
            if offer is not None:
                if offer.status == m.OfferState.PENDING:
                    offer.status, offer.decided_at = m.OfferState.WITHDRAWN, now
                await repo.settle_slot(tx.session, offer.offer_id, m.SlotState.FREE, now)
                tx.emit(
                    self.topics.matching,
                    OfferWithdrawn(
                        request_id=search.request_id,
                        offer_id=offer.offer_id,
                        reason="the regulator cancelled the request",
                    ),
                    now,
                )
        search.status, search.updated_at = m.SearchStatus.CANCELLED, now
        log.info("search cancelled")

    # --- the cascade -----------------------------------------------------------------------

    async def _current(
        self, tx: Transaction, request_id: str, offer_id: str
    ) -> tuple[m.SearchRecord | None, m.MatchOffer | None]:
        """The search and its pending offer, if this answer is for the offer that still stands."""
        search = await tx.session.get(m.SearchRecord, request_id, with_for_update=True)
        offer = await tx.session.get(m.MatchOffer, offer_id, with_for_update=True)
        if (
            search is None
            or offer is None
            or search.status != m.SearchStatus.OFFERED
            or search.current_offer_id != offer_id
            or offer.status != m.OfferState.PENDING
        ):
            log.info("answer to an offer that no longer stands ignored", offer_id=offer_id)
            return None, None
        return search, offer

    async def _next_candidate(self, tx: Transaction, request_id: str, offer_id: str, outcome: m.OfferState) -> None:
        now = self.clock()
        search, offer = await self._current(tx, request_id, offer_id)
        if search is None or offer is None:
            return
        offer.status, offer.decided_at = outcome, now
        await repo.settle_slot(tx.session, offer.offer_id, m.SlotState.FREE, now)
        search.current_offer_id = None
        log.info("offer declined, next candidate", outcome=str(outcome), rpps=offer.rpps)
        await self._search(tx, search, now)

    async def _search(self, tx: Transaction, search: m.SearchRecord, now: datetime) -> None:
        """Offer the request to the best candidate that can still be held, or end it unresolved."""
        search.attempts += 1
        search.status, search.updated_at = m.SearchStatus.SEARCHING, now
        tx.emit(
            self.topics.matching,
            SearchStarted(request_id=search.request_id, deadline=search.deadline, attempt=search.attempts),
            now,
        )
        territory = await repo.territory_of(tx.session, search.commune_insee)
        query = d.Search(
            request_id=search.request_id,
            patient=d.Place(search.lat, search.lon),
            deadline=search.deadline,
            teleconsultation_ok=search.teleconsultation_ok,
            radius_km=territory.radius_km if territory else d.DEFAULT_RADIUS_KM,
            already_asked=await repo.already_asked(tx.session, search.request_id),
        )
        motive = catalogue().motives.get(search.motive)
        professions = motive.professions if motive else ("general_practitioner",)
        from_ = d.earliest_start(now, self.lead_time)
        candidates = d.rank(
            query,
            await repo.free_slots(tx.session, query, professions, from_),
            await repo.overflow_offers(tx.session, query, professions, from_),
            now,
            self.lead_time,
        )
        explanation = [_explain(c) for c in candidates[:EXPLAINED_CANDIDATES]]
        for candidate in candidates:
            offer_id = str(uuid.uuid4())
            if candidate.slot_id and not await repo.hold_slot(
                tx.session, candidate.slot_id, search.request_id, offer_id, now
            ):
                continue  # taken by a concurrent request: the next one
            await self._offer(tx, search, candidate, offer_id, explanation, now)
            return
        reason, detail = d.why_none(query, now, self.lead_time)
        search.status = m.SearchStatus.UNRESOLVED
        tx.emit(
            self.topics.matching, RequestUnresolved(request_id=search.request_id, reason=reason, detail=detail), now
        )
        log.info("request unresolved", reason=str(reason))

    async def _offer(
        self,
        tx: Transaction,
        search: m.SearchRecord,
        c: d.Candidate,
        offer_id: str,
        explanation: list[CandidateExplanation],
        now: datetime,
    ) -> None:
        tx.session.add(
            m.MatchOffer(
                offer_id=offer_id,
                request_id=search.request_id,
                rpps=c.professional.rpps,
                site_id=c.site.site_id,
                slot_id=c.slot_id,
                kind=c.kind,
                mode=c.mode,
                start=c.start,
                window_end=c.window_end,
                status=m.OfferState.PENDING,
                explanation=[e.model_dump(mode="json") for e in explanation],
                created_at=now,
            )
        )
        search.status, search.current_offer_id = m.SearchStatus.OFFERED, offer_id
        tx.emit(
            self.topics.matching,
            OfferProposed(
                request_id=search.request_id,
                offer_id=offer_id,
                professional=ProfessionalRef(
                    rpps=c.professional.rpps, name=c.professional.name, profession=c.professional.profession
                ),
                email=c.professional.email,
                phone=c.professional.phone,
                site=SiteRef(
                    site_id=c.site.site_id,
                    name=c.site.name,
                    commune_insee=c.site.commune_insee,
                    lat=c.site.place.lat,
                    lon=c.site.place.lon,
                ),
                kind=c.kind,
                mode=c.mode,
                start=c.start,
                window_end=c.window_end,
                slot_id=c.slot_id,
                deadline=search.deadline,
                motive=search.motive,
                patient_age=search.age,
                patient_commune_insee=search.commune_insee,
                distance_km=c.distance_km,
                explanation=explanation,
            ),
            now,
        )
        log.info("offer proposed", rpps=c.professional.rpps, kind=c.kind, score=c.score)


def _site_ref(site: m.Site) -> SiteRef:
    return SiteRef(site_id=site.site_id, name=site.name, commune_insee=site.commune_insee, lat=site.lat, lon=site.lon)


def _explain(c: d.Candidate) -> CandidateExplanation:
    return CandidateExplanation(
        rpps=c.professional.rpps,
        kind=c.kind,
        slot_id=c.slot_id,
        start=c.start,
        distance_km=c.distance_km,
        score=c.score,
        terms=c.terms,
    )
