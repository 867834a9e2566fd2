"""What the notifier's flows need from storage, as interfaces (see the matcher's
allocation/ports.py for why): PostgreSQL in the service (store.py), memory in the fast tests
(tests/fakes/notifier.py), the same flows checked on both (tests/service/test_notifier.py)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol, TypeVar

from pydantic import BaseModel
from sqlmodel import SQLModel

from services.common.db import Transaction
from services.notifier.models import Offer

Sealed = TypeVar("Sealed", bound=BaseModel)


class NotifierStore(Protocol):
    """Offers, their messages and audit trail, within one transaction."""

    async def offer(self, offer_id: str, *, lock: bool = False) -> Offer | None: ...

    def add(self, row: SQLModel) -> None:
        """A new row: an offer, a message to send, an audit entry, a link e-mail."""
        ...

    async def offer_by_token_hash(self, hashed: str) -> Offer | None: ...

    async def lock_offers_of(self, request_id: str, offer: Offer) -> None:
        """Every offer of the request locked, in one order; `offer` read again as it is now."""
        ...

    async def accepted_by_another(self, offer: Offer) -> bool: ...

    async def pending_past(self, *, now: datetime, limit: int) -> list[Offer]: ...

    async def pending_unreminded_until(self, *, now: datetime, until: datetime) -> list[Offer]: ...

    async def delete_treating_doctor_messages(self, request_id: str) -> None: ...

    async def open_sealed(self, request_id: str, token: str | None, model: type[Sealed]) -> Sealed | None: ...


class NotifierStorage(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[Transaction]: ...

    def store(self, tx: Transaction) -> NotifierStore: ...
