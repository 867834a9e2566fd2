"""Slots a professional publishes by hand (or through the API): put, read, withdraw. Every
change of state is made in `adapters/slots.py`."""

from __future__ import annotations

from datetime import datetime

from schemas.events import OfferInvalidated
from services.matcher.adapters import models, slots
from services.matcher.directory.changes import DirectoryPart, announce_slot
from services.matcher.directory.errors import NotFound, SlotBusy, SlotOverlap, UnknownReference


class Slots(DirectoryPart):
    async def put(
        self, slot_id: str, rpps: str, site_id: str, start: datetime, end: datetime, mode: str, alone: bool = False
    ) -> tuple[models.Slot, bool]:
        """Create or change a free slot; `alone`: refuse it when another slot of the professional
        overlaps it (checked under the professional's row lock: two at once cannot both pass)."""
        now = self.clock()
        async with self.storage.transaction() as tx:
            store = self.storage.store(tx)
            pro = await store.get(models.ProfessionalRow, rpps, lock=alone)
            if pro is None or not pro.active:
                raise UnknownReference("rpps", f"no active professional {rpps} in the directory")
            site = await store.get(models.SiteRow, (rpps, site_id))
            if site is None or not site.active:
                raise UnknownReference("site_id", f"professional {rpps} has no site {site_id}")
            if alone and await store.overlapping(slot_id=slot_id, rpps=rpps, start=start, end=end):
                raise SlotOverlap(f"professional {rpps} already has a slot between {start} and {end}")
            slot = await store.get(models.Slot, slot_id, lock=True)
            created = slot is None
            if slot is not None and slot.state in (models.SlotState.HELD, models.SlotState.BOOKED):
                raise SlotBusy(f"slot {slot_id} is {slot.state}: it cannot be changed now")
            values = {"slot_id": slot_id, "rpps": rpps, "site_id": site_id, "start": start, "end": end, "mode": mode}
            slot = store.put_free(slot, {**values, "updated_at": now})
            announce_slot(tx, self.topics, slot, now)
        await self.on_change([f"slot:{slot_id}"])
        return slot, created

    async def between(self, rpps: str, start: datetime, end: datetime, limit: int) -> list[models.Slot]:
        """A professional's slots starting in [start, end), in time order (any state)."""
        async with self.storage.transaction() as tx:
            store = self.storage.store(tx)
            return await store.slots_between(rpps=rpps, start=start, end=end, limit=limit)

    async def professional_of(self, slot_id: str) -> str | None:
        async with self.storage.transaction() as tx:
            store = self.storage.store(tx)
            return await store.professional_of_slot(slot_id)

    async def get(self, slot_id: str) -> models.Slot:
        async with self.storage.transaction() as tx:
            store = self.storage.store(tx)
            slot = await store.get(models.Slot, slot_id)
        if slot is None:
            raise NotFound(f"no slot {slot_id}")
        return slot

    async def withdraw(self, slot_id: str) -> None:
        """Withdraw a slot; one held for a pending offer is withdrawn too, and the offer voided."""
        now = self.clock()
        async with self.storage.transaction() as tx:
            store = self.storage.store(tx)
            slot = await store.get(models.Slot, slot_id, lock=True)
            if slot is None:
                raise NotFound(f"no slot {slot_id}")
            if slot.state == models.SlotState.BOOKED:
                raise SlotBusy(f"slot {slot_id} is booked: cancel the appointment through the SAS instead")
            if slot.state == models.SlotState.HELD and slot.request_id and slot.offer_id:
                tx.emit(
                    self.topics.matching,
                    OfferInvalidated(
                        request_id=slot.request_id, offer_id=slot.offer_id, reason="the professional withdrew the slot"
                    ),
                    now,
                )
            slots.withdraw(slot, now)
            announce_slot(tx, self.topics, slot, now)
        await self.on_change([f"slot:{slot_id}"])
