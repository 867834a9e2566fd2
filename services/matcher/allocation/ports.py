"""What the allocation needs from storage, as interfaces: the cascade, its handlers and the
waiting list speak to these only, so that they run against PostgreSQL in the service
(adapters/allocation_store.py) and against memory in the fast tests (tests/fakes/matcher.py),
with the same behaviour checked on both (tests/integration/test_allocation.py)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from pydantic import BaseModel

from schemas.events import CandidateExplanation
from services.common.db import Transaction
from services.matcher.adapters import models
from services.matcher.adapters.repository import Claim
from services.matcher.domain import matching

Sealed = TypeVar("Sealed", bound=BaseModel)


class AllocationStore(Protocol):
    """The searches, offers, professionals and slots of one transaction. `lock`: the row is
    locked until the transaction ends (concurrent matchers wait for it)."""

    async def search(self, request_id: str, *, lock: bool = False) -> models.SearchRecord | None: ...

    def add_search(self, search: models.SearchRecord) -> None: ...

    async def offer(self, offer_id: str, *, lock: bool = False) -> models.MatchOffer | None: ...

    async def professional(self, rpps: str) -> models.ProfessionalRow | None: ...

    async def site(self, rpps: str, site_id: str) -> models.SiteRow | None: ...

    async def asked_and_pending(self, request_id: str) -> tuple[frozenset[str], int]: ...

    async def claim(self, candidate: matching.Candidate, request_id: str, offer_id: str, now: datetime) -> Claim: ...

    def add_offer(
        self,
        request_id: str,
        candidate: matching.Candidate,
        offer_id: str,
        explanation: list[CandidateExplanation],
        answer_by: datetime,
        now: datetime,
    ) -> None: ...

    async def pending_offers_for(self, request_id: str) -> list[models.MatchOffer]: ...

    async def live_offers_for(self, request_id: str) -> list[models.MatchOffer]: ...

    async def book_slot(self, offer_id: str, now: datetime) -> None: ...

    async def release_slot(self, offer_id: str, now: datetime) -> None: ...

    async def offers_past_their_time(self, *, grace: timedelta, now: datetime) -> list[tuple[str, str]]: ...

    async def waiting_searches(self, *, now: datetime, only_due_and: set[str] | None) -> list[models.SearchRecord]: ...

    async def asked_for(self, request_ids: list[str]) -> dict[str, frozenset[str]]: ...

    async def move_look_again(self, request_id: str, at: datetime) -> None: ...

    async def open_sealed(self, request_id: str, token: str | None, model: type[Sealed]) -> Sealed | None: ...

    async def seal(self, request_id: str, details: BaseModel) -> str | None: ...


class AllocationStorage(Protocol):
    """Where the allocation's units of work come from."""

    def transaction(self) -> AbstractAsyncContextManager[Transaction]: ...

    def store(self, tx: Transaction) -> AllocationStore:
        """The store of a transaction this storage opened (or a consumer opened for an event)."""
        ...

    def waiting_list(self) -> AbstractAsyncContextManager[bool | None]:
        """Held by one process at a time: None when nobody waits, False when another process
        serves the list now, True when this one may (until the block ends)."""
        ...
