"""Reads and writes of the matcher's tables, translated to and from the pure domain."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.matcher import models as m
from services.matcher.domain import matching as d
from services.matcher.domain.opening_hours import PARIS, REFERENCE_HOURS, WeeklyHours

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
        select(m.Territory).where(m.Territory.communes.contains([commune_insee])).order_by(m.Territory.cpts_id)  # type: ignore[attr-defined]
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
    in_box = and_(m.Site.lat.between(lat0, lat1), m.Site.lon.between(lon0, lon1))  # type: ignore[attr-defined]
    reach = (
        or_(in_box, m.Slot.mode == "teleconsultation")
        if search.teleconsultation_ok
        else and_(in_box, m.Slot.mode == "in_person")
    )
    rows = await session.execute(
        select(m.Slot, m.Site, m.Professional)
        .join(m.Site, and_(m.Site.rpps == m.Slot.rpps, m.Site.site_id == m.Slot.site_id))  # type: ignore[arg-type]
        .join(m.Professional, m.Professional.rpps == m.Slot.rpps)  # type: ignore[arg-type]
        .where(
            m.Slot.state == m.SlotState.FREE,
            m.Slot.start >= from_,  # type: ignore[operator]
            m.Slot.start <= search.deadline,  # type: ignore[operator]
            m.Professional.active,
            m.Site.active,
            m.Professional.profession.in_(professions),  # type: ignore[attr-defined]
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
            .join(m.Site, m.Site.rpps == m.Professional.rpps)  # type: ignore[arg-type]
            .where(
                m.Professional.active,
                m.Site.active,
                m.Professional.accepts_overflow,
                m.Professional.overflow_daily_cap > 0,
                m.Professional.profession.in_(professions),  # type: ignore[attr-defined]
                m.Site.lat.between(lat0, lat1),  # type: ignore[attr-defined]
                m.Site.lon.between(lon0, lon1),  # type: ignore[attr-defined]
            )
        )
    ).all()
    if not rows:
        return []
    day = func.to_char(func.timezone(str(PARIS), m.MatchOffer.start), "YYYY-MM-DD")
    taken = await session.execute(
        select(m.MatchOffer.rpps, day, func.count())
        .where(
            m.MatchOffer.kind == "overflow",
            m.MatchOffer.status.in_([m.OfferState.ACCEPTED, m.OfferState.PENDING]),  # type: ignore[attr-defined]
            m.MatchOffer.rpps.in_({p.rpps for p, _ in rows}),  # type: ignore[attr-defined]
            m.MatchOffer.start >= from_ - timedelta(days=1),  # type: ignore[operator]
        )
        .group_by(m.MatchOffer.rpps, day)
    )
    load: dict[str, dict[str, int]] = {}
    for rpps, on, count in taken.all():
        load.setdefault(rpps, {})[on] = count
    return [
        d.OverflowOffer(to_domain_professional(p), to_domain_site(s), p.overflow_daily_cap, load.get(p.rpps, {}))
        for p, s in rows
    ]


async def already_asked(session: AsyncSession, request_id: str) -> frozenset[str]:
    rows = await session.execute(select(m.MatchOffer.rpps).where(m.MatchOffer.request_id == request_id))
    return frozenset(rows.scalars().all())


async def hold_slot(session: AsyncSession, slot_id: str, request_id: str, offer_id: str, now: datetime) -> bool:
    """Hold a free slot for one offer. Atomic: of concurrent holds on one slot, one wins."""
    result = await session.execute(
        update(m.Slot)
        .where(m.Slot.slot_id == slot_id, m.Slot.state == m.SlotState.FREE)  # type: ignore[arg-type]
        .values(state=m.SlotState.HELD, request_id=request_id, offer_id=offer_id, updated_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def settle_slot(session: AsyncSession, offer_id: str, state: m.SlotState, now: datetime) -> None:
    """Book or free the slot held (or booked) for this offer."""
    values: dict[str, object] = {"state": state, "updated_at": now}
    if state == m.SlotState.FREE:
        values |= {"request_id": None, "offer_id": None}
    await session.execute(update(m.Slot).where(m.Slot.offer_id == offer_id).values(**values))  # type: ignore[arg-type]
