"""The national SAS platform's use of our slots (FHIR, see services/matcher/fhir/): search the
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
from sqlalchemy import and_, or_, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from schemas.events import Channel, PlatformAppointmentBooked, PlatformAppointmentChanged, ProfessionalRef
from schemas.topics import Topics
from services.common.db import Database, Transaction
from services.matcher import models, repository
from services.matcher.directory import NotFound
from services.matcher.fhir.appointment import BookingAsked, Identifier
from services.matcher.fhir.codes import fhir_id
from services.matcher.fhir.resources import BookedAppointment, PublishedSlot
from services.matcher.fhir.search import SlotSearch
from services.matcher.service import site_ref

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
        now = self.clock()
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
                col(models.Slot.rpps).in_(search.rpps),
                col(models.Slot.start) >= search.start_from,
                col(models.Slot.start) <= search.start_to,
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
            .limit(MAX_SLOTS)
        )
        async with self.db.transaction() as tx:
            rows = (await tx.session.execute(query)).all()
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
                await tx.session.execute(
                    text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                    {"k": f"platform:{asked.identifier.system}|{asked.identifier.value}"},
                )
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

    async def _by_identifier(
        self, tx: Transaction, identifier: Identifier, lock: bool = False
    ) -> models.PlatformAppointment | None:
        query = select(models.PlatformAppointment).where(
            col(models.PlatformAppointment.identifier_system) == identifier.system,
            col(models.PlatformAppointment.identifier_value) == identifier.value,
        )
        found = await tx.session.execute(query.with_for_update() if lock else query)
        return found.scalars().first()

    async def _book(self, tx: Transaction, asked: BookingAsked) -> models.PlatformAppointment:
        now = self.clock()
        slots = await self._slots_asked(tx, asked)
        pro = await tx.session.get(models.ProfessionalRow, asked.rpps)
        site = await tx.session.get(models.SiteRow, (asked.rpps, slots[0].site_id))
        assert pro is not None and site is not None  # a slot's professional and site are kept
        if not (pro.active and pro.cpts_id and site.active):
            raise BookingRefused("this slot is not published to the platform (inactive, or outside every CPTS)")
        if slots[0].start <= now:
            raise BookingRefused("this slot has already started")
        if pro.paused_until is not None and slots[0].start < pro.paused_until:
            raise BookingRefused("the professional takes no patient at that time (on pause)")
        appointment_id = uuid.uuid4().hex
        request_id = request_id_of(appointment_id)
        for slot in slots:  # the free ones first; one taken meanwhile by the cascade: the next
            if await repository.take_slot(tx.session, slot.slot_id, models.SlotState.BOOKED, request_id, None, now):
                break
        else:
            raise BookingRefused("this slot is no longer free")
        if slot.site_id != site.site_id:
            site = await tx.session.get(models.SiteRow, (slot.rpps, slot.site_id))
            assert site is not None
        row = models.PlatformAppointment(
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
        )
        tx.session.add(row)
        await tx.session.flush()  # the identifier's uniqueness is checked here
        operator = f"{asked.operator['system']}|{asked.operator['value']}" if asked.operator else None
        tx.emit(
            self.topics.matching,
            PlatformAppointmentBooked(
                request_id=request_id,
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
            ),
            now,
        )
        log.info("slot booked by the national platform", rpps=pro.rpps, slot_id=slot.slot_id)
        return row

    async def _slots_asked(self, tx: Transaction, asked: BookingAsked) -> list[models.Slot]:
        """The professional's published slots at exactly these times (the one named, if named),
        free ones first."""
        rows = await tx.session.execute(
            select(models.Slot)
            .where(
                col(models.Slot.rpps) == asked.rpps,
                col(models.Slot.start) == asked.start,
                col(models.Slot.end) == asked.end,
                col(models.Slot.state) != models.SlotState.WITHDRAWN,
            )
            .order_by(col(models.Slot.slot_id))
        )
        slots = [s for s in rows.scalars().all() if asked.slot_fhir_id in (None, fhir_id("slot", s.slot_id))]
        if not slots:
            raise BookingRefused("no slot of this professional is published at these times")
        return sorted(slots, key=lambda s: s.state != models.SlotState.FREE)

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
                await repository.free_booked_slot(tx.session, row.slot_id, request_id_of(row.appointment_id), now)
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
