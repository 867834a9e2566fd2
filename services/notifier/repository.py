"""The notifier's queries, named after what they find (callers hold the transaction)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, delete, select

from services.notifier.models import DeliveryAttempt, Notification, Offer, OfferStatus


async def offer_by_token_hash(session: AsyncSession, *, hashed: str) -> Offer | None:
    return (await session.execute(select(Offer).where(col(Offer.token_hash) == hashed))).scalars().first()


async def lock_offers_of(session: AsyncSession, *, request_id: str) -> None:
    """Every offer of a request locked, in one order (two answers at once never deadlock)."""
    await session.execute(
        select(Offer.offer_id)
        .where(col(Offer.request_id) == request_id)
        .order_by(col(Offer.offer_id))
        .with_for_update()
    )


async def accepted_by_another(session: AsyncSession, *, offer: Offer) -> bool:
    """Whether another offer of the same request was accepted (or confirmed) already."""
    found = await session.execute(
        select(Offer.offer_id).where(
            col(Offer.request_id) == offer.request_id,
            col(Offer.offer_id) != offer.offer_id,
            col(Offer.status).in_([OfferStatus.ACCEPTED, OfferStatus.CONFIRMED]),
        )
    )
    return found.first() is not None


async def pending_past(session: AsyncSession, *, now: datetime, limit: int) -> list[Offer]:
    """Pending offers whose time is up, oldest first, locked (skipping those another process holds)."""
    found = await session.execute(
        select(Offer)
        .where(col(Offer.status) == OfferStatus.PENDING, col(Offer.expires_at) <= now)
        .order_by(col(Offer.expires_at))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(found.scalars().all())


async def pending_unreminded_until(session: AsyncSession, *, now: datetime, until: datetime) -> list[Offer]:
    """Pending offers not reminded yet whose time ends between now and `until`, locked."""
    found = await session.execute(
        select(Offer)
        .where(
            col(Offer.status) == OfferStatus.PENDING,
            col(Offer.reminded_at).is_(None),
            col(Offer.expires_at) > now,
            col(Offer.expires_at) <= until,
        )
        .with_for_update(skip_locked=True)
    )
    return list(found.scalars().all())


async def delete_treating_doctor_messages(session: AsyncSession, *, request_id: str) -> None:
    """The messages to the patient's own doctor about this request, with their delivery attempts."""
    told = select(Notification.id).where(
        col(Notification.purpose) == "treating_doctor",
        col(Notification.offer_id).in_(select(Offer.offer_id).where(col(Offer.request_id) == request_id)),
    )
    await session.execute(delete(DeliveryAttempt).where(col(DeliveryAttempt.notification_id).in_(told)))
    await session.execute(delete(Notification).where(col(Notification.id).in_(told)))
