"""The directory's storage on PostgreSQL: each operation a repository function (or the session
itself) on the transaction (see directory/ports.py)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

from services.common import audit
from services.common.audit import Actor
from services.common.db import Database, Transaction
from services.matcher.adapters import models, repository, slots
from services.matcher.adapters import professionals as rows
from services.matcher.directory.ports import Row


class SqlDirectoryStore:
    def __init__(self, tx: Transaction) -> None:
        self.session = tx.session

    async def get(self, model: type[Row], key: Any, *, lock: bool = False) -> Row | None:
        return await self.session.get(model, key, with_for_update=lock)

    def upsert(self, row: Row | None, model: type[Row], values: dict[str, Any]) -> Row:
        return rows.upsert(self.session, row, model, values)

    async def flush(self) -> None:
        await self.session.flush()

    async def any_territory(self) -> bool:
        return await rows.any_territory(self.session)

    async def sites_of(self, rpps: str) -> dict[str, models.SiteRow]:
        return await rows.sites_of(self.session, rpps=rpps)

    async def open_sites_of(self, rpps: list[str]) -> dict[str, list[models.SiteRow]]:
        return await rows.open_sites_of(self.session, rpps=rpps)

    async def professionals_page(
        self, *, cpts_id: str, profession: str | None, commune_insee: str | None, limit: int, offset: int
    ) -> tuple[int, list[models.ProfessionalRow]]:
        return await rows.professionals_page(
            self.session,
            cpts_id=cpts_id,
            profession=profession,
            commune_insee=commune_insee,
            limit=limit,
            offset=offset,
        )

    async def cpts_of(self, rpps: str) -> tuple[bool, str | None]:
        return await rows.cpts_of(self.session, rpps=rpps)

    async def channels_of(self, rpps: str) -> list[dict[str, Any]]:
        return await rows.channels_of(self.session, rpps=rpps)

    async def active_with_email(self, email: str) -> list[models.ProfessionalRow]:
        return await rows.active_with_email(self.session, email=email)

    async def keep_template(self, *, rpps: str, site_id: str, rules: list[Any], weeks: int, now: datetime) -> None:
        await rows.keep_template(self.session, rpps=rpps, site_id=site_id, rules=rules, weeks=weeks, now=now)

    async def templates(self) -> list[models.AvailabilityTemplate]:
        return await rows.templates(self.session)

    async def overlapping(self, *, slot_id: str, rpps: str, start: datetime, end: datetime) -> bool:
        return await slots.overlapping(self.session, slot_id=slot_id, rpps=rpps, start=start, end=end)

    async def slots_between(self, *, rpps: str, start: datetime, end: datetime, limit: int) -> list[models.Slot]:
        return await slots.slots_between(self.session, rpps=rpps, start=start, end=end, limit=limit)

    async def existing_slot_ids(self, slot_ids: list[str]) -> set[str]:
        return await slots.existing_ids(self.session, slot_ids)

    def put_free(self, slot: models.Slot | None, values: dict[str, Any]) -> models.Slot:
        return slots.put_free(self.session, slot, values)

    def add_free(self, values: dict[str, Any]) -> models.Slot:
        return slots.add_free(self.session, values)

    async def professional_of_slot(self, slot_id: str) -> str | None:
        return await slots.professional_of_slot(self.session, slot_id)

    async def withdraw_free_slots(self, *, rpps: str, site_id: str | None, now: datetime) -> list[models.Slot]:
        return await slots.withdraw_free_slots(self.session, rpps=rpps, site_id=site_id, now=now)

    async def pending_offers_of(self, rpps: str) -> list[models.MatchOffer]:
        return await repository.pending_offers_of(self.session, rpps)

    async def record(self, by: Actor, action: str, now: datetime, detail: str) -> None:
        await audit.record(self.session, by, action, None, now, detail=detail)


class SqlDirectoryStorage:
    def __init__(self, db: Database) -> None:
        self.db = db

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        return self.db.transaction()

    def store(self, tx: Transaction) -> SqlDirectoryStore:
        return SqlDirectoryStore(tx)

    def exclusive(self, name: str) -> AbstractAsyncContextManager[None]:
        return self.db.exclusive(name)
