"""The national platform's reads and writes: the slots it may see, its appointments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.matcher.adapters import models

Published = tuple[models.Slot, models.ProfessionalRow, models.SiteRow, models.TerritoryRow]


async def published_free_slots(
    session: AsyncSession, *, rpps: list[str], start_from: datetime, start_to: datetime, now: datetime, limit: int
) -> list[Published]:
    """The free, future slots of these professionals starting in the window, with their site and
    CPTS (a professional outside every CPTS, inactive or on pause at that time publishes nothing)."""
    query = (
        select(models.Slot, models.ProfessionalRow, models.SiteRow, models.TerritoryRow)
        .join(models.ProfessionalRow, col(models.ProfessionalRow.rpps) == col(models.Slot.rpps))
        .join(
            models.SiteRow,
            and_(
                col(models.SiteRow.rpps) == col(models.Slot.rpps),
                col(models.SiteRow.site_id) == col(models.Slot.site_id),
            ),
        )
        .join(models.TerritoryRow, col(models.TerritoryRow.cpts_id) == col(models.ProfessionalRow.cpts_id))
        .where(
            col(models.Slot.state) == models.SlotState.FREE,
            col(models.Slot.rpps).in_(rpps),
            col(models.Slot.start) >= start_from,
            col(models.Slot.start) <= start_to,
            col(models.Slot.start) > now,
            col(models.ProfessionalRow.active),
            col(models.SiteRow.active),
            # a professional on pause takes no patient before its end (their own page)
            or_(
                col(models.ProfessionalRow.paused_until).is_(None),
                col(models.ProfessionalRow.paused_until) <= col(models.Slot.start),
            ),
        )
        .order_by(col(models.Slot.start), col(models.Slot.slot_id))
        .limit(limit)
    )
    return [tuple(row) for row in (await session.execute(query)).all()]  # type: ignore[misc]


async def one_identifier_at_a_time(session: AsyncSession, system: str, value: str) -> None:
    """Calls with one platform identifier run one after the other (until the commit)."""
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"platform:{system}|{value}"})


async def appointment_by_identifier(
    session: AsyncSession, *, system: str, value: str, lock: bool = False
) -> models.PlatformAppointment | None:
    query = select(models.PlatformAppointment).where(
        col(models.PlatformAppointment.identifier_system) == system,
        col(models.PlatformAppointment.identifier_value) == value,
    )
    found = await session.execute(query.with_for_update() if lock else query)
    return found.scalars().first()


async def slots_at(session: AsyncSession, *, rpps: str, start: datetime, end: datetime) -> list[models.Slot]:
    """The professional's slots (not withdrawn) at exactly these times, in id order."""
    rows = await session.execute(
        select(models.Slot)
        .where(
            col(models.Slot.rpps) == rpps,
            col(models.Slot.start) == start,
            col(models.Slot.end) == end,
            col(models.Slot.state) != models.SlotState.WITHDRAWN,
        )
        .order_by(col(models.Slot.slot_id))
    )
    return list(rows.scalars().all())


def add_appointment(session: AsyncSession, values: dict[str, Any]) -> models.PlatformAppointment:
    row = models.PlatformAppointment(**values)
    session.add(row)
    return row
