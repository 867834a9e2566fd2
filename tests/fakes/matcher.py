"""The allocation's storage in memory (services/matcher/allocation/ports.py), for the fast layer
of service tests: rows are the same SQLModel objects, kept in dicts; a transaction records the
events it emits and runs its after-commit callbacks when it ends without an error. The claim
follows the same rules as repository.claim, without the locks one process does not need."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet
from pydantic import BaseModel

from schemas.events import CandidateExplanation, CloudEvent, EventData
from services.common.clock import utcnow
from services.common.sealing import seal_with
from services.matcher.adapters import models, repository
from services.matcher.adapters.repository import Claim
from services.matcher.allocation.ports import Sealed
from services.matcher.domain import matching


@dataclass
class MemoryTransaction:
    """What a handler is given: events emitted, callbacks after the commit."""

    emitted: list[CloudEvent] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    after_commit: list[Callable[[], None]] = field(default_factory=list)

    def emit(self, topic: str, data: EventData, now: datetime | None = None) -> CloudEvent:
        event = CloudEvent.wrap(data, source="/memory", time=now or utcnow())
        self.emitted.append(event)
        self.topics.append(topic)
        return event


class MemoryAllocationStore:
    def __init__(self) -> None:
        self.searches: dict[str, models.SearchRecord] = {}
        self.offers: dict[str, models.MatchOffer] = {}
        self.professionals: dict[str, models.ProfessionalRow] = {}
        self.sites: dict[tuple[str, str], models.SiteRow] = {}
        self.slots: dict[str, models.Slot] = {}
        self.keys: dict[str, Fernet] = {}

    def add(self, row: Any) -> None:
        """A row of any of the matcher's tables (what a session's `add` does)."""
        if isinstance(row, models.MatchOffer):
            self.offers[row.offer_id] = row
        elif isinstance(row, models.SearchRecord):
            self.searches[row.request_id] = row
        elif isinstance(row, models.ProfessionalRow):
            self.professionals[row.rpps] = row
        elif isinstance(row, models.SiteRow):
            self.sites[(row.rpps, row.site_id)] = row
        elif isinstance(row, models.Slot):
            self.slots[row.slot_id] = row
        else:
            raise TypeError(f"no table in memory for {type(row).__name__}")

    async def search(self, request_id: str, *, lock: bool = False) -> models.SearchRecord | None:
        return self.searches.get(request_id)

    def add_search(self, search: models.SearchRecord) -> None:
        self.add(search)

    async def offer(self, offer_id: str, *, lock: bool = False) -> models.MatchOffer | None:
        return self.offers.get(offer_id)

    async def professional(self, rpps: str) -> models.ProfessionalRow | None:
        return self.professionals.get(rpps)

    async def site(self, rpps: str, site_id: str) -> models.SiteRow | None:
        return self.sites.get((rpps, site_id))

    def _offers_of(self, request_id: str) -> list[models.MatchOffer]:
        return sorted((o for o in self.offers.values() if o.request_id == request_id), key=lambda o: o.offer_id)

    async def asked_and_pending(self, request_id: str) -> tuple[frozenset[str], int]:
        mine = self._offers_of(request_id)
        return frozenset(o.rpps for o in mine), sum(o.status == models.OfferState.PENDING for o in mine)

    async def claim(self, candidate: matching.Candidate, request_id: str, offer_id: str, now: datetime) -> Claim:
        pro = self.professionals.get(candidate.professional.rpps)
        if pro is None or not pro.active or matching.paused(repository.to_domain_professional(pro), now):
            return Claim.INACTIVE
        if any(o.rpps == pro.rpps and o.status == models.OfferState.PENDING for o in self.offers.values()):
            return Claim.BUSY
        if candidate.slot_id is not None:
            slot = self.slots.get(candidate.slot_id)
            if slot is None or slot.state != models.SlotState.FREE:
                return Claim.SLOT_TAKEN
            slot.state, slot.request_id, slot.offer_id, slot.updated_at = (
                models.SlotState.HELD,
                request_id,
                offer_id,
                now,
            )
            return Claim.CLAIMED
        day = matching.paris_day(candidate.start)
        taken = sum(
            o.rpps == pro.rpps
            and o.kind == "overflow"
            and o.status in (models.OfferState.PENDING, models.OfferState.ACCEPTED)
            and matching.paris_day(o.start) == day
            for o in self.offers.values()
        )
        room = matching.overflow_room(repository.to_domain_professional(pro), day, taken)
        return Claim.CLAIMED if room else Claim.FULL

    def add_offer(
        self,
        request_id: str,
        candidate: matching.Candidate,
        offer_id: str,
        explanation: list[CandidateExplanation],
        answer_by: datetime,
        now: datetime,
    ) -> None:
        repository.add_offer(self, request_id, candidate, offer_id, explanation, answer_by, now)  # type: ignore[arg-type]

    async def pending_offers_for(self, request_id: str) -> list[models.MatchOffer]:
        return [o for o in self._offers_of(request_id) if o.status == models.OfferState.PENDING]

    async def live_offers_for(self, request_id: str) -> list[models.MatchOffer]:
        live = (models.OfferState.PENDING, models.OfferState.ACCEPTED)
        return [o for o in self._offers_of(request_id) if o.status in live]

    def _slot_of(self, offer_id: str, states: tuple[str, ...]) -> models.Slot | None:
        return next((s for s in self.slots.values() if s.offer_id == offer_id and s.state in states), None)

    async def book_slot(self, offer_id: str, now: datetime) -> None:
        slot = self._slot_of(offer_id, (models.SlotState.HELD,))
        if slot is not None:
            slot.state, slot.updated_at = models.SlotState.BOOKED, now

    async def release_slot(self, offer_id: str, now: datetime) -> None:
        slot = self._slot_of(offer_id, (models.SlotState.HELD, models.SlotState.BOOKED))
        if slot is not None:
            slot.state, slot.request_id, slot.offer_id, slot.updated_at = models.SlotState.FREE, None, None, now

    async def offers_past_their_time(self, *, grace: timedelta, now: datetime) -> list[tuple[str, str]]:
        late = [o for o in self.offers.values() if o.status == models.OfferState.PENDING and o.answer_by < now - grace]
        return [(o.request_id, o.offer_id) for o in late]

    async def waiting_searches(self, *, now: datetime, only_due_and: set[str] | None) -> list[models.SearchRecord]:
        waiting = [s for s in self.searches.values() if s.status == models.SearchStatus.WAITING]
        if only_due_and is None:
            return waiting
        return [s for s in waiting if (s.look_again_at and s.look_again_at <= now) or s.request_id in only_due_and]

    async def asked_for(self, request_ids: list[str]) -> dict[str, frozenset[str]]:
        found = {i: frozenset(o.rpps for o in self._offers_of(i)) for i in request_ids}
        return {i: asked for i, asked in found.items() if asked}

    async def move_look_again(self, request_id: str, at: datetime) -> None:
        search = self.searches.get(request_id)
        if search is not None and search.status == models.SearchStatus.WAITING:
            search.look_again_at = at

    def create_key(self, request_id: str) -> Fernet:
        self.keys[request_id] = Fernet(Fernet.generate_key())
        return self.keys[request_id]

    async def open_sealed(self, request_id: str, token: str | None, model: type[Sealed]) -> Sealed | None:
        key = self.keys.get(request_id)
        return None if token is None or key is None else model.model_validate_json(key.decrypt(token.encode()))

    async def seal(self, request_id: str, details: BaseModel) -> str | None:
        key = self.keys.get(request_id)
        return None if key is None else seal_with(key, details)


class MemoryAllocationStorage:
    def __init__(self) -> None:
        self.memory = MemoryAllocationStore()
        self.committed: list[tuple[str, CloudEvent]] = []  # (topic, event), in commit order

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[MemoryTransaction]:
        tx = MemoryTransaction()
        yield tx
        self.committed.extend(zip(tx.topics, tx.emitted, strict=True))
        for callback in tx.after_commit:
            callback()

    def store(self, tx: Any) -> MemoryAllocationStore:
        return self.memory

    @asynccontextmanager
    async def waiting_list(self) -> AsyncIterator[bool | None]:
        waiting = any(s.status == models.SearchStatus.WAITING for s in self.memory.searches.values())
        yield True if waiting else None
