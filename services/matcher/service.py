"""The matcher's cascade: find a candidate, claim it, offer it; on an answer book or move on."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum

import structlog

from schemas.events import (
    Alternative,
    AppointmentConfirmed,
    CandidateExplanation,
    Channel,
    CloudEvent,
    OfferAccepted,
    OfferExpired,
    OfferInvalidated,
    OfferProposed,
    OfferRefused,
    OfferWithdrawn,
    Period,
    ProfessionalRef,
    RequestCancelled,
    RequestReceived,
    RequestUnresolved,
    SearchStarted,
    SiteRef,
)
from schemas.topics import Topics
from services.common import geo, metrics
from services.common.db import Transaction
from services.common.motives import Motive, Step, catalogue, effective_urgency
from services.matcher import models as m
from services.matcher import repository as repo
from services.matcher.domain import matching as d
from services.matcher.domain.index import DirectoryIndex, candidates_by_step

log = structlog.get_logger(__name__)
EXPLAINED_CANDIDATES = 3
CANDIDATES_PER_ROUND = 5
ROUNDS = 3  # when every candidate of a round was taken meanwhile, look again


class Outcome(StrEnum):
    """How an offer ended, as the matcher records it."""

    REFUSED = m.OfferState.REFUSED
    EXPIRED = m.OfferState.EXPIRED
    WITHDRAWN = m.OfferState.WITHDRAWN


class MatcherService:
    def __init__(
        self,
        topics: Topics,
        clock: Callable[[], datetime],
        lead_time: timedelta,
        index: DirectoryIndex,
        offer_timeout_minutes: float = 15.0,
    ) -> None:
        self.topics, self.clock, self.lead_time, self.index = topics, clock, lead_time, index
        self.offer_timeout_minutes = offer_timeout_minutes

    # --- handlers (the table is in entrypoint.py) ------------------------------------------

    async def on_request_received(self, tx: Transaction, event: RequestReceived, _: CloudEvent) -> None:
        if await tx.session.get(m.SearchRecord, event.request_id) is not None:
            return  # same request announced twice
        now = self.clock()
        motive = catalogue().motives.get(event.motive)
        urgency = effective_urgency(event.urgency, motive)
        search = m.SearchRecord(
            request_id=event.request_id,
            received_at=event.received_at,
            deadline=d.deadline_for(event.received_at, urgency),
            urgency=urgency,
            motive=event.motive,
            commune_insee=event.location.commune_insee,
            lat=event.location.lat,
            lon=event.location.lon,
            age=event.age,
            sex=event.sex,
            red_flags=list(event.red_flags),
            teleconsultation_ok=event.teleconsultation_ok,
            treating_rpps=event.treating_rpps,
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
        await repo.book_slot(tx.session, offer.offer_id, now)
        search.status, search.updated_at = m.SearchStatus.CONFIRMED, now
        pro = await tx.session.get(m.Professional, offer.rpps)
        site = await tx.session.get(m.Site, (offer.rpps, offer.site_id))
        # the patient's own doctor ("médecin traitant") is told, unless it is them who saw the patient
        treating = await tx.session.get(m.Professional, search.treating_rpps) if search.treating_rpps else None
        if treating is not None and (not treating.active or treating.rpps == offer.rpps):
            treating = None
        assert pro is not None and site is not None  # kept while an offer refers to them
        tx.emit(
            self.topics.matching,
            AppointmentConfirmed(
                request_id=search.request_id,
                offer_id=offer.offer_id,
                professional=_pro_ref(pro),
                professional_cpts_id=pro.cpts_id,
                site=_site_ref(site),
                start=start,
                kind=offer.kind,
                mode=offer.mode,
                slot_id=offer.slot_id,
                motive=search.motive,
                treating_doctor=_pro_ref(treating) if treating else None,
                treating_doctor_channels=[Channel.model_validate(c) for c in (treating.channels or [])]
                if treating
                else [],
            ),
            now,
        )
        log.info("appointment confirmed", rpps=pro.rpps, kind=offer.kind)

    async def on_offer_refused(self, tx: Transaction, event: OfferRefused, _: CloudEvent) -> None:
        await self._next_candidate(tx, event.request_id, event.offer_id, Outcome.REFUSED)

    async def on_offer_expired(self, tx: Transaction, event: OfferExpired, _: CloudEvent) -> None:
        await self._next_candidate(tx, event.request_id, event.offer_id, Outcome.EXPIRED)

    async def on_offer_invalidated(self, tx: Transaction, event: OfferInvalidated, _: CloudEvent) -> None:
        await self._next_candidate(tx, event.request_id, event.offer_id, Outcome.WITHDRAWN, event.reason)

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
                await repo.release_slot(tx.session, offer.offer_id, now)
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

    async def _next_candidate(
        self, tx: Transaction, request_id: str, offer_id: str, outcome: Outcome, withdrawn_because: str | None = None
    ) -> None:
        now = self.clock()
        search, offer = await self._current(tx, request_id, offer_id)
        if search is None or offer is None:
            return
        offer.status, offer.decided_at = m.OfferState(outcome), now
        await repo.release_slot(tx.session, offer.offer_id, now)
        if withdrawn_because:
            tx.emit(
                self.topics.matching,
                OfferWithdrawn(request_id=request_id, offer_id=offer_id, reason=withdrawn_because),
                now,
            )
        search.current_offer_id = None
        log.info("offer ended, next candidate", outcome=str(outcome), rpps=offer.rpps)
        await self._search(tx, search, now)

    def _query(self, search: m.SearchRecord, asked: frozenset[str]) -> d.Search:
        territory = self.index.territory_of(search.commune_insee)
        return d.Search(
            request_id=search.request_id,
            patient=d.Place(search.lat, search.lon),
            deadline=search.deadline,
            teleconsultation_ok=search.teleconsultation_ok,
            radius_km=territory.radius_km if territory else d.DEFAULT_RADIUS_KM,
            patient_cpts=territory.cpts_id if territory else None,
            already_asked=asked,
            department=geo_department(search.commune_insee),
            busy=frozenset(self.index.busy),
        )

    async def _search(self, tx: Transaction, search: m.SearchRecord, now: datetime) -> None:
        """Offer the request to the best candidate that can still be claimed, or end it unresolved."""
        with metrics.MATCH_SECONDS.time():
            await self._search_and_decide(tx, search, now)

    async def _search_and_decide(self, tx: Transaction, search: m.SearchRecord, now: datetime) -> None:
        search.attempts += 1
        search.status, search.updated_at = m.SearchStatus.SEARCHING, now
        query = self._query(search, await repo.already_asked(tx.session, search.request_id))
        tx.emit(
            self.topics.matching,
            SearchStarted(
                request_id=search.request_id,
                deadline=search.deadline,
                attempt=search.attempts,
                cpts_id=query.patient_cpts,
            ),
            now,
        )
        steps = _motive(search.motive).steps_for(search.age, search.sex, search.red_flags or [])
        passed_over: set[str] = set()
        for _ in range(ROUNDS):
            round_query = dataclasses.replace(query, already_asked=query.already_asked | passed_over)
            ranked = candidates_by_step(self.index, round_query, steps, now, self.lead_time, CANDIDATES_PER_ROUND)
            step, candidates = next(ranked, (None, []))
            if step is None:
                break
            explanation = [_explain(c) for c in candidates[:EXPLAINED_CANDIDATES]]
            for candidate in candidates:
                offer_id = str(uuid.uuid4())
                claimed = await repo.claim(tx.session, candidate, search.request_id, offer_id, now)
                if claimed == repo.Claim.CLAIMED:
                    await self._offer(tx, search, candidate, offer_id, step, explanation, now)
                    return
                # Taken meanwhile by another request: our copy was stale. The change that made
                # it so reaches the index too; until then, do not propose it again.
                passed_over.add(candidate.professional.rpps)
                if claimed == repo.Claim.SLOT_TAKEN and candidate.slot_id:
                    self.index.mark_taken(candidate.slot_id)
                elif claimed == repo.Claim.BUSY:
                    self.index.busy.add(candidate.professional.rpps)
        reason, detail = d.why_none(query, now, self.lead_time)
        alternatives = (
            self._alternatives(query, steps, now)
            if reason in (d.UnresolvedReason.NO_CANDIDATE_IN_RADIUS, d.UnresolvedReason.ALL_DECLINED)
            else []
        )
        search.status = m.SearchStatus.UNRESOLVED
        tx.emit(
            self.topics.matching,
            RequestUnresolved(request_id=search.request_id, reason=reason, detail=detail, alternatives=alternatives),
            now,
        )
        log.info("request unresolved", reason=str(reason), alternatives=len(alternatives))

    def _alternatives(self, query: d.Search, steps: list[Step], now: datetime) -> list[Alternative]:
        """What the regulator could still try: a teleconsultation, or someone beyond the radius."""
        professions = tuple(dict.fromkeys(p for s in steps for p in s.professions))
        found: list[Alternative] = []
        if not query.teleconsultation_ok:
            tele = dataclasses.replace(query, teleconsultation_ok=True, radius_km=0.0)
            for c in self.index.candidates(tele, professions, now, self.lead_time, 1):
                found.append(
                    Alternative(
                        kind="teleconsultation",
                        rpps=c.professional.rpps,
                        name=c.professional.name,
                        profession=c.professional.profession,
                        start=c.start,
                        detail=f"a teleconsultation with {c.professional.name} is possible if the patient accepts it",
                    )
                )
        wider = dataclasses.replace(query, radius_km=max(2 * query.radius_km, query.radius_km + 30))
        for c in self.index.candidates(wider, professions, now, self.lead_time, 3):
            if c.distance_km > query.radius_km and c.mode == "in_person":
                found.append(
                    Alternative(
                        kind="outside_radius",
                        rpps=c.professional.rpps,
                        name=c.professional.name,
                        profession=c.professional.profession,
                        start=c.start,
                        distance_km=c.distance_km,
                        cpts_id=c.professional.cpts_id,
                        detail=f"{c.professional.name} could see the patient at {c.distance_km:.0f} km",
                    )
                )
                break
        return found

    async def _offer(
        self,
        tx: Transaction,
        search: m.SearchRecord,
        c: d.Candidate,
        offer_id: str,
        step: Step,
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
        territory = self.index.territory_of(search.commune_insee)
        timeout = timedelta(minutes=territory.offer_timeout_minutes if territory else self.offer_timeout_minutes)
        pro_row = await tx.session.get(m.Professional, c.professional.rpps)
        tx.emit(
            self.topics.matching,
            OfferProposed(
                request_id=search.request_id,
                offer_id=offer_id,
                professional=ProfessionalRef(
                    rpps=c.professional.rpps, name=c.professional.name, profession=c.professional.profession
                ),
                professional_cpts_id=c.professional.cpts_id,
                email=c.professional.email,
                phone=c.professional.phone,
                channels=[Channel.model_validate(ch) for ch in (pro_row.channels if pro_row else None) or []],
                answer_by=d.answer_by(now, timeout, search.deadline, c.site),
                choices=[Period(start=a, end=b) for a, b in d.choices(c.site, c.start, c.window_end)]
                if c.window_end
                else [],
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
                protocol=step.protocol,
                patient_age=search.age,
                patient_commune_insee=search.commune_insee,
                distance_km=c.distance_km,
                explanation=explanation,
            ),
            now,
        )
        tx.after_commit.append(lambda: self.index.busy.add(c.professional.rpps))
        log.info("offer proposed", rpps=c.professional.rpps, kind=c.kind, score=c.score, protocol=step.protocol)


def geo_department(commune_insee: str | None) -> str | None:
    commune = geo.commune(commune_insee or "")
    return commune.department if commune else None


def _motive(code: str) -> Motive:
    motives = catalogue().motives
    return motives.get(code) or motives["general"]


def _pro_ref(pro: m.Professional) -> ProfessionalRef:
    return ProfessionalRef(rpps=pro.rpps, name=pro.name, profession=pro.profession)


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
