"""The cascade on one search, inside the caller's transaction: ask the best candidates who can
be claimed, or wait for one, or end the request unresolved; end an offer and move on."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum

import structlog

from schemas.events import (
    CandidateExplanation,
    OfferWithdrawn,
    RequestUnresolved,
    RequestWaiting,
    SearchStarted,
    WithdrawalCause,
)
from schemas.topics import Topics
from services.common import metrics
from services.common.db import Transaction
from services.common.motives import Step
from services.matcher.adapters import models
from services.matcher.adapters.repository import Claim
from services.matcher.allocation import proposals
from services.matcher.allocation.ports import AllocationStorage, AllocationStore
from services.matcher.domain import matching
from services.matcher.domain.decision import Ask, Decision, GiveUp, Wait, WaitReason
from services.matcher.domain.index import DirectoryIndex

log = structlog.get_logger(__name__)
EXPLAINED_CANDIDATES = 3
ROUNDS = 3  # when every candidate of a round was taken meanwhile, look again
RETRY_SOON = timedelta(seconds=5)
WORTH_SUGGESTING = (  # why a request may end unresolved while someone could still see the patient
    matching.UnresolvedReason.NO_CANDIDATE_IN_RADIUS,
    matching.UnresolvedReason.ALL_DECLINED,
    matching.UnresolvedReason.DEADLINE_CANNOT_BE_MET,
)


class Outcome(StrEnum):
    """How an offer ended, as the matcher records it."""

    REFUSED = models.OfferState.REFUSED
    EXPIRED = models.OfferState.EXPIRED
    WITHDRAWN = models.OfferState.WITHDRAWN


class Cascade:
    def __init__(
        self,
        storage: AllocationStorage,
        topics: Topics,
        lead_time: timedelta,
        index: DirectoryIndex,
        offer_timeout_minutes: float,
        waiting: Callable[[str], None],
    ) -> None:
        """`waiting(request_id)`: the request was just put on the waiting list (see WaitingList)."""
        self.storage, self.topics, self.lead_time, self.index = storage, topics, lead_time, index
        self.offer_timeout_minutes = offer_timeout_minutes
        self.waiting = waiting

    async def search(self, tx: Transaction, search: models.SearchRecord, now: datetime) -> None:
        """Ask the best candidates who can be claimed, or wait for one, or end the request unresolved."""
        with metrics.MATCH_SECONDS.time():
            await self._search_and_decide(tx, search, now)

    async def _search_and_decide(self, tx: Transaction, search: models.SearchRecord, now: datetime) -> None:
        asked, pending = await self.storage.store(tx).asked_and_pending(search.request_id)
        query = proposals.query_for(self.index, search, asked)
        if not pending and (search.attempts == 0 or search.status == models.SearchStatus.OFFERED):  # a new round
            search.attempts += 1
            started = SearchStarted(
                request_id=search.request_id,
                deadline=search.deadline,
                attempt=search.attempts,
                cpts_id=query.patient_cpts,
            )
            tx.emit(self.topics.matching, started, now)
        search.updated_at = now
        decision: Decision | None = None
        passed_over: set[str] = set()
        for _ in range(ROUNDS):
            busy = dataclasses.replace(query, busy=frozenset(passed_over))
            decision = proposals.decision_for(self.index, search, busy, now, self.lead_time, pending)
            if not isinstance(decision, Ask):
                break
            if await self._ask(tx, search, decision, passed_over, now):
                return  # asked (perhaps fewer than wanted: the others when someone frees up)
        if pending:
            return  # the offers already out stand; nothing more to ask for now
        if isinstance(decision, Ask) or decision is None:  # every candidate was taken meanwhile, round after round
            decision = Wait(
                WaitReason.CANDIDATES_BUSY, "every candidate was just taken by other requests", now + RETRY_SOON
            )
        if isinstance(decision, Wait):
            self._wait(tx, search, decision, now)
        else:
            self._give_up(tx, search, query, proposals.steps_of(search), decision, now)

    async def _ask(
        self, tx: Transaction, search: models.SearchRecord, decision: Ask, passed_over: set[str], now: datetime
    ) -> int:
        """Claim and offer the decision's candidates, up to as many as wanted; returns how many.
        One taken meanwhile by another request (our copy was stale) is passed over: the change
        that made it so reaches the index too; until then, it is not proposed again."""
        explanation = [proposals.explained(c) for c in decision.candidates[:EXPLAINED_CANDIDATES]]
        store = self.storage.store(tx)
        made = 0
        for candidate in decision.candidates:
            offer_id = str(uuid.uuid4())
            claimed = await store.claim(candidate, search.request_id, offer_id, now)
            if claimed == Claim.CLAIMED:
                await self._offer(tx, search, candidate, offer_id, decision.step, explanation, now)
                made += 1
                if made == decision.wanted:
                    break
                continue
            passed_over.add(candidate.professional.rpps)
            if claimed == Claim.SLOT_TAKEN and candidate.slot_id:
                self.index.mark_taken(candidate.slot_id)
            elif claimed == Claim.BUSY:
                self.index.busy.add(candidate.professional.rpps)
        return made

    def _wait(self, tx: Transaction, search: models.SearchRecord, decision: Wait, now: datetime) -> None:
        """Keep the request searching until someone frees up or opens (see WaitingList)."""
        announced = search.status == models.SearchStatus.WAITING and search.wait_reason == decision.reason
        search.status, search.wait_reason = models.SearchStatus.WAITING, decision.reason
        search.look_again_at, search.waited = decision.look_again_at, True
        # A professional freed while this was decided and committed has already woken the list,
        # which could not see this request yet: look at it once more, after the commit.
        request_id = search.request_id
        tx.after_commit.append(lambda: self.waiting(request_id))
        if not announced:
            waiting = RequestWaiting(
                request_id=search.request_id,
                reason=decision.reason,
                detail=decision.detail,
                look_again_at=decision.look_again_at,
                deadline=search.deadline,
            )
            tx.emit(self.topics.matching, waiting, now)
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
        suggested = (
            proposals.alternatives(self.index, query, steps, now, self.lead_time) if reason in WORTH_SUGGESTING else []
        )
        search.status, search.wait_reason, search.look_again_at = models.SearchStatus.UNRESOLVED, None, None
        unresolved = RequestUnresolved(
            request_id=search.request_id, reason=reason, detail=detail, alternatives=suggested
        )
        tx.emit(self.topics.matching, unresolved, now)
        log.info("request unresolved", reason=str(reason), alternatives=len(suggested))

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
        store = self.storage.store(tx)
        store.add_offer(search.request_id, c, offer_id, explanation, answer_by, now)
        search.status, search.wait_reason, search.look_again_at = models.SearchStatus.OFFERED, None, None
        pro_row = await store.professional(c.professional.rpps)
        channels = (pro_row.channels if pro_row else None) or []
        offered = proposals.proposal(search, c, offer_id, step, explanation, channels, answer_by)
        tx.emit(self.topics.matching, offered, now)
        tx.after_commit.append(lambda: self.index.busy.add(c.professional.rpps))
        log.info("offer proposed", rpps=c.professional.rpps, kind=c.kind, score=c.score, protocol=step.protocol)

    async def withdraw(
        self, tx: Transaction, offer: models.MatchOffer, reason: str, cause: WithdrawalCause, now: datetime
    ) -> None:
        """End a pending offer (or undo an accepted one), free its slot, tell the professional."""
        if offer.status == models.OfferState.PENDING:
            offer.status, offer.decided_at = models.OfferState.WITHDRAWN, now
        await self.storage.store(tx).release_slot(offer.offer_id, now)
        withdrawn = OfferWithdrawn(request_id=offer.request_id, offer_id=offer.offer_id, reason=reason, cause=cause)
        tx.emit(self.topics.matching, withdrawn, now)

    async def next_candidate(
        self,
        tx: Transaction,
        ending: tuple[str, str],
        outcome: Outcome,
        now: datetime,
        withdrawn_because: str | None = None,
        cause: WithdrawalCause = "directory",
    ) -> None:
        """The offer `ending` (request_id, offer_id) ended so: free its slot, ask the next one."""
        request_id, offer_id = ending
        store = self.storage.store(tx)
        search, offer = await current(store, request_id, offer_id)
        if search is None or offer is None:
            return
        offer.status, offer.decided_at = models.OfferState(outcome), now
        await store.release_slot(offer.offer_id, now)
        if withdrawn_because:
            withdrawn = OfferWithdrawn(request_id=request_id, offer_id=offer_id, reason=withdrawn_because, cause=cause)
            tx.emit(self.topics.matching, withdrawn, now)
        log.info("offer ended, next candidate", outcome=str(outcome), rpps=offer.rpps)
        await self.search(tx, search, now)


async def current(
    store: AllocationStore, request_id: str, offer_id: str
) -> tuple[models.SearchRecord | None, models.MatchOffer | None]:
    """The search and its pending offer, locked, if this answer is for an offer that still stands."""
    search = await store.search(request_id, lock=True)
    offer = await store.offer(offer_id, lock=True)
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
