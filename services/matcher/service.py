"""The matcher's cascade: find a candidate, claim it, offer it; on an answer book or move on."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum

import structlog
from sqlalchemy import text

from schemas.events import (
    Address,
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
    PatientDetails,
    PatientErased,
    Period,
    ProfessionalRef,
    RequestCancelled,
    RequestReceived,
    RequestUnresolved,
    RequestWaiting,
    SearchStarted,
    SiteRef,
    TreatingDoctor,
    WithdrawalCause,
)
from schemas.topics import Topics
from services.common import geo, metrics
from services.common.db import Database, Transaction, database_away
from services.common.motives import Motive, Step, catalogue, deadline_for, effective_urgency
from services.common.sealing import Vault
from services.matcher import models, repository
from services.matcher.domain import matching
from services.matcher.domain.decision import Ask, Decision, GiveUp, Policy, Wait, WaitReason, decide, serving_order
from services.matcher.domain.index import DirectoryIndex

log = structlog.get_logger(__name__)
EXPLAINED_CANDIDATES = 3
ROUNDS = 3  # when every candidate of a round was taken meanwhile, look again
RETRY_SOON = timedelta(seconds=5)


class Outcome(StrEnum):
    """How an offer ended, as the matcher records it."""

    REFUSED = models.OfferState.REFUSED
    EXPIRED = models.OfferState.EXPIRED
    WITHDRAWN = models.OfferState.WITHDRAWN


class MatcherService:
    def __init__(
        self,
        db: Database,
        topics: Topics,
        clock: Callable[[], datetime],
        lead_time: timedelta,
        index: DirectoryIndex,
        vault: Vault,
        offer_timeout_minutes: float = 15.0,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        """`wake` runs serve_waiting soon (a Pump's poke)."""
        self.db, self.topics, self.clock, self.lead_time, self.index = db, topics, clock, lead_time, index
        self.vault = vault
        self.offer_timeout_minutes = offer_timeout_minutes
        self.wake = wake
        self._changed: set[str] | None = None  # professionals changed since the last look; None: anyone
        self._fresh: set[str] = set()  # requests that just started waiting (decided before a change?)
        # when this process last found nobody waiting (event-loop time): for a while after that,
        # changes alone do not send it to the database to look again (see _serve_waiting)
        self._none_waiting_at: float | None = None
        self.recheck_after = 1.0

    # --- handlers (the table is in entrypoint.py) ------------------------------------------

    async def on_request_received(self, tx: Transaction, event: RequestReceived, _: CloudEvent) -> None:
        if await tx.session.get(models.SearchRecord, event.request_id) is not None:
            return  # same request announced twice
        now = self.clock()
        motive = catalogue().motives.get(event.motive)
        urgency = effective_urgency(event.urgency, motive)
        opened = await self.vault.open(tx.session, event.request_id, event.sealed_patient, PatientDetails)
        # erased before it reached us: the commune's centre, nothing more
        patient = opened or commune_centre(event.commune_insee)
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
        tx.session.add(search)
        await self._search(tx, search, now)

    async def on_offer_accepted(self, tx: Transaction, event: OfferAccepted, _: CloudEvent) -> None:
        now = self.clock()
        search, offer = await self._current(tx, event.request_id, event.offer_id)
        if search is None or offer is None:
            booked = await tx.session.get(models.MatchOffer, event.offer_id)
            if booked is not None and booked.status == models.OfferState.ACCEPTED:
                return  # this acceptance again (under another event id): it was booked already
            tx.emit(
                self.topics.matching,
                OfferWithdrawn(
                    request_id=event.request_id,
                    offer_id=event.offer_id,
                    reason="this offer no longer stands (the request was cancelled or already handled)",
                    cause="handled",
                ),
                now,
            )
            return
        start = offer.start
        if offer.kind == "overflow" and offer.window_end and offer.start <= event.start <= offer.window_end:
            start = event.start  # the professional chose a time inside the window
        offer.status, offer.decided_at, offer.start = models.OfferState.ACCEPTED, now, start
        await repository.book_slot(tx.session, offer.offer_id, now)
        search.status, search.updated_at = models.SearchStatus.CONFIRMED, now
        for other in await repository.pending_offers_for(tx.session, search.request_id):  # parallel offers: first wins
            await self._withdraw(tx, other, "another professional accepted this patient first", "taken", now)
        pro = await tx.session.get(models.ProfessionalRow, offer.rpps)
        site = await tx.session.get(models.SiteRow, (offer.rpps, offer.site_id))
        # the patient's own doctor ("médecin traitant") is told, unless it is them who saw the patient
        treating = await tx.session.get(models.ProfessionalRow, search.treating_rpps) if search.treating_rpps else None
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
                site=site_ref(site),
                start=start,
                kind=offer.kind,
                mode=offer.mode,
                slot_id=offer.slot_id,
                motive=search.motive,
                sealed_treating_doctor=await self._sealed_treating_doctor(tx, search.request_id, treating),
            ),
            now,
        )
        log.info("appointment confirmed", rpps=pro.rpps, kind=offer.kind)

    async def _sealed_treating_doctor(
        self, tx: Transaction, request_id: str, treating: models.ProfessionalRow | None
    ) -> str | None:
        """Who the patient's own doctor is, sealed under the request's key (see TreatingDoctor)."""
        if treating is None:
            return None
        told = TreatingDoctor(
            professional=_pro_ref(treating), channels=[Channel.model_validate(c) for c in (treating.channels or [])]
        )
        return await self.vault.seal(tx.session, request_id, told)

    async def on_patient_erased(self, tx: Transaction, event: PatientErased, _: CloudEvent) -> None:
        """The request's details go; a search still running goes on from the commune's centre."""
        search = await tx.session.get(models.SearchRecord, event.request_id, with_for_update=True)
        if search is None or search.patient_erased_at is not None:
            return
        centre = commune_centre(search.commune_insee)
        search.lat, search.lon = centre.lat, centre.lon
        search.age = search.sex = search.red_flags = search.treating_rpps = None
        search.patient_erased_at = event.erased_at

    async def on_offer_refused(self, tx: Transaction, event: OfferRefused, _: CloudEvent) -> None:
        await self._next_candidate(tx, event.request_id, event.offer_id, Outcome.REFUSED)

    async def on_offer_expired(self, tx: Transaction, event: OfferExpired, _: CloudEvent) -> None:
        await self._next_candidate(tx, event.request_id, event.offer_id, Outcome.EXPIRED)

    async def on_offer_invalidated(self, tx: Transaction, event: OfferInvalidated, _: CloudEvent) -> None:
        await self._next_candidate(tx, event.request_id, event.offer_id, Outcome.WITHDRAWN, event.reason)

    async def on_request_cancelled(self, tx: Transaction, event: RequestCancelled, _: CloudEvent) -> None:
        now = self.clock()
        search = await tx.session.get(models.SearchRecord, event.request_id, with_for_update=True)
        if search is None or search.status == models.SearchStatus.CANCELLED:
            return
        for offer in await repository.live_offers_for(tx.session, search.request_id):  # pending, or accepted (booked)
            await self._withdraw(tx, offer, "the regulator cancelled the request", "cancelled", now)
        search.status, search.updated_at = models.SearchStatus.CANCELLED, now
        log.info("search cancelled")

    # --- the cascade -----------------------------------------------------------------------

    async def _withdraw(
        self, tx: Transaction, offer: models.MatchOffer, reason: str, cause: WithdrawalCause, now: datetime
    ) -> None:
        """End a pending offer (or undo an accepted one), free its slot, tell the professional."""
        if offer.status == models.OfferState.PENDING:
            offer.status, offer.decided_at = models.OfferState.WITHDRAWN, now
        await repository.release_slot(tx.session, offer.offer_id, now)
        tx.emit(
            self.topics.matching,
            OfferWithdrawn(request_id=offer.request_id, offer_id=offer.offer_id, reason=reason, cause=cause),
            now,
        )

    async def _current(
        self, tx: Transaction, request_id: str, offer_id: str
    ) -> tuple[models.SearchRecord | None, models.MatchOffer | None]:
        """The search and its pending offer, if this answer is for an offer that still stands."""
        search = await tx.session.get(models.SearchRecord, request_id, with_for_update=True)
        offer = await tx.session.get(models.MatchOffer, offer_id, with_for_update=True)
        if (
            search is None
            or offer is None
            or offer.request_id != request_id
            or search.status != models.SearchStatus.OFFERED
            or offer.status != models.OfferState.PENDING
        ):
            log.info("answer to an offer that no longer stands ignored", offer_id=offer_id)
            return None, None
        return search, offer

    async def expire_overdue(self) -> int:
        """A safety net: an offer still pending 15 minutes after its time limit — the notifier's
        answer never came, even with the offer published again — ends as expired and the search
        goes on; the notifier is told it is withdrawn. Returns how many offers."""
        async with self.db.transaction() as tx:
            overdue = await repository.offers_past_their_time(tx.session, grace=timedelta(minutes=15), now=self.clock())
        for request_id, offer_id in overdue:
            async with self.db.transaction() as tx:  # one at a time: a search claims professionals
                await self._next_candidate(
                    tx, request_id, offer_id, Outcome.EXPIRED, "no answer came in time", cause="handled"
                )
            log.warning("offer past its time limit ended by the matcher", request_id=request_id, offer_id=offer_id)
        return len(overdue)

    async def _next_candidate(
        self,
        tx: Transaction,
        request_id: str,
        offer_id: str,
        outcome: Outcome,
        withdrawn_because: str | None = None,
        cause: WithdrawalCause = "directory",
    ) -> None:
        now = self.clock()
        search, offer = await self._current(tx, request_id, offer_id)
        if search is None or offer is None:
            return
        offer.status, offer.decided_at = models.OfferState(outcome), now
        await repository.release_slot(tx.session, offer.offer_id, now)
        if withdrawn_because:
            tx.emit(
                self.topics.matching,
                OfferWithdrawn(request_id=request_id, offer_id=offer_id, reason=withdrawn_because, cause=cause),
                now,
            )
        log.info("offer ended, next candidate", outcome=str(outcome), rpps=offer.rpps)
        await self._search(tx, search, now)

    def _query(self, search: models.SearchRecord, asked: frozenset[str]) -> matching.Search:
        territory = self.index.territory_of(search.commune_insee)
        return matching.Search(
            request_id=search.request_id,
            patient=matching.Place(search.lat, search.lon),
            deadline=search.deadline,
            teleconsultation_ok=search.teleconsultation_ok,
            radius_km=territory.radius_km if territory else matching.DEFAULT_RADIUS_KM,
            patient_cpts=territory.cpts_id if territory else None,
            already_asked=asked,
            department=geo_department(search.commune_insee),
        )

    def _decide(self, search: models.SearchRecord, query: matching.Search, now: datetime, pending: int = 0) -> Decision:
        """The decision core on this request, under its territory's policy."""
        territory = self.index.territory_of(search.commune_insee)
        policy = Policy(wait=True, parallel_offers=territory.parallel_offers if territory else 1)
        return decide(self.index, query, _steps(search), now, self.lead_time, policy, pending, search.waited)

    async def _search(self, tx: Transaction, search: models.SearchRecord, now: datetime) -> None:
        """Ask the best candidates who can be claimed, or wait for one, or end the request unresolved."""
        with metrics.MATCH_SECONDS.time():
            await self._search_and_decide(tx, search, now)

    async def _search_and_decide(self, tx: Transaction, search: models.SearchRecord, now: datetime) -> None:
        asked, pending = await repository.asked_and_pending(tx.session, search.request_id)
        query = self._query(search, asked)
        if not pending and (search.attempts == 0 or search.status == models.SearchStatus.OFFERED):  # a new round
            search.attempts += 1
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
        search.updated_at = now
        steps = _steps(search)
        passed_over: set[str] = set()
        decision: Decision | None = None
        made = 0
        for _ in range(ROUNDS):
            decision = self._decide(search, dataclasses.replace(query, busy=frozenset(passed_over)), now, pending)
            if not isinstance(decision, Ask):
                break
            explanation = [_explain(c) for c in decision.candidates[:EXPLAINED_CANDIDATES]]
            for candidate in decision.candidates:
                offer_id = str(uuid.uuid4())
                claimed = await repository.claim(tx.session, candidate, search.request_id, offer_id, now)
                if claimed == repository.Claim.CLAIMED:
                    await self._offer(tx, search, candidate, offer_id, decision.step, explanation, now)
                    made += 1
                    if made == decision.wanted:
                        return
                    continue
                # Taken meanwhile by another request: our copy was stale. The change that made
                # it so reaches the index too; until then, do not propose it again.
                passed_over.add(candidate.professional.rpps)
                if claimed == repository.Claim.SLOT_TAKEN and candidate.slot_id:
                    self.index.mark_taken(candidate.slot_id)
                elif claimed == repository.Claim.BUSY:
                    self.index.busy.add(candidate.professional.rpps)
            if made:
                return  # fewer than wanted: the others are asked when someone frees up
        if pending:
            return  # the offers already out stand; nothing more to ask for now
        if isinstance(decision, Ask) or decision is None:  # every candidate was taken meanwhile, round after round
            decision = Wait(
                WaitReason.CANDIDATES_BUSY, "every candidate was just taken by other requests", now + RETRY_SOON
            )
        if isinstance(decision, Wait):
            self._wait(tx, search, decision, now)
            return
        self._give_up(tx, search, query, steps, decision, now)

    def _wait(self, tx: Transaction, search: models.SearchRecord, decision: Wait, now: datetime) -> None:
        """Keep the request searching until someone frees up or opens (see serve_waiting)."""
        announced = search.status == models.SearchStatus.WAITING and search.wait_reason == decision.reason
        search.status, search.wait_reason, search.look_again_at = (
            models.SearchStatus.WAITING,
            decision.reason,
            decision.look_again_at,
        )
        search.waited = True
        # A professional freed while this was decided and committed has already woken the list,
        # which could not see this request yet: look at it once more, after the commit.
        tx.after_commit.append(lambda: self._just_waiting(search.request_id))
        if not announced:
            tx.emit(
                self.topics.matching,
                RequestWaiting(
                    request_id=search.request_id,
                    reason=decision.reason,
                    detail=decision.detail,
                    look_again_at=decision.look_again_at,
                    deadline=search.deadline,
                ),
                now,
            )
            log.info("request waiting", reason=str(decision.reason), look_again_at=decision.look_again_at.isoformat())

    def _give_up(
        self,
        tx: Transaction,
        search: models.SearchRecord,
        query: matching.Search,
        steps: list[Step],
        decision: GiveUp,
        now: datetime,
    ) -> None:
        reason, detail = decision.reason, decision.detail
        alternatives = (
            self._alternatives(query, steps, now)
            if reason
            in (
                matching.UnresolvedReason.NO_CANDIDATE_IN_RADIUS,
                matching.UnresolvedReason.ALL_DECLINED,
                matching.UnresolvedReason.DEADLINE_CANNOT_BE_MET,
            )
            else []
        )
        search.status, search.wait_reason, search.look_again_at = models.SearchStatus.UNRESOLVED, None, None
        tx.emit(
            self.topics.matching,
            RequestUnresolved(request_id=search.request_id, reason=reason, detail=detail, alternatives=alternatives),
            now,
        )
        log.info("request unresolved", reason=str(reason), alternatives=len(alternatives))

    # --- the waiting list ------------------------------------------------------------------

    def _just_waiting(self, request_id: str) -> None:
        self._fresh.add(request_id)
        self.wake()

    async def _look_again(
        self, row: models.SearchRecord, asked: frozenset[str], changed: set[str] | None, fresh: set[str]
    ) -> None:
        """Decide in memory first: a request that still waits for the same reason costs no
        transaction (at most its time to look again moves); otherwise the cascade runs on the
        locked row, as for any other event. A request whose time has not come, and that none of
        the changed professionals could reach, is not even looked at."""
        now = self.clock()
        query = self._query(row, asked)
        due = row.look_again_at is None or row.look_again_at <= now or row.request_id in fresh
        if not due and changed is not None and not self.index.within_reach(changed, query):
            return
        decision = self._decide(row, query, now)
        if isinstance(decision, Wait) and decision.reason == row.wait_reason:
            if decision.look_again_at != row.look_again_at:
                async with self.db.transaction() as tx:
                    await repository.move_look_again(tx.session, row.request_id, decision.look_again_at)
            return
        async with self.db.transaction() as tx:
            search = await tx.session.get(models.SearchRecord, row.request_id, with_for_update=True)
            if search is not None and search.status == models.SearchStatus.WAITING:
                await self._search(tx, search, now)

    def something_changed(self, professionals: set[str] | None) -> None:
        """Professionals' slots, offers or details changed (None: maybe anyone's, as a territory
        changed): the waiting requests they could reach deserve a look."""
        self._remember(professionals)
        self.wake()

    def _remember(self, professionals: set[str] | None) -> None:
        if professionals is None or self._changed is None:
            self._changed = None
        else:
            self._changed |= professionals

    async def serve_waiting(self) -> int:
        """Look again at waiting requests, most urgent first (24 h, then the earliest deadline):
        those a changed professional could reach, and those whose time to look again has come.

        One matcher process at a time serves the list (an advisory lock), so that the order
        holds across processes; a process that finds the lock taken tries again shortly.
        """
        now = self.clock()
        changed, self._changed = self._changed, set()
        fresh, self._fresh = self._fresh, set()
        try:
            return await self._serve_waiting(now, changed, fresh)
        except Exception:
            self._put_back(changed, fresh)  # the pump tries again: nothing that changed is forgotten
            raise

    def _put_back(self, changed: set[str] | None, fresh: set[str]) -> None:
        self._remember(changed)
        self._fresh |= fresh

    async def _serve_waiting(self, now: datetime, changed: set[str] | None, fresh: set[str]) -> int:
        """Under load the index changes several times per request and nobody waits: a process
        that found the list empty less than `recheck_after` ago, and has put nobody on it since,
        keeps the changes for its next look instead of asking the database. A request another
        process put on the list is served by that process, which hears the same changes (and
        this one looks again within `recheck_after` all the same, should that one have died)."""
        loop_time = asyncio.get_running_loop().time()
        quiet = self._none_waiting_at is not None and loop_time - self._none_waiting_at < self.recheck_after
        if quiet and not fresh:
            self._put_back(changed, fresh)
            return 0
        async with self.db.engine.connect() as conn:
            # One round trip: NULL when nothing waits (the usual case on a quiet day), else whether
            # this process got the list (CASE evaluates the lock only when something waits).
            locked = await conn.scalar(
                text(
                    "SELECT CASE WHEN EXISTS (SELECT 1 FROM search WHERE status = 'waiting') "
                    "THEN pg_try_advisory_lock(hashtext('matcher:waiting')) END"
                )
            )
            await conn.commit()
            if locked is None:
                self._none_waiting_at = loop_time
                return 0
            self._none_waiting_at = None
            if not locked:
                self._put_back(changed, fresh)  # another process serves the list now: try again shortly
                asyncio.get_running_loop().call_later(0.1, self.wake)
                return 0
            try:
                nothing_changed = changed is not None and not changed
                async with self.db.transaction() as tx:  # nothing changed: only those due, and the new
                    rows = await repository.waiting_searches(
                        tx.session, now=now, only_due_and=fresh if nothing_changed else None
                    )
                    asked = await repository.asked_for(tx.session, [r.request_id for r in rows])
                queue = sorted(rows, key=lambda r: serving_order(r.urgency, r.deadline, r.received_at, r.request_id))
                started = time.perf_counter()
                for row in queue:
                    try:
                        await self._look_again(row, asked.get(row.request_id, frozenset()), changed, fresh)
                    except Exception as error:
                        if database_away(error):
                            raise  # the whole look waits for the database (the pump retries)
                        # this request's own fault: the others must still be served
                        log.exception("waiting request could not be looked at", request_id=row.request_id)
                if queue:
                    log.debug(
                        "waiting list looked at", waiting=len(queue), ms=round(1000 * (time.perf_counter() - started))
                    )
                return 0
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(hashtext('matcher:waiting'))"))
                await conn.commit()

    def _alternatives(self, query: matching.Search, steps: list[Step], now: datetime) -> list[Alternative]:
        """What the regulator could still try: a teleconsultation, or someone beyond the radius."""
        query = dataclasses.replace(query, busy=frozenset(self.index.busy))  # nobody busy elsewhere
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
        search: models.SearchRecord,
        c: matching.Candidate,
        offer_id: str,
        step: Step,
        explanation: list[CandidateExplanation],
        now: datetime,
    ) -> None:
        territory = self.index.territory_of(search.commune_insee)
        timeout = timedelta(minutes=territory.offer_timeout_minutes if territory else self.offer_timeout_minutes)
        answer_by = matching.answer_by(now, timeout, search.deadline, c.site)
        tx.session.add(
            models.MatchOffer(
                offer_id=offer_id,
                request_id=search.request_id,
                rpps=c.professional.rpps,
                site_id=c.site.site_id,
                slot_id=c.slot_id,
                kind=c.kind,
                mode=c.mode,
                start=c.start,
                window_end=c.window_end,
                status=models.OfferState.PENDING,
                explanation=[e.model_dump(mode="json") for e in explanation],
                answer_by=answer_by,
                created_at=now,
            )
        )
        search.status, search.wait_reason, search.look_again_at = models.SearchStatus.OFFERED, None, None
        pro_row = await tx.session.get(models.ProfessionalRow, c.professional.rpps)
        channels = (pro_row.channels if pro_row else None) or []
        tx.emit(self.topics.matching, _proposal(search, c, offer_id, step, explanation, channels, answer_by), now)
        tx.after_commit.append(lambda: self.index.busy.add(c.professional.rpps))
        log.info("offer proposed", rpps=c.professional.rpps, kind=c.kind, score=c.score, protocol=step.protocol)


def _proposal(
    search: models.SearchRecord,
    c: matching.Candidate,
    offer_id: str,
    step: Step,
    explanation: list[CandidateExplanation],
    channels: list[dict[str, str]],
    answer_by: datetime,
) -> OfferProposed:
    """The offer as the notifier (and the intake, the read model) hear of it."""
    return OfferProposed(
        request_id=search.request_id,
        offer_id=offer_id,
        professional=ProfessionalRef(
            rpps=c.professional.rpps, name=c.professional.name, profession=c.professional.profession
        ),
        professional_cpts_id=c.professional.cpts_id,
        email=c.professional.email,
        phone=c.professional.phone,
        channels=[Channel.model_validate(ch) for ch in channels],
        answer_by=answer_by,
        choices=[Period(start=a, end=b) for a, b in matching.choices(c.site, c.start, c.window_end)]
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
        patient_age_band=search.age_band,
        patient_commune_insee=search.commune_insee,
        distance_km=c.distance_km,
        explanation=explanation,
    )


def commune_centre(commune_insee: str | None) -> PatientDetails:
    """Where a patient whose details were erased is looked for: their commune's centre."""
    commune = geo.commune(commune_insee or "")
    if commune is None:
        raise ValueError(f"unknown commune {commune_insee!r}: no place to search from")
    return PatientDetails(lat=commune.lat, lon=commune.lon)


def geo_department(commune_insee: str | None) -> str | None:
    commune = geo.commune(commune_insee or "")
    return commune.department if commune else None


def _steps(search: models.SearchRecord) -> list[Step]:
    return _motive(search.motive).steps_for(search.age, search.sex, search.red_flags or [])


def _motive(code: str) -> Motive:
    motives = catalogue().motives
    return motives.get(code) or motives["general"]


def _pro_ref(pro: models.ProfessionalRow) -> ProfessionalRef:
    return ProfessionalRef(rpps=pro.rpps, name=pro.name, profession=pro.profession)


def site_ref(site: models.SiteRow) -> SiteRef:
    return SiteRef(
        site_id=site.site_id,
        name=site.name,
        commune_insee=site.commune_insee,
        lat=site.lat,
        lon=site.lon,
        practice_address=Address.model_validate(site.address) if site.address else None,
    )


def _explain(c: matching.Candidate) -> CandidateExplanation:
    return CandidateExplanation(
        rpps=c.professional.rpps,
        kind=c.kind,
        slot_id=c.slot_id,
        start=c.start,
        distance_km=c.distance_km,
        score=c.score,
        terms=c.terms,
    )
