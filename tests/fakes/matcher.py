"""The matcher's storage in memory — the allocation's (services/matcher/allocation/ports.py) and
the directory's (services/matcher/directory/ports.py) over the same rows — for the fast layer of
service tests: rows are the same SQLModel objects, kept in dicts; a transaction records the
events it emits and runs its after-commit callbacks when it ends without an error. The claim
follows the same rules as repository.claim, without the locks one process does not need."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet
from pydantic import BaseModel

from schemas.events import CandidateExplanation
from services.common.sealing import seal_with
from services.matcher.adapters import models, repository
from services.matcher.adapters.repository import Claim
from services.matcher.allocation.ports import Sealed
from services.matcher.directory.ports import Row
from services.matcher.domain import matching
from tests.fakes.memory import MemoryStorage


class MemoryMatcherStore:
    def __init__(self) -> None:
        self.searches: dict[str, models.SearchRecord] = {}
        self.offers: dict[str, models.MatchOffer] = {}
        self.professionals: dict[str, models.ProfessionalRow] = {}
        self.sites: dict[tuple[str, str], models.SiteRow] = {}
        self.slots: dict[str, models.Slot] = {}
        self.territories: dict[str, models.TerritoryRow] = {}
        self.templates_kept: dict[tuple[str, str], models.AvailabilityTemplate] = {}
        self.keys: dict[str, Fernet] = {}
        self.audit: list[tuple[str, str, str]] = []  # (actor, action, detail)

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
        elif isinstance(row, models.TerritoryRow):
            self.territories[row.cpts_id] = row
        elif isinstance(row, models.AvailabilityTemplate):
            self.templates_kept[(row.rpps, row.site_id)] = row
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

    # --- the directory's questions (directory/ports.py) ----------------------------------------

    def _table(self, model: type[Any]) -> dict[Any, Any]:
        tables: dict[type[Any], dict[Any, Any]] = {
            models.TerritoryRow: self.territories,
            models.ProfessionalRow: self.professionals,
            models.SiteRow: self.sites,
            models.Slot: self.slots,
            models.MatchOffer: self.offers,
            models.SearchRecord: self.searches,
        }
        return tables[model]

    async def get(self, model: type[Row], key: Any, *, lock: bool = False) -> Row | None:
        found: Row | None = self._table(model).get(tuple(key) if isinstance(key, list) else key)
        return found

    def upsert(self, row: Row | None, model: type[Row], values: dict[str, Any]) -> Row:
        if row is None:
            row = model(**values)
        else:
            for key, value in values.items():
                setattr(row, key, value)
        self.add(row)
        return row

    async def flush(self) -> None:
        return None

    async def any_territory(self) -> bool:
        return bool(self.territories)

    async def sites_of(self, rpps: str) -> dict[str, models.SiteRow]:
        return {site_id: site for (owner, site_id), site in self.sites.items() if owner == rpps}

    async def open_sites_of(self, rpps: list[str]) -> dict[str, list[models.SiteRow]]:
        found: dict[str, list[models.SiteRow]] = {}
        for (owner, _), site in sorted(self.sites.items()):
            if owner in rpps and site.active:
                found.setdefault(owner, []).append(site)
        return found

    async def professionals_page(
        self, *, cpts_id: str, profession: str | None, commune_insee: str | None, limit: int, offset: int
    ) -> tuple[int, list[models.ProfessionalRow]]:
        at_commune = {owner for (owner, _), s in self.sites.items() if s.active and s.commune_insee == commune_insee}
        found = [
            p
            for p in self.professionals.values()
            if p.cpts_id == cpts_id
            and (not profession or p.profession == profession)
            and (not commune_insee or p.rpps in at_commune)
        ]
        found.sort(key=lambda p: (p.name, p.rpps))
        return len(found), found[offset : offset + limit]

    async def cpts_of(self, rpps: str) -> tuple[bool, str | None]:
        pro = self.professionals.get(rpps)
        return (pro is not None, pro.cpts_id if pro else None)

    async def channels_of(self, rpps: str) -> list[dict[str, Any]]:
        pro = self.professionals.get(rpps)
        return list(pro.channels or []) if pro else []

    async def active_with_email(self, email: str) -> list[models.ProfessionalRow]:
        address = email.strip().lower()
        channel = {"type": "email", "destination": email.strip()}
        return [
            p
            for p in self.professionals.values()
            if p.active and ((p.email or "").lower() == address or channel in (p.channels or []))
        ][:5]

    async def keep_template(self, *, rpps: str, site_id: str, rules: list[Any], weeks: int, now: datetime) -> None:
        values = {"rpps": rpps, "site_id": site_id, "rules": rules, "weeks": weeks, "updated_at": now}
        self.upsert(self.templates_kept.get((rpps, site_id)), models.AvailabilityTemplate, values)

    async def templates(self) -> list[models.AvailabilityTemplate]:
        return list(self.templates_kept.values())

    async def overlapping(self, *, slot_id: str, rpps: str, start: datetime, end: datetime) -> bool:
        return any(
            s.rpps == rpps and s.slot_id != slot_id and s.state != models.SlotState.WITHDRAWN
            and s.start < end and s.end > start
            for s in self.slots.values()
        )  # fmt: skip

    async def slots_between(self, *, rpps: str, start: datetime, end: datetime, limit: int) -> list[models.Slot]:
        found = [s for s in self.slots.values() if s.rpps == rpps and start <= s.start < end]
        return sorted(found, key=lambda s: s.start)[:limit]

    async def existing_slot_ids(self, slot_ids: list[str]) -> set[str]:
        return set(slot_ids) & set(self.slots)

    def put_free(self, slot: models.Slot | None, values: dict[str, Any]) -> models.Slot:
        free = {"state": models.SlotState.FREE, "request_id": None, "offer_id": None}
        return self.upsert(slot, models.Slot, {**values, **free})

    def add_free(self, values: dict[str, Any]) -> models.Slot:
        return self.upsert(None, models.Slot, {**values, "state": models.SlotState.FREE})

    async def professional_of_slot(self, slot_id: str) -> str | None:
        slot = self.slots.get(slot_id)
        return slot.rpps if slot else None

    async def withdraw_free_slots(self, *, rpps: str, site_id: str | None, now: datetime) -> list[models.Slot]:
        gone = [
            s
            for s in self.slots.values()
            if s.rpps == rpps and s.state == models.SlotState.FREE and site_id in (None, s.site_id)
        ]
        for slot in gone:
            slot.state, slot.updated_at = models.SlotState.WITHDRAWN, now
        return gone

    async def pending_offers_of(self, rpps: str) -> list[models.MatchOffer]:
        return [o for o in self.offers.values() if o.rpps == rpps and o.status == models.OfferState.PENDING]

    async def record(self, by: Any, action: str, now: datetime, detail: str) -> None:
        self.audit.append((f"{by.kind}:{by.id}", action, detail))


class MemoryMatcherStorage(MemoryStorage):
    def __init__(self) -> None:
        super().__init__()
        self.memory = MemoryMatcherStore()

    def store(self, tx: Any) -> MemoryMatcherStore:
        return self.memory

    @asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[None]:
        yield

    @asynccontextmanager
    async def waiting_list(self) -> AsyncIterator[bool | None]:
        waiting = any(s.status == models.SearchStatus.WAITING for s in self.memory.searches.values())
        yield True if waiting else None
