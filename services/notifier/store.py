"""The notifier's storage on PostgreSQL (see ports.py): repository functions on the session."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime

from sqlmodel import SQLModel

from services.common.db import Database, Transaction
from services.common.sealing import Vault
from services.notifier import repository
from services.notifier.models import Offer
from services.notifier.ports import Sealed


class SqlNotifierStore:
    def __init__(self, tx: Transaction, vault: Vault) -> None:
        self.session, self.vault = tx.session, vault

    async def offer(self, offer_id: str, *, lock: bool = False) -> Offer | None:
        return await self.session.get(Offer, offer_id, with_for_update=lock)

    def add(self, row: SQLModel) -> None:
        self.session.add(row)

    async def offer_by_token_hash(self, hashed: str) -> Offer | None:
        return await repository.offer_by_token_hash(self.session, hashed=hashed)

    async def lock_offers_of(self, request_id: str, offer: Offer) -> None:
        await repository.lock_offers_of(self.session, request_id=request_id)
        await self.session.refresh(offer)

    async def accepted_by_another(self, offer: Offer) -> bool:
        return await repository.accepted_by_another(self.session, offer=offer)

    async def pending_past(self, *, now: datetime, limit: int) -> list[Offer]:
        return await repository.pending_past(self.session, now=now, limit=limit)

    async def pending_unreminded_until(self, *, now: datetime, until: datetime) -> list[Offer]:
        return await repository.pending_unreminded_until(self.session, now=now, until=until)

    async def delete_treating_doctor_messages(self, request_id: str) -> None:
        await repository.delete_treating_doctor_messages(self.session, request_id=request_id)

    async def open_sealed(self, request_id: str, token: str | None, model: type[Sealed]) -> Sealed | None:
        return await self.vault.open(self.session, request_id, token, model)


class SqlNotifierStorage:
    def __init__(self, db: Database, vault: Vault) -> None:
        self.db, self.vault = db, vault

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        return self.db.transaction()

    def store(self, tx: Transaction) -> SqlNotifierStore:
        return SqlNotifierStore(tx, self.vault)
