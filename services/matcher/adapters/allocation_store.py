"""The allocation's storage on PostgreSQL: each operation is a repository function on the
transaction's session (see allocation/ports.py for what each means)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime, timedelta

from pydantic import BaseModel

from schemas.events import CandidateExplanation
from services.common.db import Database, Transaction
from services.common.sealing import Vault
from services.matcher.adapters import models, repository, slots
from services.matcher.adapters.repository import Claim
from services.matcher.allocation.ports import Sealed
from services.matcher.domain import matching


class SqlAllocationStore:
    def __init__(self, tx: Transaction, vault: Vault) -> None:
        self.session, self.vault = tx.session, vault

    async def search(self, request_id: str, *, lock: bool = False) -> models.SearchRecord | None:
        return await self.session.get(models.SearchRecord, request_id, with_for_update=lock)

    def add_search(self, search: models.SearchRecord) -> None:
        self.session.add(search)

    async def offer(self, offer_id: str, *, lock: bool = False) -> models.MatchOffer | None:
        return await self.session.get(models.MatchOffer, offer_id, with_for_update=lock)

    async def professional(self, rpps: str) -> models.ProfessionalRow | None:
        return await self.session.get(models.ProfessionalRow, rpps)

    async def site(self, rpps: str, site_id: str) -> models.SiteRow | None:
        return await self.session.get(models.SiteRow, (rpps, site_id))

    async def asked_and_pending(self, request_id: str) -> tuple[frozenset[str], int]:
        return await repository.asked_and_pending(self.session, request_id)

    async def claim(self, candidate: matching.Candidate, request_id: str, offer_id: str, now: datetime) -> Claim:
        return await repository.claim(self.session, candidate, request_id, offer_id, now)

    def add_offer(
        self,
        request_id: str,
        candidate: matching.Candidate,
        offer_id: str,
        explanation: list[CandidateExplanation],
        answer_by: datetime,
        now: datetime,
    ) -> None:
        repository.add_offer(self.session, request_id, candidate, offer_id, explanation, answer_by, now)

    async def pending_offers_for(self, request_id: str) -> list[models.MatchOffer]:
        return await repository.pending_offers_for(self.session, request_id)

    async def live_offers_for(self, request_id: str) -> list[models.MatchOffer]:
        return await repository.live_offers_for(self.session, request_id)

    async def book_slot(self, offer_id: str, now: datetime) -> None:
        await slots.book_slot(self.session, offer_id, now)

    async def release_slot(self, offer_id: str, now: datetime) -> None:
        await slots.release_slot(self.session, offer_id, now)

    async def offers_past_their_time(self, *, grace: timedelta, now: datetime) -> list[tuple[str, str]]:
        return await repository.offers_past_their_time(self.session, grace=grace, now=now)

    async def waiting_searches(self, *, now: datetime, only_due_and: set[str] | None) -> list[models.SearchRecord]:
        return await repository.waiting_searches(self.session, now=now, only_due_and=only_due_and)

    async def asked_for(self, request_ids: list[str]) -> dict[str, frozenset[str]]:
        return await repository.asked_for(self.session, request_ids)

    async def move_look_again(self, request_id: str, at: datetime) -> None:
        await repository.move_look_again(self.session, request_id, at)

    async def open_sealed(self, request_id: str, token: str | None, model: type[Sealed]) -> Sealed | None:
        return await self.vault.open(self.session, request_id, token, model)

    async def seal(self, request_id: str, details: BaseModel) -> str | None:
        return await self.vault.seal(self.session, request_id, details)


class SqlAllocationStorage:
    def __init__(self, db: Database, vault: Vault) -> None:
        self.db, self.vault = db, vault

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        return self.db.transaction()

    def store(self, tx: Transaction) -> SqlAllocationStore:
        return SqlAllocationStore(tx, self.vault)

    @asynccontextmanager
    async def waiting_list(self) -> AsyncIterator[bool | None]:
        async with self.db.engine.connect() as conn:
            locked = await repository.claim_waiting_list(conn)
            try:
                yield locked
            finally:
                if locked:
                    await repository.release_waiting_list(conn)
