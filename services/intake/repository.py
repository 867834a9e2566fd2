"""The intake's queries, named after what they find (keyword arguments; callers hold the
transaction). Locks are said where they are taken."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, insert, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, delete, select

from services.intake.models import CallbackDelivery, OrientationRequest, PatientContact, RequestHistory


async def one_posting_at_a_time(session: AsyncSession, *, request_id: str) -> None:
    """One id posted at once (by one organisation or two): one at a time, until the commit."""
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"request:{request_id}"})


async def owned(
    session: AsyncSession, *, organisation: str | None, request_id: str, lock: bool = False
) -> OrientationRequest | None:
    """The request `request_id` of this organisation (the regulator's own id); for an admin
    (`organisation` None), the request the services know by this id. `lock`: its row locked."""
    if organisation is None:
        return await session.get(OrientationRequest, request_id, with_for_update=lock)
    query = select(OrientationRequest).where(
        col(OrientationRequest.organisation) == organisation, col(OrientationRequest.external_id) == request_id
    )
    return (await session.execute(query.with_for_update() if lock else query)).scalar_one_or_none()


async def recent_of(session: AsyncSession, *, organisation: str, limit: int) -> list[OrientationRequest]:
    found = await session.execute(
        select(OrientationRequest)
        .where(col(OrientationRequest.organisation) == organisation)
        .order_by(col(OrientationRequest.received_at).desc())
        .limit(limit)
    )
    return list(found.scalars())


async def history_of(session: AsyncSession, *, request_id: str) -> list[RequestHistory]:
    found = await session.execute(
        select(RequestHistory).where(col(RequestHistory.request_id) == request_id).order_by(col(RequestHistory.id))
    )
    return list(found.scalars().all())


async def add_callback(
    session: AsyncSession,
    *,
    event_id: str,
    request_id: str,
    url: str,
    payload: dict[str, Any],
    at: datetime,
    lease_until: datetime,
) -> tuple[int, bool]:
    """Queue a callback (one statement): leased until `lease_until` when nothing of its request
    is pending before it — then it is first, for its writer to hand over after the commit — else
    due at `at`, behind the others. Returns its id and whether it is first. Callers hold the
    request's row lock, so that no other callback of it is written meanwhile."""
    pending_before = (
        select(CallbackDelivery.id)
        .where(col(CallbackDelivery.request_id) == request_id, col(CallbackDelivery.status) == "pending")
        .exists()
    )
    due = case((pending_before, at), else_=lease_until)
    row = (
        await session.execute(
            insert(CallbackDelivery)
            .values(
                event_id=event_id,
                request_id=request_id,
                url=url,
                payload=payload,
                status="pending",
                attempts=0,
                next_attempt_at=due,
                created_at=at,
            )
            .returning(col(CallbackDelivery.id), col(CallbackDelivery.next_attempt_at) == lease_until)
        )
    ).one()
    delivery_id, first = row
    assert delivery_id is not None
    return delivery_id, bool(first)


async def received_before(session: AsyncSession, *, before: datetime, limit: int) -> list[OrientationRequest]:
    """Requests still `received` (never searched) that came in before `before`, oldest first,
    locked (skipping those another process holds)."""
    found = await session.execute(
        select(OrientationRequest)
        .where(col(OrientationRequest.status) == "received", col(OrientationRequest.received_at) < before)
        .order_by(col(OrientationRequest.received_at))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(found.scalars())


async def patient_data_received_before(
    session: AsyncSession, *, before: datetime, limit: int
) -> list[OrientationRequest]:
    """Requests received before `before` whose patient data is still kept, oldest first, locked
    (skipping those another process holds)."""
    found = await session.execute(
        select(OrientationRequest)
        .where(col(OrientationRequest.patient_erased_at).is_(None), col(OrientationRequest.received_at) <= before)
        .order_by(col(OrientationRequest.received_at))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(found.scalars())


async def contacts_maybe_done(
    session: AsyncSession, *, appointment_before: datetime, ended_before: datetime, limit: int
) -> list[OrientationRequest]:
    """Requests whose contact is still kept and may no longer be needed: confirmed with an
    appointment before `appointment_before` (by its start), or ended without one before
    `ended_before`. Locked, skipping those another process holds."""
    start = OrientationRequest.appointment_start()
    keeping = col(OrientationRequest.contact_erased_at).is_(None)
    confirmed = select(OrientationRequest).where(
        keeping, col(OrientationRequest.status) == "confirmed", start <= appointment_before
    )
    ended = select(OrientationRequest).where(
        keeping,
        col(OrientationRequest.status).in_(["unresolved", "cancelled"]),
        col(OrientationRequest.updated_at) <= ended_before,
    )
    return [
        *(await session.execute(confirmed.order_by(start).limit(limit).with_for_update(skip_locked=True))).scalars(),
        *(await session.execute(ended.limit(limit).with_for_update(skip_locked=True))).scalars(),
    ]


async def delete_contact(session: AsyncSession, *, request_id: str) -> None:
    await session.execute(delete(PatientContact).where(col(PatientContact.request_id) == request_id))


async def unsealed_contacts(session: AsyncSession, *, limit: int) -> list[PatientContact]:
    """Contacts written before they were encrypted at rest (intake_0008), locked."""
    found = await session.execute(
        select(PatientContact)
        .where(col(PatientContact.sealed).is_(None))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(found.scalars())
