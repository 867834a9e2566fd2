"""Reads and writes of the matcher's tables, translated to and from the pure domain."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.common.clock import PARIS
from services.matcher import models as m
from services.matcher.domain import matching as d
from services.matcher.domain.opening_hours import REFERENCE_HOURS, WeeklyHours

KM_PER_DEGREE = 111.2


def to_domain_site(site: m.Site) -> d.Site:
    hours = WeeklyHours.parse(site.opening_hours) if site.opening_hours else REFERENCE_HOURS
    return d.Site(site.site_id, site.name, site.commune_insee, d.Place(site.lat, site.lon), site.department, hours)


def to_domain_professional(p: m.Professional) -> d.Professional:
    return d.Professional(p.rpps, p.name, p.profession, p.email, p.phone)


async def territory_of(session: AsyncSession, commune_insee: str | None) -> m.Territory | None:
    if not commune_insee:
        return None
    result = await session.execute(
        select(m.Territory)
        .where(col(m.Territory.communes).contains([commune_insee]))
        .order_by(col(m.Territory.cpts_id))
    )
    return result.scalars().first()


def _box(search: d.Search) -> tuple[float, float, float, float]:
    dlat = search.radius_km / KM_PER_DEGREE
    dlon = search.radius_km / (KM_PER_DEGREE * max(0.01, math.cos(math.radians(search.patient.lat))))
    return search.patient.lat - dlat, search.patient.lat + dlat, search.patient.lon - dlon, search.patient.lon + dlon


async def free_slots(
    session: AsyncSession, search: d.Search, professions: tuple[str, ...], from_: datetime
) -> list[d.FreeSlot]:
    """Free slots of active professionals of these professions, in time, roughly in reach."""
    lat0, lat1, lon0, lon1 = _box(search)
    in_box = and_(col(m.Site.lat).between(lat0, lat1), col(m.Site.lon).between(lon0, lon1))
    reach = (
        or_(in_box, col(m.Slot.mode) == "teleconsultation")
        if search.teleconsultation_ok
        else and_(in_box, col(m.Slot.mode) == "in_person")
    )
    rows = await session.execute(
        select(m.Slot, m.Site, m.Professional)
        .join(m.Site, and_(col(m.Site.rpps) == col(m.Slot.rpps), col(m.Site.site_id) == col(m.Slot.site_id)))
        .join(m.Professional, col(m.Professional.rpps) == col(m.Slot.rpps))
        .where(
            col(m.Slot.state) == m.SlotState.FREE,
            col(m.Slot.start) >= from_,
            col(m.Slot.start) <= search.deadline,
            col(m.Professional.active),
            col(m.Site.active),
            col(m.Professional.profession).in_(professions),
            reach,
        )
    )
    return [
        d.FreeSlot(slot.slot_id, to_domain_professional(pro), to_domain_site(site), slot.start, slot.end, slot.mode)
        for slot, site, pro in rows.all()
    ]


async def overflow_offers(
    session: AsyncSession, search: d.Search, professions: tuple[str, ...], from_: datetime
) -> list[d.OverflowOffer]:
    """Professionals who accept extra patients, at each of their sites in reach, with their load."""
    lat0, lat1, lon0, lon1 = _box(search)
    rows = (
        await session.execute(
            select(m.Professional, m.Site)
            .join(m.Site, col(m.Site.rpps) == col(m.Professional.rpps))
            .where(
                col(m.Professional.active),
                col(m.Site.active),
                col(m.Professional.accepts_overflow),
                col(m.Professional.overflow_daily_cap) > 0,
                col(m.Professional.profession).in_(professions),
                col(m.Site.lat).between(lat0, lat1),
                col(m.Site.lon).between(lon0, lon1),
            )
        )
    ).all()
    if not rows:
        return []
    day = func.to_char(func.timezone(str(PARIS), col(m.MatchOffer.start)), "YYYY-MM-DD")
    taken = await session.execute(
        select(col(m.MatchOffer.rpps), day, func.count())
        .where(
            col(m.MatchOffer.kind) == "overflow",
            col(m.MatchOffer.status).in_([m.OfferState.ACCEPTED, m.OfferState.PENDING]),
            col(m.MatchOffer.rpps).in_({p.rpps for p, _ in rows}),
            col(m.MatchOffer.start) >= from_ - timedelta(days=1),
        )
        .group_by(col(m.MatchOffer.rpps), day)
    )
    load: dict[str, dict[str, int]] = {}
    for rpps, on, count in taken.all():
        load.setdefault(rpps, {})[on] = count
    return [
        d.OverflowOffer(to_domain_professional(p), to_domain_site(s), p.overflow_daily_cap, load.get(p.rpps, {}))
        for p, s in rows
    ]


async def already_asked(session: AsyncSession, request_id: str) -> frozenset[str]:
    rows = await session.execute(select(m.MatchOffer.rpps).where(col(m.MatchOffer.request_id) == request_id))
    return frozenset(rows.scalars().all())


async def hold_slot(session: AsyncSession, slot_id: str, request_id: str, offer_id: str, now: datetime) -> bool:
    """Hold a free slot for one offer. Atomic: of concurrent holds on one slot, one wins."""
    result = await session.execute(
        update(m.Slot)
        .where(col(m.Slot.slot_id) == slot_id, col(m.Slot.state) == m.SlotState.FREE)
        .values(state=m.SlotState.HELD, request_id=request_id, offer_id=offer_id, updated_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def settle_slot(session: AsyncSession, offer_id: str, state: m.SlotState, now: datetime) -> None:
    """Book or free the slot held (or booked) for this offer."""
    values: dict[str, object] = {"state": state, "updated_at": now}
    if state == m.SlotState.FREE:
        values |= {"request_id": None, "offer_id": None}
    await session.execute(update(m.Slot).where(col(m.Slot.offer_id) == offer_id).values(**values))
