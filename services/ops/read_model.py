"""The operations read model: what happened to requests, offers, professionals and slots,
recorded from the topics only (never from another service's tables).

Each handler writes only the facts its event carries (upserts), and every status is derived
from those facts, so the rows do not depend on the order the topics are read in: replaying all
of them from the start (`rebuild`) gives the same rows, hence the same figures.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer
from sqlalchemy import text

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
from services.common.clock import PARIS
from services.common.db import Database, Transaction
from services.common.runtime import Handlers
from services.ops import indicators

log = structlog.get_logger(__name__)
CONSUMER = "ops"
TABLES = ("ops_request", "ops_offer", "ops_professional_version", "ops_slot", "ops_territory")


async def _upsert(tx: Transaction, table: str, key: str, values: dict[str, Any], when: str | None = None) -> None:
    columns = ", ".join(f'"{c}"' for c in values)  # quoted: "end" is a keyword
    placeholders = ", ".join(f":{c}" for c in values)
    updates = ", ".join(f'"{c}" = excluded."{c}"' for c in values if c != key)
    condition = f" WHERE {when}" if when else ""
    await tx.session.execute(
        text(
            f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) "
            f"ON CONFLICT ({key}) DO UPDATE SET {updates}{condition}"
        ),
        values,
    )


async def on_received(tx: Transaction, e: RequestReceived, ce: CloudEvent) -> None:
    await _upsert(
        tx,
        "ops_request",
        "request_id",
        {"request_id": e.request_id, "received_at": e.received_at, "commune_insee": e.commune_insee},
    )


async def on_search(tx: Transaction, e: SearchStarted, ce: CloudEvent) -> None:
    await _upsert(
        tx, "ops_request", "request_id", {"request_id": e.request_id, "deadline": e.deadline, "patient_cpts": e.cpts_id}
    )


async def on_waiting(tx: Transaction, e: RequestWaiting, ce: CloudEvent) -> None:
    """The latest time the request started waiting, and why (the live queue compares it with its offers)."""
    await _upsert(
        tx,
        "ops_request",
        "request_id",
        {"request_id": e.request_id, "waiting_reason": e.reason, "waiting_since": ce.time},
        when="ops_request.waiting_since IS NULL OR ops_request.waiting_since <= excluded.waiting_since",
    )


async def _appointment(
    tx: Transaction, e: AppointmentConfirmed | PlatformAppointmentBooked, confirmed_at: datetime, **more: Any
) -> None:
    """A request confirmed with a professional (by the cascade or the platform), its slot booked."""
    await _upsert(
        tx,
        "ops_request",
        "request_id",
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
        await _slot_booked(tx, e.slot_id, e.professional.rpps, e.request_id)


async def on_confirmed(tx: Transaction, e: AppointmentConfirmed, ce: CloudEvent) -> None:
    await _appointment(tx, e, ce.time, kind=e.kind)


async def _slot_booked(tx: Transaction, slot_id: str, rpps: str, request_id: str) -> None:
    """Booked, unless the request was cancelled (whichever event is read first)."""
    await tx.session.execute(
        text(
            "INSERT INTO ops_slot (slot_id, rpps, booked) VALUES (:s, :r, NOT EXISTS (SELECT 1 FROM ops_request "
            "WHERE request_id = :q AND cancelled_at IS NOT NULL)) ON CONFLICT (slot_id) DO UPDATE SET "
            "booked = excluded.booked"
        ),
        {"s": slot_id, "r": rpps, "q": request_id},
    )


async def on_platform_booked(tx: Transaction, e: PlatformAppointmentBooked, ce: CloudEvent) -> None:
    """A booking by the national platform: a request received and confirmed at once (no patient
    commune is known: it counts for the CPTS of the professional booked)."""
    await _appointment(tx, e, e.booked_at, received_at=e.booked_at, kind="slot", channel="platform")


async def on_platform_changed(tx: Transaction, e: PlatformAppointmentChanged, ce: CloudEvent) -> None:
    if e.status == "cancelled":
        await _cancelled(tx, e.request_id, e.changed_at)
    else:
        await _upsert(
            tx, "ops_request", "request_id", {"request_id": e.request_id, "honoured": e.status == "fulfilled"}
        )


async def on_unresolved(tx: Transaction, e: RequestUnresolved, ce: CloudEvent) -> None:
    await _upsert(
        tx, "ops_request", "request_id", {"request_id": e.request_id, "unresolved_at": ce.time, "reason": e.reason}
    )


async def on_cancelled(tx: Transaction, e: RequestCancelled, ce: CloudEvent) -> None:
    await _cancelled(tx, e.request_id, e.cancelled_at)


async def _cancelled(tx: Transaction, request_id: str, at: datetime) -> None:
    """The request is cancelled and its slot, if one was booked, no longer counts as booked."""
    await _upsert(tx, "ops_request", "request_id", {"request_id": request_id, "cancelled_at": at})
    await tx.session.execute(
        text(
            "UPDATE ops_slot SET booked = false WHERE slot_id = (SELECT slot_id FROM ops_request WHERE request_id = :q)"
        ),
        {"q": request_id},
    )


async def on_proposed(tx: Transaction, e: OfferProposed, ce: CloudEvent) -> None:
    await _upsert(
        tx,
        "ops_offer",
        "offer_id",
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
    await _upsert(
        tx, "ops_offer", "offer_id", {"offer_id": e.offer_id, "request_id": e.request_id, "accepted_at": e.accepted_at}
    )


async def on_refused(tx: Transaction, e: OfferRefused, ce: CloudEvent) -> None:
    await _upsert(
        tx,
        "ops_offer",
        "offer_id",
        {"offer_id": e.offer_id, "request_id": e.request_id, "refused_at": e.refused_at, "refusal_reason": e.reason},
    )


async def on_expired(tx: Transaction, e: OfferExpired, ce: CloudEvent) -> None:
    await _upsert(
        tx, "ops_offer", "offer_id", {"offer_id": e.offer_id, "request_id": e.request_id, "expired_at": e.expired_at}
    )


async def on_withdrawn(tx: Transaction, e: OfferWithdrawn, ce: CloudEvent) -> None:
    await _upsert(
        tx, "ops_offer", "offer_id", {"offer_id": e.offer_id, "request_id": e.request_id, "withdrawn_at": ce.time}
    )


async def on_professional(tx: Transaction, e: ProfessionalChanged, ce: CloudEvent) -> None:
    await tx.session.execute(
        text(
            "INSERT INTO ops_professional_version "
            "(rpps, at, profession, cpts_id, sas_participation, active, name, paused_until) "
            "VALUES (:rpps, :at, :profession, :cpts_id, :sas, :active, :name, :paused) ON CONFLICT DO NOTHING"
        ),
        {
            "name": e.name,
            "paused": e.paused_until,
            "rpps": e.rpps,
            "at": e.changed_at,
            "profession": e.profession,
            "cpts_id": e.cpts_id,
            "sas": e.sas_participation,
            "active": e.active,
        },
    )


async def on_slot(tx: Transaction, e: SlotChanged, ce: CloudEvent) -> None:
    await _upsert(
        tx,
        "ops_slot",
        "slot_id",
        {
            "slot_id": e.slot_id,
            "rpps": e.rpps,
            "start": e.start,
            "end": e.end,
            "state": e.state,
            "changed_at": e.changed_at,
        },
        when="ops_slot.changed_at IS NULL OR ops_slot.changed_at <= excluded.changed_at",
    )


async def on_territory(tx: Transaction, e: TerritoryChanged, ce: CloudEvent) -> None:
    await tx.session.execute(
        text(
            "INSERT INTO ops_territory (cpts_id, name, communes, changed_at) VALUES (:c, :n, :m, :at) "
            "ON CONFLICT (cpts_id) DO UPDATE SET name = excluded.name, communes = excluded.communes, "
            "changed_at = excluded.changed_at WHERE ops_territory.changed_at <= excluded.changed_at"
        ),
        {"c": e.cpts_id, "n": e.name, "m": json.dumps(e.communes), "at": e.changed_at},
    )


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


# --- reading it back -------------------------------------------------------------------------


def _status(r: Any) -> str:
    if r.cancelled_at:
        return "cancelled"
    if r.confirmed_at:
        return "confirmed"
    return "unresolved" if r.unresolved_at else "open"


def _outcome(o: Any) -> str:
    for outcome in ("accepted", "refused", "expired", "withdrawn"):
        if getattr(o, f"{outcome}_at"):
            return outcome
    return "pending"


def _bounds(first: date, last: date) -> tuple[datetime, datetime]:
    start = datetime.combine(first, datetime.min.time(), tzinfo=PARIS)
    return start, datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=PARIS)


async def facts(
    db: Database, first: date, last: date
) -> tuple[
    list[indicators.RequestFacts],
    list[indicators.OfferFacts],
    list[indicators.ProfessionalVersion],
    list[indicators.SlotFacts],
]:
    """What the arithmetic needs for a period (requests from three days before: acts of the period)."""
    start, end = _bounds(first, last)
    async with db.engine.connect() as conn:
        requests = (
            await conn.execute(
                text("SELECT * FROM ops_request WHERE received_at >= :a AND received_at < :b"),
                {"a": start - timedelta(days=3), "b": end},
            )
        ).all()
        offers = (
            await conn.execute(
                text("SELECT * FROM ops_offer WHERE proposed_at >= :a AND proposed_at < :b"), {"a": start, "b": end}
            )
        ).all()
        versions = (await conn.execute(text("SELECT * FROM ops_professional_version WHERE at < :b"), {"b": end})).all()
        slots = (
            await conn.execute(text("SELECT * FROM ops_slot WHERE start >= :a AND start < :b"), {"a": start, "b": end})
        ).all()
    return (
        [_request_facts(r) for r in requests if r.received_at],
        [
            indicators.OfferFacts(
                o.offer_id, o.request_id, o.rpps, o.cpts_id, o.proposed_at, _outcome(o), o.refusal_reason
            )
            for o in offers
            if o.proposed_at
        ],
        [
            indicators.ProfessionalVersion(v.rpps, v.at, v.profession, v.cpts_id, v.sas_participation, v.active)
            for v in versions
        ],
        [
            indicators.SlotFacts(s.slot_id, s.rpps, s.start, s.end, s.state == "withdrawn", bool(s.booked))
            for s in slots
            if s.start
        ],
    )


def _request_facts(r: Any) -> indicators.RequestFacts:
    return indicators.RequestFacts(
        r.request_id,
        r.received_at,
        r.patient_cpts,
        _status(r),
        r.deadline,
        r.confirmed_at,
        r.appointment_start,
        r.appointment_rpps,
        r.appointment_cpts,
        r.kind,
        r.reason,
        r.commune_insee,
        r.appointment_commune,
        r.channel or "cascade",
        r.honoured,
    )


async def professional_names(db: Database) -> dict[str, str]:
    """Each professional's latest name, by RPPS (for the dashboard: people, not numbers)."""
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT DISTINCT ON (rpps) rpps, name FROM ops_professional_version "
                "WHERE name IS NOT NULL ORDER BY rpps, at DESC"
            )
        )
        return {r.rpps: r.name for r in rows.all()}


async def known_cpts(db: Database) -> dict[str, str]:
    """The CPTS the read model has heard of, with their names: territories announced, and any
    CPTS a professional or a patient belongs to (named by its id until its territory is heard of)."""
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT c.cpts_id, coalesce(t.name, c.cpts_id) AS name FROM ("
                "SELECT cpts_id FROM ops_territory UNION SELECT cpts_id FROM ops_professional_version "
                "WHERE cpts_id IS NOT NULL UNION SELECT patient_cpts FROM ops_request WHERE patient_cpts IS NOT NULL"
                ") c LEFT JOIN ops_territory t USING (cpts_id) ORDER BY 2"
            )
        )
        return {r.cpts_id: r.name for r in rows.all()}


async def territory(db: Database, cpts_id: str) -> tuple[str, list[str]]:
    """A CPTS's name and communes (its id and none until the matcher announced it)."""
    async with db.engine.connect() as conn:
        row = (
            await conn.execute(text("SELECT name, communes FROM ops_territory WHERE cpts_id = :c"), {"c": cpts_id})
        ).first()
    return (row.name, list(row.communes)) if row else (cpts_id, [])


# the live queue of a CPTS: requests in progress, offers waiting for an answer, latest outcomes
_OPEN_REQUESTS = (
    "SELECT r.request_id, r.received_at, r.deadline, r.commune_insee, "
    "EXISTS (SELECT 1 FROM ops_offer o WHERE o.request_id = r.request_id AND o.accepted_at IS NULL "
    "AND o.refused_at IS NULL AND o.expired_at IS NULL AND o.withdrawn_at IS NULL) AS offered, "
    "CASE WHEN r.waiting_since > coalesce((SELECT max(o.proposed_at) FROM ops_offer o "
    "WHERE o.request_id = r.request_id), '-infinity') THEN r.waiting_reason END AS waiting "
    "FROM ops_request r WHERE (r.patient_cpts = :c OR r.appointment_cpts = :c) AND r.confirmed_at IS NULL "
    "AND r.cancelled_at IS NULL AND r.unresolved_at IS NULL ORDER BY r.received_at"
)
_PENDING_OFFERS = (
    "SELECT request_id, rpps, answer_by, (SELECT v.name FROM ops_professional_version v WHERE v.rpps = o.rpps "
    "ORDER BY v.at DESC LIMIT 1) AS name FROM ops_offer o WHERE cpts_id = :c AND accepted_at IS NULL "
    "AND refused_at IS NULL AND expired_at IS NULL AND withdrawn_at IS NULL ORDER BY answer_by NULLS LAST"
)
_LATEST_OUTCOMES = (
    "SELECT request_id, CASE WHEN cancelled_at IS NOT NULL THEN 'cancelled' "
    "WHEN confirmed_at IS NOT NULL THEN 'confirmed' ELSE 'unresolved' END AS outcome, reason, "
    "greatest(cancelled_at, confirmed_at, unresolved_at) AS at FROM ops_request "
    "WHERE (patient_cpts = :c OR appointment_cpts = :c) AND (confirmed_at IS NOT NULL OR "
    "cancelled_at IS NOT NULL OR unresolved_at IS NOT NULL) ORDER BY at DESC LIMIT 15"
)


async def live(db: Database, cpts_id: str) -> tuple[list[Any], list[Any], list[Any]]:
    """The live queue's rows: open requests, pending offers, the 15 latest outcomes."""
    found: list[list[Any]] = []
    async with db.engine.connect() as conn:
        for sql in (_OPEN_REQUESTS, _PENDING_OFFERS, _LATEST_OUTCOMES):
            found.append(list((await conn.execute(text(sql), {"c": cpts_id})).all()))
    return found[0], found[1], found[2]


EXPORTS: dict[str, tuple[str, str, str]] = {  # table, date column, which rows are the CPTS's
    "requests": ("ops_request", "received_at", "(patient_cpts = :c OR appointment_cpts = :c)"),
    "offers": ("ops_offer", "proposed_at", "cpts_id = :c"),
    "slots": ("ops_slot", "start", "rpps IN (SELECT rpps FROM ops_professional_version WHERE cpts_id = :c)"),
    "professionals": ("ops_professional_version", "at", "cpts_id = :c"),
}


async def export_rows(
    db: Database, kind: str, cpts_id: str, first: date, last: date
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The CPTS's rows behind the figures, for a CSV (no patient identity is in the read model)."""
    table, column, mine = EXPORTS[kind]
    start, end = _bounds(first, last)
    async with db.engine.connect() as conn:
        result = await conn.execute(
            text(f"SELECT * FROM {table} WHERE {column} >= :a AND {column} < :b AND {mine} ORDER BY {column}"),
            {"a": start - timedelta(days=3) if kind == "requests" else start, "b": end, "c": cpts_id},
        )
        return list(result.keys()), [tuple(r) for r in result.all()]


async def rebuild(
    db: Database, bootstrap_servers: str, topics: Topics, progress: Callable[[int], None] | None = None
) -> int:
    """Empty the read model and replay every topic from its start through the same handlers."""
    async with db.transaction() as tx:
        for table in TABLES:
            await tx.session.execute(text(f"DELETE FROM {table}"))
        await tx.session.execute(text("DELETE FROM processed_event WHERE consumer = :c"), {"c": CONSUMER})
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
