"""The CPTS territories: the communes each covers, its radius and its offer policy."""

from __future__ import annotations

from schemas.events import TerritoryChanged
from services.matcher.adapters import models
from services.matcher.directory.changes import DirectoryPart
from services.matcher.directory.errors import NotFound


class Territories(DirectoryPart):
    async def put(
        self,
        cpts_id: str,
        name: str,
        communes: list[str],
        radius_km: float,
        offer_timeout_minutes: float = 15.0,
        parallel_offers: int = 1,
        finess: str | None = None,
    ) -> tuple[models.TerritoryRow, bool]:
        """Create or replace a territory; returns it and whether it is new."""
        async with self.storage.transaction() as tx:
            store = self.storage.store(tx)
            territory = await store.get(models.TerritoryRow, cpts_id, lock=True)
            created = territory is None
            fields = {
                "name": name,
                "communes": communes,
                "radius_km": radius_km,
                "offer_timeout_minutes": offer_timeout_minutes,
                "parallel_offers": parallel_offers,
                "finess": finess,
                "updated_at": self.clock(),
            }
            territory = store.upsert(territory, models.TerritoryRow, {"cpts_id": cpts_id, **fields})
            now = territory.updated_at
            announced = TerritoryChanged(cpts_id=cpts_id, name=name, communes=communes, changed_at=now)
            tx.emit(self.topics.directory, announced, now)
        await self.on_change([f"territory:{cpts_id}"])
        return territory, created

    async def get(self, cpts_id: str) -> models.TerritoryRow:
        async with self.storage.transaction() as tx:
            store = self.storage.store(tx)
            found = await store.get(models.TerritoryRow, cpts_id)
        if found is None:
            raise NotFound(f"no territory {cpts_id}")
        return found

    async def none_yet(self) -> bool:
        """No territory at all (a new deployment: the demo data may be loaded)."""
        async with self.storage.transaction() as tx:
            store = self.storage.store(tx)
            return not await store.any_territory()
