"""The operations read model: what happened to requests, offers, professionals and slots,
recorded from the topics only (never from another service's tables).

Each handler writes only the facts its event carries (upserts, adapters/repository.py), and
every status is derived from those facts, so the rows do not depend on the order the topics are
read in: replaying all of them from the start (`rebuild`) gives the same rows, hence the same
figures.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer

from schemas.events import (
    AppointmentConfirmed,
    CloudEvent,
    OfferAccepted,
    OfferExpired,
    OfferProposed,
    OfferRefused,
    OfferWithdrawn,
    PlatformAppointmentBooked,
    PlatformAppointmentChanged,
    ProfessionalChanged,
    RequestCancelled,
    RequestReceived,
    RequestUnresolved,
    RequestWaiting,
    SearchStarted,
    SlotChanged,
    TerritoryChanged,
    UnknownEventType,
)
from schemas.topics import Topics
from services.common.db import Database, Transaction
from services.common.parts import Handlers
from services.ops.adapters import repository
from services.ops.adapters.models import OfferRow, ProfessionalVersionRow, RequestRow, SlotRow, TerritoryRow

log = structlog.get_logger(__name__)
CONSUMER = "ops"


async def on_received(tx: Transaction, e: RequestReceived, ce: CloudEvent) -> None:
    await repository.record(
        tx.session,
        RequestRow,
        {"request_id": e.request_id, "received_at": e.received_at, "commune_insee": e.commune_insee},
    )


async def on_search(tx: Transaction, e: SearchStarted, ce: CloudEvent) -> None:
    await repository.record(
        tx.session, RequestRow, {"request_id": e.request_id, "deadline": e.deadline, "patient_cpts": e.cpts_id}
    )


async def on_waiting(tx: Transaction, e: RequestWaiting, ce: CloudEvent) -> None:
    """The latest time the request started waiting, and why (the live queue compares it with its offers)."""
    await repository.record(
        tx.session,
        RequestRow,
        {"request_id": e.request_id, "waiting_reason": e.reason, "waiting_since": ce.time},
        unless_newer="waiting_since",
    )


async def _appointment(
    tx: Transaction, e: AppointmentConfirmed | PlatformAppointmentBooked, confirmed_at: datetime, **more: Any
) -> None:
    """A request confirmed with a professional (by the cascade or the platform), its slot booked."""
    await repository.record(
        tx.session,
        RequestRow,
        {
            "request_id": e.request_id,
            "confirmed_at": confirmed_at,
            "appointment_start": e.start,
            "appointment_rpps": e.professional.rpps,
            "appointment_commune": e.site.commune_insee,
            "appointment_cpts": e.professional_cpts_id,
            "slot_id": e.slot_id,
            **more,
        },
    )
    if e.slot_id:
        await repository.slot_booked(tx.session, slot_id=e.slot_id, rpps=e.professional.rpps, request_id=e.request_id)


async def on_confirmed(tx: Transaction, e: AppointmentConfirmed, ce: CloudEvent) -> None:
    await _appointment(tx, e, ce.time, kind=e.kind)


async def on_platform_booked(tx: Transaction, e: PlatformAppointmentBooked, ce: CloudEvent) -> None:
    """A booking by the national platform: a request received and confirmed at once (no patient
    commune is known: it counts for the CPTS of the professional booked)."""
    await _appointment(tx, e, e.booked_at, received_at=e.booked_at, kind="slot", channel="platform")


async def on_platform_changed(tx: Transaction, e: PlatformAppointmentChanged, ce: CloudEvent) -> None:
    if e.status == "cancelled":
        await _cancelled(tx, e.request_id, e.changed_at)
    else:
        await repository.record(
            tx.session, RequestRow, {"request_id": e.request_id, "honoured": e.status == "fulfilled"}
        )


async def on_unresolved(tx: Transaction, e: RequestUnresolved, ce: CloudEvent) -> None:
    await repository.record(
        tx.session, RequestRow, {"request_id": e.request_id, "unresolved_at": ce.time, "reason": e.reason}
    )


async def on_cancelled(tx: Transaction, e: RequestCancelled, ce: CloudEvent) -> None:
    await _cancelled(tx, e.request_id, e.cancelled_at)


async def _cancelled(tx: Transaction, request_id: str, at: datetime) -> None:
    """The request is cancelled and its slot, if one was booked, no longer counts as booked."""
    await repository.record(tx.session, RequestRow, {"request_id": request_id, "cancelled_at": at})
    await repository.slot_no_longer_booked(tx.session, request_id=request_id)


async def on_proposed(tx: Transaction, e: OfferProposed, ce: CloudEvent) -> None:
    await repository.record(
        tx.session,
        OfferRow,
        {
            "offer_id": e.offer_id,
            "request_id": e.request_id,
            "rpps": e.professional.rpps,
            "cpts_id": e.professional_cpts_id,
            "proposed_at": ce.time,
            "answer_by": e.answer_by,
        },
    )


async def on_accepted(tx: Transaction, e: OfferAccepted, ce: CloudEvent) -> None:
    await repository.record(
        tx.session, OfferRow, {"offer_id": e.offer_id, "request_id": e.request_id, "accepted_at": e.accepted_at}
    )


async def on_refused(tx: Transaction, e: OfferRefused, ce: CloudEvent) -> None:
    await repository.record(
        tx.session,
        OfferRow,
        {"offer_id": e.offer_id, "request_id": e.request_id, "refused_at": e.refused_at, "refusal_reason": e.reason},
    )


async def on_expired(tx: Transaction, e: OfferExpired, ce: CloudEvent) -> None:
    await repository.record(
        tx.session, OfferRow, {"offer_id": e.offer_id, "request_id": e.request_id, "expired_at": e.expired_at}
    )


async def on_withdrawn(tx: Transaction, e: OfferWithdrawn, ce: CloudEvent) -> None:
    await repository.record(
        tx.session, OfferRow, {"offer_id": e.offer_id, "request_id": e.request_id, "withdrawn_at": ce.time}
    )


async def on_professional(tx: Transaction, e: ProfessionalChanged, ce: CloudEvent) -> None:
    version = {
        "rpps": e.rpps,
        "at": e.changed_at,
        "name": e.name,
        "profession": e.profession,
        "cpts_id": e.cpts_id,
        "sas_participation": e.sas_participation,
        "active": e.active,
        "paused_until": e.paused_until,
    }
    await repository.record_once(tx.session, ProfessionalVersionRow, version)


async def on_slot(tx: Transaction, e: SlotChanged, ce: CloudEvent) -> None:
    await repository.record(
        tx.session,
        SlotRow,
        {
            "slot_id": e.slot_id,
            "rpps": e.rpps,
            "start": e.start,
            "end": e.end,
            "state": e.state,
            "changed_at": e.changed_at,
        },
        unless_newer="changed_at",
    )


async def on_territory(tx: Transaction, e: TerritoryChanged, ce: CloudEvent) -> None:
    territory = {"cpts_id": e.cpts_id, "name": e.name, "communes": e.communes, "changed_at": e.changed_at}
    await repository.record(tx.session, TerritoryRow, territory, unless_newer="changed_at")


HANDLERS: Handlers = {
    RequestReceived: on_received,
    SearchStarted: on_search,
    RequestWaiting: on_waiting,
    AppointmentConfirmed: on_confirmed,
    RequestUnresolved: on_unresolved,
    RequestCancelled: on_cancelled,
    OfferProposed: on_proposed,
    OfferAccepted: on_accepted,
    OfferRefused: on_refused,
    OfferExpired: on_expired,
    OfferWithdrawn: on_withdrawn,
    ProfessionalChanged: on_professional,
    SlotChanged: on_slot,
    TerritoryChanged: on_territory,
    PlatformAppointmentBooked: on_platform_booked,
    PlatformAppointmentChanged: on_platform_changed,
}


def topics_of(topics: Topics) -> list[str]:
    return [topics.requests, topics.matching, topics.offers, topics.directory]


async def rebuild(
    db: Database, bootstrap_servers: str, topics: Topics, progress: Callable[[int], None] | None = None
) -> int:
    """Empty the read model and replay every topic from its start through the same handlers."""
    async with db.transaction() as tx:
        await repository.forget_everything(tx.session, consumer=CONSUMER)
    consumer = AIOKafkaConsumer(
        *topics_of(topics),
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    replayed = 0
    try:
        await consumer.seek_to_beginning()
        ends = await consumer.end_offsets(list(consumer.assignment()))

        async def behind() -> bool:
            for partition, end in ends.items():
                if await consumer.position(partition) < end:
                    return True
            return False

        while await behind():
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    try:
                        event = CloudEvent.model_validate_json(record.value or b"")
                        data = event.payload()
                    except (ValueError, UnknownEventType):
                        continue  # what the live consumer dead-lettered
                    handler = HANDLERS.get(type(data))
                    if handler is None:
                        continue
                    async with db.transaction() as tx:
                        if await tx.first_time(CONSUMER, event.id):
                            await handler(tx, data, event)
                    replayed += 1
            if progress:
                progress(replayed)
    finally:
        await consumer.stop()
    log.info("read model rebuilt", events=replayed)
    return replayed
