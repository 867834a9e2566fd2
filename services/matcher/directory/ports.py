"""What the directory needs from storage, as interfaces (see allocation/ports.py for why): the
PostgreSQL implementation is adapters/directory_store.py, the memory one tests/fakes/matcher.py."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlmodel import SQLModel

from services.common.audit import Actor
from services.common.db import Transaction
from services.matcher.adapters import models

Row = TypeVar("Row", bound=SQLModel)


class DirectoryStore(Protocol):
    """Territories, professionals, sites, slots and templates within one transaction."""

    async def get(self, model: type[Row], key: Any, *, lock: bool = False) -> Row | None: ...

    def upsert(self, row: Row | None, model: type[Row], values: dict[str, Any]) -> Row:
        """`row` updated with `values`, or a new row of `model` when there is none."""
        ...

    async def flush(self) -> None:
        """What was written so far visible to the queries that follow in the transaction."""
        ...

    async def any_territory(self) -> bool: ...

    async def sites_of(self, rpps: str) -> dict[str, models.SiteRow]: ...

    async def open_sites_of(self, rpps: list[str]) -> dict[str, list[models.SiteRow]]: ...

    async def professionals_page(
        self, *, cpts_id: str, profession: str | None, commune_insee: str | None, limit: int, offset: int
    ) -> tuple[int, list[models.ProfessionalRow]]: ...

    async def cpts_of(self, rpps: str) -> tuple[bool, str | None]: ...

    async def channels_of(self, rpps: str) -> list[dict[str, Any]]: ...

    async def active_with_email(self, email: str) -> list[models.ProfessionalRow]: ...

    async def keep_template(self, *, rpps: str, site_id: str, rules: list[Any], weeks: int, now: datetime) -> None: ...

    async def templates(self) -> list[models.AvailabilityTemplate]: ...

    async def overlapping(self, *, slot_id: str, rpps: str, start: datetime, end: datetime) -> bool: ...

    async def slots_between(self, *, rpps: str, start: datetime, end: datetime, limit: int) -> list[models.Slot]: ...

    async def existing_slot_ids(self, slot_ids: list[str]) -> set[str]: ...

    def put_free(self, slot: models.Slot | None, values: dict[str, Any]) -> models.Slot: ...

    def add_free(self, values: dict[str, Any]) -> models.Slot: ...

    async def professional_of_slot(self, slot_id: str) -> str | None: ...

    async def withdraw_free_slots(self, *, rpps: str, site_id: str | None, now: datetime) -> list[models.Slot]: ...

    async def pending_offers_of(self, rpps: str) -> list[models.MatchOffer]: ...

    async def record(self, by: Actor, action: str, now: datetime, detail: str) -> None:
        """An entry of the audit trail."""
        ...


class DirectoryStorage(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[Transaction]: ...

    def store(self, tx: Transaction) -> DirectoryStore: ...

    def exclusive(self, name: str) -> AbstractAsyncContextManager[None]:
        """Held by one process at a time (the demo data is loaded once)."""
        ...
