"""The notifier's storage in memory (services/notifier/ports.py), for the fast layer of service
tests: offers, messages queued, audit entries and link e-mails kept in lists and dicts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cryptography.fernet import Fernet
from sqlmodel import SQLModel

from services.notifier.models import AuditEntry, LinkMessage, Notification, Offer, OfferStatus
from services.notifier.ports import Sealed
from tests.fakes.memory import MemoryStorage


class MemoryNotifierStore:
    def __init__(self) -> None:
        self.offers: dict[str, Offer] = {}
        self.notifications: list[Notification] = []
        self.audit: list[AuditEntry] = []
        self.link_messages: list[LinkMessage] = []
        self.keys: dict[str, Fernet] = {}

    async def offer(self, offer_id: str, *, lock: bool = False) -> Offer | None:
        return self.offers.get(offer_id)

    def add(self, row: SQLModel) -> None:
        if isinstance(row, Offer):
            self.offers[row.offer_id] = row
        elif isinstance(row, Notification):
            row.id = row.id or len(self.notifications) + 1  # as the database numbers them
            self.notifications.append(row)
        elif isinstance(row, AuditEntry):
            self.audit.append(row)
        elif isinstance(row, LinkMessage):
            self.link_messages.append(row)
        else:
            raise TypeError(f"no table in memory for {type(row).__name__}")

    async def offer_by_token_hash(self, hashed: str) -> Offer | None:
        return next((o for o in self.offers.values() if o.token_hash == hashed), None)

    async def lock_offers_of(self, request_id: str, offer: Offer) -> None:
        return None  # one process: nothing to wait for, and the offer is the one in memory

    async def accepted_by_another(self, offer: Offer) -> bool:
        taken = (OfferStatus.ACCEPTED, OfferStatus.CONFIRMED)
        return any(
            o.request_id == offer.request_id and o.offer_id != offer.offer_id and o.status in taken
            for o in self.offers.values()
        )

    async def pending_past(self, *, now: datetime, limit: int) -> list[Offer]:
        due = [o for o in self.offers.values() if o.status == OfferStatus.PENDING and o.expires_at <= now]
        return sorted(due, key=lambda o: o.expires_at)[:limit]

    async def pending_unreminded_until(self, *, now: datetime, until: datetime) -> list[Offer]:
        return [
            o
            for o in self.offers.values()
            if o.status == OfferStatus.PENDING and o.reminded_at is None and now < o.expires_at <= until
        ]

    async def delete_treating_doctor_messages(self, request_id: str) -> None:
        mine = {o.offer_id for o in self.offers.values() if o.request_id == request_id}
        self.notifications = [
            n for n in self.notifications if not (n.purpose == "treating_doctor" and n.offer_id in mine)
        ]

    async def open_sealed(self, request_id: str, token: str | None, model: type[Sealed]) -> Sealed | None:
        key = self.keys.get(request_id)
        return None if token is None or key is None else model.model_validate_json(key.decrypt(token.encode()))


class MemoryNotifierStorage(MemoryStorage):
    def __init__(self) -> None:
        super().__init__()
        self.memory = MemoryNotifierStore()

    def store(self, tx: Any) -> MemoryNotifierStore:
        return self.memory
