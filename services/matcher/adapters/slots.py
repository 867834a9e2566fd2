"""Every change of a slot's state, whoever makes it: the cascade (hold, book, release), the
national platform (book, free), the directory and the professional's own space (put, withdraw,
template slots). One module, so that a newcomer sees every way a slot moves between free, held,
booked and withdrawn, and that taking a slot is always the same conditional statement."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.matcher.adapters import models


async def hold_slot(session: AsyncSession, slot_id: str, request_id: str, offer_id: str, now: datetime) -> bool:
    """Hold a free slot for one offer of the cascade."""
    return await take_slot(session, slot_id, models.SlotState.HELD, request_id, offer_id, now)


async def take_slot(
    session: AsyncSession, slot_id: str, state: models.SlotState, request_id: str, offer_id: str | None, now: datetime
) -> bool:
    """Take a free slot: held for an offer of the cascade, or booked at once by the national
    platform. Atomic: of concurrent takes on one slot, whichever side asks, one wins."""
    result = await session.execute(
        update(models.Slot)
        .where(col(models.Slot.slot_id) == slot_id, col(models.Slot.state) == models.SlotState.FREE)
        .values(state=state, request_id=request_id, offer_id=offer_id, updated_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def release_slot(session: AsyncSession, offer_id: str, now: datetime) -> None:
    """Free the slot held or booked for this offer (a withdrawn slot stays withdrawn)."""
    await session.execute(
        update(models.Slot)
        .where(
            col(models.Slot.offer_id) == offer_id,
            col(models.Slot.state).in_([models.SlotState.HELD, models.SlotState.BOOKED]),
        )
        .values(state=models.SlotState.FREE, request_id=None, offer_id=None, updated_at=now)
    )


async def free_booked_slot(session: AsyncSession, slot_id: str, request_id: str, now: datetime) -> None:
    """Free a slot booked without an offer (by the national platform) for this request."""
    await session.execute(
        update(models.Slot)
        .where(
            col(models.Slot.slot_id) == slot_id,
            col(models.Slot.request_id) == request_id,
            col(models.Slot.state) == models.SlotState.BOOKED,
        )
        .values(state=models.SlotState.FREE, request_id=None, offer_id=None, updated_at=now)
    )


async def book_slot(session: AsyncSession, offer_id: str, now: datetime) -> None:
    await session.execute(
        update(models.Slot)
        .where(col(models.Slot.offer_id) == offer_id, col(models.Slot.state) == models.SlotState.HELD)
        .values(state=models.SlotState.BOOKED, updated_at=now)
    )


async def withdraw_free_slots(
    session: AsyncSession, *, rpps: str, site_id: str | None, now: datetime
) -> list[models.Slot]:
    """A professional's free slots (at one site, or all) withdrawn; returns them, to announce."""
    where = [col(models.Slot.rpps) == rpps, col(models.Slot.state) == models.SlotState.FREE]
    if site_id is not None:
        where.append(col(models.Slot.site_id) == site_id)
    gone = await session.execute(
        update(models.Slot)
        .where(*where)
        .values(state=models.SlotState.WITHDRAWN, updated_at=now)
        .returning(models.Slot)
    )
    return list(gone.scalars().all())


def withdraw(slot: models.Slot, now: datetime) -> None:
    """One slot withdrawn (the caller holds its row lock and voids an offer it was held for)."""
    slot.state, slot.updated_at = models.SlotState.WITHDRAWN, now


async def slot_for_change(session: AsyncSession, slot_id: str) -> models.Slot | None:
    """The slot, its row locked for a change."""
    return await session.get(models.Slot, slot_id, with_for_update=True)


def put_free(session: AsyncSession, slot: models.Slot | None, values: dict[str, Any]) -> models.Slot:
    """A slot created, or changed and made free again (not one held or booked: the caller checks)."""
    values = {**values, "state": models.SlotState.FREE, "request_id": None, "offer_id": None}
    if slot is None:
        slot = models.Slot(**values)
    else:
        for key, value in values.items():
            setattr(slot, key, value)
    session.add(slot)
    return slot


async def overlapping(session: AsyncSession, *, slot_id: str, rpps: str, start: datetime, end: datetime) -> bool:
    """Whether another slot of the professional (not withdrawn) overlaps [start, end)."""
    found = await session.execute(
        select(models.Slot.slot_id)
        .where(
            col(models.Slot.rpps) == rpps,
            col(models.Slot.slot_id) != slot_id,
            col(models.Slot.state) != models.SlotState.WITHDRAWN,
            col(models.Slot.start) < end,
            col(models.Slot.end) > start,
        )
        .limit(1)
    )
    return found.first() is not None


async def slots_between(
    session: AsyncSession, *, rpps: str, start: datetime, end: datetime, limit: int
) -> list[models.Slot]:
    """A professional's slots starting in [start, end), in time order (any state)."""
    found = await session.execute(
        select(models.Slot)
        .where(col(models.Slot.rpps) == rpps, col(models.Slot.start) >= start, col(models.Slot.start) < end)
        .order_by(col(models.Slot.start))
        .limit(limit)
    )
    return list(found.scalars())


async def existing_ids(session: AsyncSession, slot_ids: list[str]) -> set[str]:
    """Which of these slots exist already, whatever their state."""
    found = await session.execute(select(models.Slot.slot_id).where(col(models.Slot.slot_id).in_(slot_ids)))
    return set(found.scalars())


def add_free(session: AsyncSession, values: dict[str, Any]) -> models.Slot:
    """A new free slot (from a weekly template)."""
    slot = models.Slot(**values, state=models.SlotState.FREE)
    session.add(slot)
    return slot


async def professional_of_slot(session: AsyncSession, slot_id: str) -> str | None:
    found = (await session.execute(select(models.Slot.rpps).where(col(models.Slot.slot_id) == slot_id))).first()
    return found[0] if found else None
