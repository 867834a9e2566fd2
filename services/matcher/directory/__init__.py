"""The directory the matcher owns (the supply): territories, professionals with their sites,
slots, weekly availability, the national directory's import and the demo data.

Each part is a small class over the same dependencies (`changes.DirectoryPart`); `Directory`
holds them together, as the routes, the pages and the composition root use them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from schemas.topics import Topics
from services.common.db import Database
from services.matcher.directory.availability import Availability
from services.matcher.directory.listed import ListedProfessionals
from services.matcher.directory.ports import DirectoryStorage
from services.matcher.directory.professionals import Professionals
from services.matcher.directory.slots import Slots
from services.matcher.directory.territories import Territories


@dataclass(frozen=True)
class Directory:
    territories: Territories
    professionals: Professionals
    slots: Slots
    availability: Availability
    listed: ListedProfessionals

    @classmethod
    def over(
        cls,
        storage: DirectoryStorage,
        clock: Callable[[], datetime],
        topics: Topics,
        on_change: Callable[[list[str]], Awaitable[None]],
    ) -> Directory:
        """`on_change` refreshes this process's candidate index with what a write changed."""
        return cls(
            Territories(storage, clock, topics, on_change),
            Professionals(storage, clock, topics, on_change),
            Slots(storage, clock, topics, on_change),
            Availability(storage, clock, topics, on_change),
            ListedProfessionals(storage, clock, topics, on_change),
        )

    @classmethod
    def build(
        cls,
        db: Database,
        clock: Callable[[], datetime],
        topics: Topics,
        on_change: Callable[[list[str]], Awaitable[None]],
    ) -> Directory:
        """The directory on PostgreSQL (the service's, or a command's such as sas-import-rpps)."""
        # here, not at the top: the adapter imports this package's ports (a cycle at import time)
        from services.matcher.adapters.directory_store import SqlDirectoryStorage

        return cls.over(SqlDirectoryStorage(db), clock, topics, on_change)
