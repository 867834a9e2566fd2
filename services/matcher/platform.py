"""The national SAS platform's use of our slots (FHIR, see services/matcher/entrypoints/fhir/): search the
free slots, book one, and set a booking's outcome.

A platform booking takes the slot with the same conditional update as the cascade's hold
(`repository.take_slot`), so whichever side asks first wins and the other sees the slot taken. It is
recorded (`platform_appointment`) and announced (`PlatformAppointmentBooked`: the professional
is told, the indicators count it) in the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

import structlog
from sqlalchemy.exc import IntegrityError

from schemas.events import Channel, PlatformAppointmentBooked, PlatformAppointmentChanged, ProfessionalRef
from schemas.topics import Topics
from services.common.db import Database, Transaction
from services.matcher.adapters import bookings, models, slots
from services.matcher.allocation.proposals import site_ref
from services.matcher.directory.errors import NotFound
from services.matcher.entrypoints.fhir.appointment import BookingAsked, Identifier
from services.matcher.entrypoints.fhir.codes import fhir_id
from services.matcher.entrypoints.fhir.resources import BookedAppointment, PublishedSlot
from services.matcher.entrypoints.fhir.search import SlotSearch

log = structlog.get_logger(__name__)
REQUEST_PREFIX = "platform:"  # a booking's request_id in events and in the slot row
MAX_SLOTS = 5000  # a search answers at most this many slots (25 professionals, 31 days)


class BookingRefused(Exception):
    """A rule forbids this booking or change (FHIR 422, business-rule)."""


def request_id_of(appointment_id: str) -> str:
    return REQUEST_PREFIX + appointment_id


def _booked(a: models.PlatformAppointment) -> BookedAppointment:
    return BookedAppointment(
        a.appointment_id,
        a.identifier_system,
        a.identifier_value,
        a.status,
        a.start,
        a.end,
        a.rpps,
        fhir_id("slot", a.slot_id),
        a.operator,
    )


class PlatformBookings:
    def __init__(self, db: Database, clock: Callable[[], datetime], topics: Topics) -> None:
        self.db, self.clock, self.topics = db, clock, topics

    async def free_slots(self, search: SlotSearch) -> list[PublishedSlot]:
        """The free, future slots of these professionals starting in the window, with their CPTS
        (a professional outside every CPTS publishes nothing through this agenda manager)."""
        async with self.db.transaction() as tx:
            rows = await bookings.published_free_slots(
                tx.session,
                rpps=list(search.rpps),
                start_from=search.start_from,
                start_to=search.start_to,
                now=self.clock(),
                limit=MAX_SLOTS,
            )
        return [
            PublishedSlot(
                slot.slot_id,
                slot.start,
                slot.end,
                slot.mode,
                pro.rpps,
                pro.name,
                pro.profession,
                site.site_id,
                site.name,
                site.address,
                site.lat,
                site.lon,
                territory.cpts_id,
                territory.name,
                territory.finess,
            )
            for slot, pro, site, territory in rows
        ]

    async def get(self, appointment_id: str) -> BookedAppointment:
        async with self.db.transaction() as tx:
            found = await tx.session.get(models.PlatformAppointment, appointment_id)
        if found is None:
            raise NotFound(f"no appointment {appointment_id}")
        return _booked(found)

    async def book(self, asked: BookingAsked) -> tuple[BookedAppointment, bool]:
        """Book the slot the platform names; the same platform identifier again gives the same
        appointment (created False). Raises BookingRefused when the slot cannot be booked."""
        try:
            async with self.db.transaction() as tx:
                # calls with one identifier run one after the other: the second finds the first's booking
                await bookings.one_identifier_at_a_time(tx.session, asked.identifier.system, asked.identifier.value)
                existing = await self._by_identifier(tx, asked.identifier)
                if existing is not None:
                    return self._same(existing, asked), False
                return _booked(await self._book(tx, asked)), True
        except IntegrityError:  # a hash collision of the lock let two calls through: the first won
            async with self.db.transaction() as tx:
                existing = await self._by_identifier(tx, asked.identifier)
            if existing is None:
                raise
            return self._same(existing, asked), False

    @staticmethod
    def _same(existing: models.PlatformAppointment, asked: BookingAsked) -> BookedAppointment:
        if (existing.rpps, existing.start, existing.end) != (asked.rpps, asked.start, asked.end):
            raise BookingRefused("this identifier is already used by another appointment")
        return _booked(existing)

    @staticmethod
    async def _by_identifier(
        tx: Transaction, identifier: Identifier, lock: bool = False
    ) -> models.PlatformAppointment | None:
        return await bookings.appointment_by_identifier(
            tx.session, system=identifier.system, value=identifier.value, lock=lock
        )

    async def _book(self, tx: Transaction, asked: BookingAsked) -> models.PlatformAppointment:
        now = self.clock()
        candidates = await _slots_asked(tx, asked)
        pro = await tx.session.get(models.ProfessionalRow, asked.rpps)
        site = await tx.session.get(models.SiteRow, (asked.rpps, candidates[0].site_id))
        assert pro is not None and site is not None  # a slot's professional and site are kept
        if not (pro.active and pro.cpts_id and site.active):
            raise BookingRefused("this slot is not published to the platform (inactive, or outside every CPTS)")
        if candidates[0].start <= now:
            raise BookingRefused("this slot has already started")
        if pro.paused_until is not None and candidates[0].start < pro.paused_until:
            raise BookingRefused("the professional takes no patient at that time (on pause)")
        appointment_id = uuid.uuid4().hex
        request_id = request_id_of(appointment_id)
        for slot in candidates:  # the free ones first; one taken meanwhile by the cascade: the next
            if await slots.take_slot(tx.session, slot.slot_id, models.SlotState.BOOKED, request_id, None, now):
                break
        else:
            raise BookingRefused("this slot is no longer free")
        if slot.site_id != site.site_id:
            site = await tx.session.get(models.SiteRow, (slot.rpps, slot.site_id))
            assert site is not None
        row = bookings.add_appointment(
            tx.session,
            dict(
                appointment_id=appointment_id,
                identifier_system=asked.identifier.system,
                identifier_value=asked.identifier.value,
                slot_id=slot.slot_id,
                rpps=slot.rpps,
                start=slot.start,
                end=slot.end,
                status="booked",
                operator=asked.operator,
                created_at=now,
                updated_at=now,
            ),
        )
        await tx.session.flush()  # the identifier's uniqueness is checked here
        tx.emit(self.topics.matching, _announced(asked, pro, site, slot, appointment_id, now), now)
        log.info("slot booked by the national platform", rpps=pro.rpps, slot_id=slot.slot_id)
        return row

    async def set_status(self, identifier: Identifier, status: str) -> BookedAppointment:
        """cancelled (the slot is free again), fulfilled or noshow; the same status again changes nothing."""
        now = self.clock()
        async with self.db.transaction() as tx:
            row = await self._by_identifier(tx, identifier, lock=True)
            if row is None:
                raise NotFound(f"no appointment with identifier {identifier.system}|{identifier.value}")
            if row.status == status:
                return _booked(row)
            if row.status == "cancelled":
                raise BookingRefused("a cancelled appointment cannot change any more")
            if status == "cancelled" and row.status != "booked":
                raise BookingRefused(f"an appointment recorded as {row.status} cannot be cancelled")
            row.status, row.updated_at = status, now
            if status == "cancelled":
                await slots.free_booked_slot(tx.session, row.slot_id, request_id_of(row.appointment_id), now)
            tx.emit(
                self.topics.matching,
                PlatformAppointmentChanged(
                    request_id=request_id_of(row.appointment_id),
                    appointment_id=row.appointment_id,
                    slot_id=row.slot_id,
                    rpps=row.rpps,
                    status=status,
                    changed_at=now,
                ),
                now,
            )
            log.info("platform booking changed", status=status, slot_id=row.slot_id)
            return _booked(row)


async def _slots_asked(tx: Transaction, asked: BookingAsked) -> list[models.Slot]:
    """The professional's published slots at exactly these times (the one named, if named),
    free ones first."""
    found = await bookings.slots_at(tx.session, rpps=asked.rpps, start=asked.start, end=asked.end)
    named = [s for s in found if asked.slot_fhir_id in (None, fhir_id("slot", s.slot_id))]
    if not named:
        raise BookingRefused("no slot of this professional is published at these times")
    return sorted(named, key=lambda s: s.state != models.SlotState.FREE)


def _announced(
    asked: BookingAsked,
    pro: models.ProfessionalRow,
    site: models.SiteRow,
    slot: models.Slot,
    appointment_id: str,
    now: datetime,
) -> PlatformAppointmentBooked:
    """The booking as the professional is told of it and the indicators count it."""
    operator = f"{asked.operator['system']}|{asked.operator['value']}" if asked.operator else None
    return PlatformAppointmentBooked(
        request_id=request_id_of(appointment_id),
        appointment_id=appointment_id,
        platform_identifier=f"{asked.identifier.system}|{asked.identifier.value}",
        professional=ProfessionalRef(rpps=pro.rpps, name=pro.name, profession=pro.profession),
        professional_cpts_id=pro.cpts_id,
        email=pro.email,
        channels=[Channel.model_validate(c) for c in pro.channels or []],
        site=site_ref(site),
        slot_id=slot.slot_id,
        start=slot.start,
        end=slot.end,
        mode=slot.mode,
        booked_at=now,
        operator=operator,
    )
