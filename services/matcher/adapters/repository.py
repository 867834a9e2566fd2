"""Reads and writes of the matcher's tables, translated to and from the pure domain.

The in-memory index proposes; these queries decide. `claim` is where concurrent matchers meet:
it locks the professional's row, so that of two requests wanting the same professional one
wins and the other moves on, and a slot is held with a conditional update.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import func, or_, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlmodel import col, select

from services.common.clock import PARIS
from services.matcher.adapters import models, slots
from services.matcher.domain import matching
from services.matcher.domain.opening_hours import REFERENCE_HOURS, Closure, WeeklyHours

# the requests whose offer is still pending 5 minutes past its time limit (services/common/reconcile.py)
STUCK_OFFERS_SQL = (
    "SELECT request_id FROM match_offer WHERE status = 'pending' AND answer_by < now() - interval '5 minutes'"
)


async def offers_past_their_time(session: AsyncSession, *, grace: timedelta, now: datetime) -> list[tuple[str, str]]:
    """(request_id, offer_id) of the offers still pending `grace` after their time limit."""
    rows = await session.execute(
        select(models.MatchOffer.request_id, models.MatchOffer.offer_id).where(
            col(models.MatchOffer.status) == models.OfferState.PENDING,
            col(models.MatchOffer.answer_by) < now - grace,
        )
    )
    return [(request_id, offer_id) for request_id, offer_id in rows.all()]


def closures_of(raw: list[dict[str, str]] | None) -> tuple[Closure, ...]:
    return tuple(sorted((datetime.fromisoformat(c["start"]), datetime.fromisoformat(c["end"])) for c in raw or []))


def to_domain_site(site: Any) -> matching.Site:
    """From a `models.SiteRow` (or any row with the same attributes)."""
    hours = WeeklyHours.parse(site.opening_hours) if site.opening_hours else REFERENCE_HOURS
    return matching.Site(
        site.site_id,
        site.name,
        site.commune_insee,
        matching.Place(site.lat, site.lon),
        site.department,
        hours,
        closures_of(site.closures),
        bool(site.active),
    )


def to_domain_professional(p: Any) -> matching.Professional:
    return matching.Professional(
        p.rpps,
        p.name,
        p.profession,
        p.email,
        p.phone,
        p.cpts_id,
        bool(p.accepts_overflow),
        p.overflow_daily_cap or 0,
        bool(p.teleconsultation),
        bool(p.active),
        p.paused_until,
        p.no_overflow_on.isoformat() if p.no_overflow_on else None,
    )


async def asked_and_pending(session: AsyncSession, request_id: str) -> tuple[frozenset[str], int]:
    """Who was asked for this request, and how many of its offers still wait for an answer."""
    rows = (
        await session.execute(
            select(models.MatchOffer.rpps, models.MatchOffer.status).where(
                col(models.MatchOffer.request_id) == request_id
            )
        )
    ).all()
    return frozenset(rpps for rpps, _ in rows), sum(status == models.OfferState.PENDING for _, status in rows)


class Claim(StrEnum):
    CLAIMED = "claimed"
    INACTIVE = "inactive"
    BUSY = "busy"  # an offer of another request is pending with this professional
    SLOT_TAKEN = "slot_taken"
    FULL = "full"  # the daily overflow cap is reached


async def claim(session: AsyncSession, c: matching.Candidate, request_id: str, offer_id: str, now: datetime) -> Claim:
    """Reserve this candidate for one offer, or say why not. Safe under any concurrency."""
    pro = await session.get(models.ProfessionalRow, c.professional.rpps, with_for_update=True)
    if pro is None or not pro.active:
        return Claim.INACTIVE
    professional = to_domain_professional(pro)
    if matching.paused(professional, now):
        return Claim.INACTIVE
    pending = await session.execute(
        select(func.count())
        .select_from(models.MatchOffer)
        .where(col(models.MatchOffer.rpps) == pro.rpps, col(models.MatchOffer.status) == models.OfferState.PENDING)
    )
    if pending.scalar_one():
        return Claim.BUSY  # one offer at a time per professional
    if c.slot_id is not None:
        held = await slots.hold_slot(session, c.slot_id, request_id, offer_id, now)
        return Claim.CLAIMED if held else Claim.SLOT_TAKEN
    day_start = datetime.combine(c.start.astimezone(PARIS).date(), datetime.min.time(), tzinfo=PARIS)
    taken = await session.execute(
        select(func.count())
        .select_from(models.MatchOffer)
        .where(
            col(models.MatchOffer.rpps) == pro.rpps,
            col(models.MatchOffer.kind) == "overflow",
            col(models.MatchOffer.status).in_([models.OfferState.PENDING, models.OfferState.ACCEPTED]),
            col(models.MatchOffer.start) >= day_start,
            col(models.MatchOffer.start) < day_start + timedelta(days=1),  # Paris days have 23 to 25 hours
        )
    )
    room = matching.overflow_room(professional, matching.paris_day(c.start), taken.scalar_one())
    return Claim.CLAIMED if room else Claim.FULL


def add_offer(
    session: AsyncSession,
    request_id: str,
    c: matching.Candidate,
    offer_id: str,
    explanation: list[Any],
    answer_by: datetime,
    now: datetime,
) -> None:
    """A new pending offer of this candidate (claimed first: see `claim`)."""
    session.add(
        models.MatchOffer(
            offer_id=offer_id,
            request_id=request_id,
            rpps=c.professional.rpps,
            site_id=c.site.site_id,
            slot_id=c.slot_id,
            kind=c.kind,
            mode=c.mode,
            start=c.start,
            window_end=c.window_end,
            status=models.OfferState.PENDING,
            explanation=[e.model_dump(mode="json") for e in explanation],
            answer_by=answer_by,
            created_at=now,
        )
    )


async def claim_waiting_list(conn: AsyncConnection) -> bool | None:
    """One round trip: None when nothing waits (the usual case on a quiet day), else whether
    this process got the waiting list's advisory lock (evaluated only when something waits)."""
    locked = await conn.scalar(
        text(
            "SELECT CASE WHEN EXISTS (SELECT 1 FROM search WHERE status = 'waiting') "
            "THEN pg_try_advisory_lock(hashtext('matcher:waiting')) END"
        )
    )
    await conn.commit()
    return None if locked is None else bool(locked)


async def release_waiting_list(conn: AsyncConnection) -> None:
    await conn.execute(text("SELECT pg_advisory_unlock(hashtext('matcher:waiting'))"))
    await conn.commit()


async def pending_offers_of(session: AsyncSession, rpps: str) -> list[models.MatchOffer]:
    rows = await session.execute(
        select(models.MatchOffer).where(
            col(models.MatchOffer.rpps) == rpps, col(models.MatchOffer.status) == models.OfferState.PENDING
        )
    )
    return list(rows.scalars().all())


async def pending_offers_for(session: AsyncSession, request_id: str) -> list[models.MatchOffer]:
    """The offers of a request still waiting for an answer (several with parallel offers)."""
    rows = await session.execute(
        select(models.MatchOffer)
        .where(
            col(models.MatchOffer.request_id) == request_id, col(models.MatchOffer.status) == models.OfferState.PENDING
        )
        .order_by(col(models.MatchOffer.offer_id))
        .with_for_update()
    )
    return list(rows.scalars().all())


async def live_offers_for(session: AsyncSession, request_id: str) -> list[models.MatchOffer]:
    """Pending or accepted offers of a request: what a cancellation must undo."""
    rows = await session.execute(
        select(models.MatchOffer)
        .where(
            col(models.MatchOffer.request_id) == request_id,
            col(models.MatchOffer.status).in_([models.OfferState.PENDING, models.OfferState.ACCEPTED]),
        )
        .order_by(col(models.MatchOffer.offer_id))
        .with_for_update()
    )
    return list(rows.scalars().all())


async def asked_for(session: AsyncSession, request_ids: list[str]) -> dict[str, frozenset[str]]:
    """Who was asked for each of these requests (one query for the whole waiting list)."""
    rows = await session.execute(
        select(models.MatchOffer.request_id, models.MatchOffer.rpps).where(
            col(models.MatchOffer.request_id).in_(request_ids)
        )
    )
    found: dict[str, set[str]] = {}
    for request_id, rpps in rows.all():
        found.setdefault(request_id, set()).add(rpps)
    return {request_id: frozenset(asked) for request_id, asked in found.items()}


async def move_look_again(session: AsyncSession, request_id: str, at: datetime) -> None:
    """A waiting request's time to look again at the latest moved (it still waits)."""
    await session.execute(
        update(models.SearchRecord)
        .where(
            col(models.SearchRecord.request_id) == request_id,
            col(models.SearchRecord.status) == models.SearchStatus.WAITING,
        )
        .values(look_again_at=at)
    )


async def waiting_searches(
    session: AsyncSession, *, now: datetime, only_due_and: set[str] | None = None
) -> list[models.SearchRecord]:
    """The requests on the waiting list; with `only_due_and`, only those due to be looked at
    again by now and these (the ones that just started waiting)."""
    query = select(models.SearchRecord).where(col(models.SearchRecord.status) == models.SearchStatus.WAITING)
    if only_due_and is not None:
        query = query.where(
            or_(
                col(models.SearchRecord.look_again_at) <= now,
                col(models.SearchRecord.request_id).in_(only_due_and),
            )
        )
    return list((await session.execute(query)).scalars().all())
