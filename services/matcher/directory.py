"""The directory the matcher owns: territories, professionals with their sites, slots."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from services.common.db import Database
from services.matcher import models as m


class UnknownReference(Exception):
    """A slot names a professional or a site the directory does not have."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class SlotBusy(Exception):
    """The slot is held for a pending offer or booked: it cannot be changed or withdrawn now."""


class NotFound(Exception):
    pass


@dataclass(frozen=True)
class SiteInput:
    site_id: str
    name: str
    commune_insee: str | None
    department: str | None
    lat: float
    lon: float
    opening_hours: dict[str, Any] | None


class Directory:
    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.clock = clock

    async def put_territory(
        self, cpts_id: str, name: str, communes: list[str], radius_km: float
    ) -> tuple[m.Territory, bool]:
        async with self.db.transaction() as tx:
            territory = await tx.session.get(m.Territory, cpts_id, with_for_update=True)
            created = territory is None
            territory = territory or m.Territory(cpts_id=cpts_id)
            territory.name, territory.communes, territory.radius_km = name, communes, radius_km
            territory.updated_at = self.clock()
            tx.session.add(territory)
        return territory, created

    async def get_territory(self, cpts_id: str) -> m.Territory:
        async with self.db.transaction() as tx:
            found = await tx.session.get(m.Territory, cpts_id)
        if found is None:
            raise NotFound(f"no territory {cpts_id}")
        return found

    async def put_professional(
        self, rpps: str, fields: dict[str, Any], sites: list[SiteInput]
    ) -> tuple[m.Professional, list[m.Site], bool]:
        """Create or replace a professional and their sites; a site left out is deactivated
        (its free slots withdrawn), since slots and past offers still refer to it."""
        now = self.clock()
        async with self.db.transaction() as tx:
            pro = await tx.session.get(m.Professional, rpps, with_for_update=True)
            created = pro is None
            pro = pro or m.Professional(rpps=rpps)
            for key, value in fields.items():
                setattr(pro, key, value)
            pro.active, pro.updated_at = True, now
            tx.session.add(pro)
            await tx.session.flush()
            existing = {
                s.site_id: s for s in (await tx.session.execute(select(m.Site).where(m.Site.rpps == rpps))).scalars()
            }
            kept: list[m.Site] = []
            for given in sites:
                site = existing.pop(given.site_id, None) or m.Site(rpps=rpps, site_id=given.site_id)
                site.name, site.commune_insee, site.department = given.name, given.commune_insee, given.department
                site.lat, site.lon, site.opening_hours, site.active = given.lat, given.lon, given.opening_hours, True
                tx.session.add(site)
                kept.append(site)
            for gone in existing.values():
                gone.active = False
                await tx.session.execute(
                    update(m.Slot)
                    .where(m.Slot.rpps == rpps, m.Slot.site_id == gone.site_id, m.Slot.state == m.SlotState.FREE)  # type: ignore[arg-type]
                    .values(state=m.SlotState.WITHDRAWN, updated_at=now)
                )
        return pro, kept, created

    async def get_professional(self, rpps: str) -> tuple[m.Professional, list[m.Site]]:
        async with self.db.transaction() as tx:
            pro = await tx.session.get(m.Professional, rpps)
            if pro is None:
                raise NotFound(f"no professional {rpps}")
            sites = (
                (
                    await tx.session.execute(
                        select(m.Site).where(m.Site.rpps == rpps, m.Site.active).order_by(m.Site.site_id)  # type: ignore[arg-type]
                    )
                )
                .scalars()
                .all()
            )
        return pro, list(sites)

    async def put_slot(
        self, slot_id: str, rpps: str, site_id: str, start: datetime, end: datetime, mode: str
    ) -> tuple[m.Slot, bool]:
        async with self.db.transaction() as tx:
            pro = await tx.session.get(m.Professional, rpps)
            if pro is None or not pro.active:
                raise UnknownReference("rpps", f"no active professional {rpps} in the directory")
            site = await tx.session.get(m.Site, (rpps, site_id))
            if site is None or not site.active:
                raise UnknownReference("site_id", f"professional {rpps} has no site {site_id}")
            slot = await tx.session.get(m.Slot, slot_id, with_for_update=True)
            created = slot is None
            if slot is not None and slot.state in (m.SlotState.HELD, m.SlotState.BOOKED):
                raise SlotBusy(f"slot {slot_id} is {slot.state}: it cannot be changed now")
            slot = slot or m.Slot(slot_id=slot_id)
            slot.rpps, slot.site_id, slot.start, slot.end, slot.mode = rpps, site_id, start, end, mode
            slot.state, slot.updated_at = m.SlotState.FREE, self.clock()
            tx.session.add(slot)
        return slot, created

    async def get_slot(self, slot_id: str) -> m.Slot:
        async with self.db.transaction() as tx:
            slot = await tx.session.get(m.Slot, slot_id)
        if slot is None:
            raise NotFound(f"no slot {slot_id}")
        return slot

    async def withdraw_slot(self, slot_id: str) -> None:
        async with self.db.transaction() as tx:
            slot = await tx.session.get(m.Slot, slot_id, with_for_update=True)
            if slot is None:
                raise NotFound(f"no slot {slot_id}")
            if slot.state in (m.SlotState.HELD, m.SlotState.BOOKED):
                raise SlotBusy(f"slot {slot_id} is {slot.state}: it cannot be withdrawn now")
            slot.state, slot.updated_at = m.SlotState.WITHDRAWN, self.clock()

    async def is_empty(self) -> bool:
        async with self.db.transaction() as tx:
            return (await tx.session.execute(select(m.Territory.cpts_id).limit(1))).first() is None
