"""What a professional's own page reads: their open sites, their offers and the national
platform's bookings from an hour ago, their slots up to the page's horizon."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.matcher.adapters import models

Space = tuple[list[models.SiteRow], list[models.MatchOffer], list[models.PlatformAppointment], list[models.Slot]]


async def space_of(session: AsyncSession, *, rpps: str, since: datetime, horizon: datetime) -> Space:
    sites = await session.execute(
        select(models.SiteRow)
        .where(col(models.SiteRow.rpps) == rpps, col(models.SiteRow.active))
        .order_by(col(models.SiteRow.name))
    )
    offers = await session.execute(
        select(models.MatchOffer)
        .where(
            col(models.MatchOffer.rpps) == rpps,
            col(models.MatchOffer.status).in_([models.OfferState.PENDING, models.OfferState.ACCEPTED]),
            col(models.MatchOffer.start) >= since,
        )
        .order_by(col(models.MatchOffer.start))
        .limit(100)
    )
    booked = await session.execute(
        select(models.PlatformAppointment)
        .where(
            col(models.PlatformAppointment.rpps) == rpps,
            col(models.PlatformAppointment.status) == "booked",
            col(models.PlatformAppointment.start) >= since,
        )
        .order_by(col(models.PlatformAppointment.start))
        .limit(100)
    )
    slots = await session.execute(
        select(models.Slot)
        .where(col(models.Slot.rpps) == rpps, col(models.Slot.start) >= since, col(models.Slot.start) < horizon)
        .where(col(models.Slot.state) != models.SlotState.WITHDRAWN)
        .order_by(col(models.Slot.start))
        .limit(300)
    )
    return list(sites.scalars()), list(offers.scalars()), list(booked.scalars()), list(slots.scalars())
