"""The intake's use cases: receive, follow and cancel requests; apply the matcher's news."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import text
from sqlmodel import col, delete, select

from schemas.events import (
    AppointmentConfirmed,
    CloudEvent,
    OfferProposed,
    PatientDetails,
    PatientErased,
    RequestCancelled,
    RequestReceived,
    RequestUnresolved,
    RequestWaiting,
    SearchStarted,
)
from schemas.topics import Topics
from services.common import audit, metrics
from services.common.audit import SYSTEM, Actor
from services.common.clock import utcnow
from services.common.db import Database, Transaction
from services.common.delivery import DeliveryQueue
from services.common.outbound import OutboundPolicy
from services.common.patient import age_band, contact_kept_until
from services.common.sealing import Vault, seal_with
from services.common.signing import SignedPoster
from services.intake.callbacks import Callback, CallbackSecrets, RegulatorCallbacks
from services.intake.domain import (
    CannotCancel,
    RequestConflict,
    RequestNotFound,
    RequestStatus,
    check_received_at,
    deadline_of,
    fingerprint,
    follows,
    internal_id,
    legacy_fingerprint,
    same_wait,
)
from services.intake.models import CallbackDelivery, OrientationRequest, PatientContact, RequestHistory

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class NewRequest:
    """A validated request as the regulator sent it (the API layer resolved the location)."""

    request_id: str
    received_at: datetime
    urgency: str
    motive: str
    commune_insee: str  # given, or the nearest to the coordinates given
    details: PatientDetails  # coordinates, age, sex, red flags, treating doctor: for the matcher, sealed
    callback_url: str | None
    correlation_id: str | None
    teleconsultation_ok: bool
    contact_name: str | None
    contact_phone: str | None
    body: dict[str, Any]  # what was sent, for idempotency
    organisation: str = "legacy"  # the posting client's: the request is its own
    client_id: str | None = None

    def row(self, request_id: str, fingerprint: str, now: datetime) -> OrientationRequest:
        """The request's row (its contact goes apart: PatientContact)."""
        return OrientationRequest(
            request_id=request_id,
            organisation=self.organisation,
            external_id=self.request_id,
            client_id=self.client_id,
            fingerprint=fingerprint,
            received_at=self.received_at,
            urgency=self.urgency,
            motive=self.motive,
            commune_insee=self.commune_insee,
            age_band=age_band(self.details.age),
            teleconsultation_ok=self.teleconsultation_ok,
            callback_url=self.callback_url,
            correlation_id=self.correlation_id,
            status=RequestStatus.RECEIVED,
            created_at=now,
            updated_at=now,
        )


@dataclass(frozen=True)
class Retention:
    """How long the patient's data is kept (settings: docs/personal-data.md)."""

    after_end: timedelta = timedelta(hours=2)  # CONTACT_RETENTION_AFTER_END_HOURS
    patient_data: timedelta = timedelta(days=7)  # PATIENT_DATA_RETENTION_DAYS


@dataclass(frozen=True)
class Contact:
    name: str | None
    phone: str | None


class IntakeService:
    def __init__(
        self,
        db: Database,
        topics: Topics,
        secrets: CallbackSecrets,
        outbound: OutboundPolicy,
        vault: Vault,
        clock: Callable[[], datetime] = utcnow,
        fingerprint_key: bytes = b"",
        retention: Retention = Retention(),
        wake_callbacks: Callable[[], None] | None = None,
    ) -> None:
        """`wake_callbacks` pokes the callback dispatcher (a Pump) when one is due."""
        self.db = db
        self.vault, self.retention = vault, retention
        self.fingerprint_key = fingerprint_key  # SECRET_KEY: never leaves the service
        self.topics = topics
        self.clock = clock
        self.poster = SignedPoster(outbound)  # one HTTP client for every callback of this process
        self.callbacks = DeliveryQueue(db, RegulatorCallbacks(self.poster, secrets), clock, on_more=wake_callbacks)
        self.on_callback: list[Callable[[], None]] = [wake_callbacks] if wake_callbacks else []  # after a commit

    async def _move(
        self,
        tx: Transaction,
        request: OrientationRequest,
        status: RequestStatus,
        at: datetime,
        reason: str | None = None,
    ) -> None:
        """Record a status change, and queue it for the regulator's callback URL when there is one.

        Callers hold the request's row lock. A callback with nothing of its request pending before
        it is written leased and handed to the sender when the transaction commits (no claim of its
        own); otherwise it waits its turn in the queue."""
        request.status = status
        request.updated_at = at
        tx.session.add(RequestHistory(request_id=request.request_id, status=status, at=at, reason=reason))
        if request.callback_url:
            event_id = str(uuid.uuid4())
            first = not await self._callback_pending(tx, request.request_id)
            delivery = CallbackDelivery(
                event_id=event_id,
                request_id=request.request_id,
                url=request.callback_url,
                payload=callback_payload(request, event_id, at),
                status="pending",
                next_attempt_at=self.callbacks.lease_until(self.clock()) if first else at,
                created_at=at,
            )
            tx.session.add(delivery)
            if first:
                client_id = request.client_id  # whose secret signs it (the row's id is known after the flush)
                tx.after_commit.append(lambda: self.callbacks.send_claimed([Callback.of(delivery, client_id)]))
            else:
                tx.after_commit.extend(self.on_callback)
        tx.after_commit.append(lambda: metrics.REQUEST_STATUS.labels(str(status)).inc())
        log.info("request status", status=str(status))

    async def _callback_pending(self, tx: Transaction, request_id: str) -> bool:
        found = await tx.session.execute(
            select(CallbackDelivery.id)
            .where(col(CallbackDelivery.request_id) == request_id, col(CallbackDelivery.status) == "pending")
            .limit(1)
        )
        return found.first() is not None

    async def deliver_callbacks(self) -> int:
        """Push due status changes to regulators (see callbacks.py); for a Pump (see deliver_more)."""
        return await self.callbacks.deliver_more()

    async def submit(self, new: NewRequest) -> tuple[OrientationRequest, bool]:
        """Record a request and announce it; the same request again changes nothing.

        Returns the request and whether it was created now. Raises RequestConflict when the
        id is known with a different body.
        """
        print_ = fingerprint(new.body, self.fingerprint_key)
        async with self.db.transaction() as tx:
            # one id posted at once by one or two organisations: one at a time
            await tx.session.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"request:{new.request_id}"}
            )
            existing = await self._owned(tx, new.organisation, new.request_id, lock=True)
            if existing is not None:
                if existing.fingerprint not in (print_, legacy_fingerprint(new.body)):
                    raise RequestConflict(new.request_id)
                return existing, False
            now = self.clock()
            check_received_at(new.received_at, new.urgency, new.motive, now)
            taken = await tx.session.get(OrientationRequest, new.request_id) is not None
            request_id = internal_id(new.organisation, new.request_id, taken)
            request = new.row(request_id, print_, now)
            tx.session.add(request)
            await tx.session.flush()
            contact = json.dumps({"name": new.contact_name, "phone": new.contact_phone})
            tx.session.add(PatientContact(request_id=request_id, sealed=self.vault.keys.encrypt(contact)))
            tx.session.add(RequestHistory(request_id=request_id, status=RequestStatus.RECEIVED, at=now))
            poster = Actor("client", new.client_id) if new.client_id else SYSTEM
            await audit.record(tx.session, poster, "request.posted", request_id, now)
            key = await self.vault.create(tx.session, request_id, now)  # erasure destroys it
            tx.emit(
                self.topics.requests,
                RequestReceived(
                    request_id=request_id,
                    received_at=new.received_at,
                    urgency=new.urgency,
                    motive=new.motive,
                    commune_insee=new.commune_insee,
                    age_band=request.age_band,
                    teleconsultation_ok=new.teleconsultation_ok,
                    sealed_patient=seal_with(key, new.details),
                ),
                now,
            )
        log.info("request received", request_id=request_id, motive=new.motive, urgency=new.urgency)
        return request, True

    async def _owned(
        self, tx: Transaction, organisation: str | None, request_id: str, lock: bool = False
    ) -> OrientationRequest | None:
        """The request `request_id` of this organisation (the regulator's own id); for an admin
        (`organisation` None), the request the services know by this id."""
        if organisation is None:
            return await tx.session.get(OrientationRequest, request_id, with_for_update=lock)
        query = select(OrientationRequest).where(
            col(OrientationRequest.organisation) == organisation, col(OrientationRequest.external_id) == request_id
        )
        return (await tx.session.execute(query.with_for_update() if lock else query)).scalar_one_or_none()

    async def get(
        self, request_id: str, organisation: str | None = None, reader: Actor | None = None
    ) -> tuple[OrientationRequest, list[RequestHistory]]:
        """A request and its history, as its organisation (or an admin: None) may see it; a
        `reader` is recorded in the audit trail."""
        async with self.db.transaction() as tx:
            request = await self._owned(tx, organisation, request_id)
            if request is None:
                raise RequestNotFound(request_id)
            history = (
                (
                    await tx.session.execute(
                        select(RequestHistory)
                        .where(col(RequestHistory.request_id) == request.request_id)
                        .order_by(col(RequestHistory.id))
                    )
                )
                .scalars()
                .all()
            )
            if reader is not None:
                await audit.record(tx.session, reader, "request.read", request.request_id, self.clock())
            return request, list(history)

    async def cancel(
        self, request_id: str, organisation: str | None = None, by: Actor = audit.SYSTEM
    ) -> OrientationRequest:
        async with self.db.transaction() as tx:
            request = await self._owned(tx, organisation, request_id, lock=True)
            if request is None:
                raise RequestNotFound(request_id)
            request_id = request.request_id
            await audit.record(tx.session, by, "request.cancelled", request_id, self.clock())
            if request.status == RequestStatus.CANCELLED:
                return request
            if request.status == RequestStatus.UNRESOLVED:
                raise CannotCancel(f"request {request_id} already ended unresolved ({request.reason})")
            now = self.clock()
            request.reason, request.detail = "cancelled", "cancelled by the regulator"
            await self._move(tx, request, RequestStatus.CANCELLED, now, reason="cancelled")
            tx.emit(self.topics.requests, RequestCancelled(request_id=request_id, cancelled_at=now), now)
        log.info("request cancelled", request_id=request_id)
        return request

    async def end_unsearched(self) -> int:
        """A safety net: a request still `received` when its deadline passed was never searched
        (the matcher never answered, even with the request published again): it ends unresolved
        with a reason, and the matcher is told it is cancelled should the request reach it late."""
        now = self.clock()
        async with self.db.transaction() as tx:
            waiting = (
                await tx.session.execute(
                    select(OrientationRequest)
                    .where(
                        col(OrientationRequest.status) == RequestStatus.RECEIVED,
                        col(OrientationRequest.received_at) < now - timedelta(hours=24),  # the shortest deadline
                    )
                    .order_by(col(OrientationRequest.received_at))
                    .limit(100)
                    .with_for_update(skip_locked=True)
                )
            ).scalars()
            ended = [r for r in waiting if deadline_of(r.received_at, r.urgency, r.motive) <= now]
            for request in ended:
                request.reason = "deadline_cannot_be_met"
                request.detail = "the search never started before the deadline: the matcher did not answer"
                await self._move(tx, request, RequestStatus.UNRESOLVED, now, reason=request.reason)
                tx.emit(self.topics.requests, RequestCancelled(request_id=request.request_id, cancelled_at=now), now)
        for request in ended:
            log.warning("request never searched ended unresolved", request_id=request.request_id)
        return len(ended)

    async def contact(self, request_id: str, shown_to: Actor = audit.SYSTEM) -> Contact | None:
        """The patient's contact, for the professional who accepted (see the notifier): each
        time it is handed out for a page, the audit trail says to whom. None once erased."""
        async with self.db.transaction() as tx:
            found = await tx.session.get(PatientContact, request_id)
            if found is not None:
                await audit.record(tx.session, shown_to, "contact.shown", request_id, self.clock())
            return self._opened(found) if found else None

    def _opened(self, row: PatientContact) -> Contact:
        if row.sealed is None:  # written before encryption (see seal_old_contacts)
            return Contact(row.name, row.phone)
        opened = json.loads(self.vault.keys.decrypt(row.sealed) or "{}")
        return Contact(opened.get("name"), opened.get("phone"))

    # --- erasure and retention (docs/personal-data.md) ------------------------------------

    async def erase(self, request_id: str, organisation: str | None = None, by: Actor = SYSTEM) -> OrientationRequest:
        """Erase the patient's contact and details everywhere: here at once (with the request's
        key, so that nothing sealed under it in any topic can be opened again), in the other
        services through `PatientErased`. Asking again changes nothing."""
        async with self.db.transaction() as tx:
            request = await self._owned(tx, organisation, request_id, lock=True)
            if request is None:
                raise RequestNotFound(request_id)
            if request.patient_erased_at is None:
                await self._erase(tx, request, by, self.clock(), "asked")
        log.info("patient data erased", request_id=request.request_id)
        return request

    async def _erase(self, tx: Transaction, request: OrientationRequest, by: Actor, now: datetime, why: str) -> None:
        await tx.session.execute(delete(PatientContact).where(col(PatientContact.request_id) == request.request_id))
        await self.vault.destroy(tx.session, request.request_id)
        request.patient_erased_at, request.contact_erased_at = now, request.contact_erased_at or now
        await audit.record(tx.session, by, "patient.erased", request.request_id, now, detail=why)
        tx.emit(self.topics.requests, PatientErased(request_id=request.request_id, erased_at=now), now)
        tx.after_commit.append(lambda: metrics.PATIENT_DATA_ERASED.labels("patient", why).inc())

    async def apply_retention(self, batch: int = 200) -> dict[str, int]:
        """One round of retention (a timer in every process; rows are claimed with SKIP LOCKED):
        contacts that no page may show any more, then every detail of requests past
        PATIENT_DATA_RETENTION_DAYS. Returns what it erased."""
        contacts = 0
        while erased := await self._erase_shown_contacts(batch):  # until a round finds none due
            contacts += erased
        patients = 0
        while True:
            now = self.clock()
            async with self.db.transaction() as tx:
                due = (
                    await tx.session.execute(
                        select(OrientationRequest)
                        .where(
                            col(OrientationRequest.patient_erased_at).is_(None),
                            col(OrientationRequest.received_at) <= now - self.retention.patient_data,
                        )
                        .order_by(col(OrientationRequest.received_at))
                        .limit(batch)
                        .with_for_update(skip_locked=True)
                    )
                ).scalars()
                found = 0
                for request in due:
                    await self._erase(tx, request, SYSTEM, now, "retention")
                    found += 1
            patients += found
            if found < batch:
                break
        sealed = await self.seal_old_contacts(batch)
        if contacts or patients or sealed:
            log.info("retention applied", contacts_erased=contacts, patients_erased=patients, contacts_sealed=sealed)
        return {"contacts": contacts, "patients": patients, "sealed": sealed}

    async def _erase_shown_contacts(self, batch: int) -> int:
        """Contacts of requests that ended: after an appointment, once its page stopped showing
        it; without one, CONTACT_RETENTION_AFTER_END_HOURS after the end."""
        now, erased = self.clock(), 0
        start = OrientationRequest.appointment_start()
        keeping = col(OrientationRequest.contact_erased_at).is_(None)
        async with self.db.transaction() as tx:
            after_appointment = select(OrientationRequest).where(  # the page shows it a day at least after
                keeping, col(OrientationRequest.status) == "confirmed", start <= now - timedelta(days=1)
            )
            without = select(OrientationRequest).where(
                keeping,
                col(OrientationRequest.status).in_(["unresolved", "cancelled"]),
                col(OrientationRequest.updated_at) <= now - self.retention.after_end,
            )
            ended = [
                *(
                    await tx.session.execute(
                        after_appointment.order_by(start).limit(batch).with_for_update(skip_locked=True)
                    )
                ).scalars(),
                *(await tx.session.execute(without.limit(batch).with_for_update(skip_locked=True))).scalars(),
            ]
            for request in ended:
                appointment = request.appointment or {}
                until = contact_kept_until(
                    request.status,
                    datetime.fromisoformat(appointment["start"]) if "start" in appointment else None,
                    request.updated_at,
                    self.retention.after_end,
                )
                if until is None or until > now:
                    continue  # (by start: the ones after it are not due either)
                await tx.session.execute(
                    delete(PatientContact).where(col(PatientContact.request_id) == request.request_id)
                )
                request.contact_erased_at = now
                await audit.record(tx.session, SYSTEM, "contact.erased", request.request_id, now, detail="retention")
                erased += 1
        metrics.PATIENT_DATA_ERASED.labels("contact", "retention").inc(erased)
        return erased

    async def seal_old_contacts(self, batch: int) -> int:
        """Contacts written before they were encrypted at rest (intake_0008), encrypted now."""
        async with self.db.transaction() as tx:
            rows = (
                await tx.session.execute(
                    select(PatientContact)
                    .where(col(PatientContact.sealed).is_(None))
                    .limit(batch)
                    .with_for_update(skip_locked=True)
                )
            ).scalars()
            done = 0
            for row in rows:
                row.sealed = self.vault.keys.encrypt(json.dumps({"name": row.name, "phone": row.phone}))
                row.name = row.phone = None
                done += 1
        return done

    async def audit_of(
        self, request_id: str | None, organisation: str | None, action: str | None, limit: int
    ) -> list[dict[str, Any]]:
        """The trail of one request of this organisation (its own ids shown), or for an admin
        (`organisation` None) of any request or of every one."""
        async with self.db.transaction() as tx:
            if request_id is None:
                if organisation is not None:
                    raise RequestNotFound("(a request_id is needed)")
                return await audit.entries(tx.session, None, action, limit)
            request = await self._owned(tx, organisation, request_id)
            if request is None:
                raise RequestNotFound(request_id)
            found = await audit.entries(tx.session, [request.request_id], action, limit)
        if organisation is not None:
            for item in found:
                item["request_id"] = request.external_id
        return found

    # --- the matcher's news (handlers of the `matching` topic) ----------------------------

    async def on_search_started(self, tx: Transaction, event: SearchStarted, ce: CloudEvent) -> None:
        request = await self._for_update(tx, event.request_id)
        if request and request.status == RequestStatus.SEARCHING and not request.waiting:
            return  # searching already: this is no news (the same event again, under another id)
        if request and follows(RequestStatus(request.status), RequestStatus.SEARCHING):
            request.deadline = event.deadline
            await self._move(tx, request, RequestStatus.SEARCHING, ce.time)

    async def on_request_waiting(self, tx: Transaction, event: RequestWaiting, ce: CloudEvent) -> None:
        request = await self._for_update(tx, event.request_id)
        if request is None or not follows(RequestStatus(request.status), RequestStatus.SEARCHING):
            return
        waiting = {
            "reason": event.reason,
            "detail": event.detail,
            "since": ce.time.isoformat(),
            "look_again_at": event.look_again_at.isoformat(),
        }
        if request.status == RequestStatus.SEARCHING and same_wait(request.waiting, waiting):
            return  # waiting for the same reason until the same time: no news
        request.deadline, request.waiting = event.deadline, waiting
        await self._move(tx, request, RequestStatus.SEARCHING, ce.time, reason=f"waiting: {event.reason}")

    async def on_offer_proposed(self, tx: Transaction, event: OfferProposed, ce: CloudEvent) -> None:
        request = await self._for_update(tx, event.request_id)
        if request and follows(RequestStatus(request.status), RequestStatus.OFFERED):
            request.explanation = [e.model_dump(mode="json") for e in event.explanation]
            request.waiting = None
            if request.status != RequestStatus.OFFERED:  # a second parallel offer is no news to the regulator
                await self._move(tx, request, RequestStatus.OFFERED, ce.time)

    async def on_appointment_confirmed(self, tx: Transaction, event: AppointmentConfirmed, ce: CloudEvent) -> None:
        request = await self._for_update(tx, event.request_id)
        if request and follows(RequestStatus(request.status), RequestStatus.CONFIRMED):
            request.waiting = None
            request.appointment = {
                "professional": event.professional.model_dump(mode="json"),
                "site": event.site.model_dump(mode="json"),
                "start": event.start.isoformat(),
                "kind": event.kind,
                "mode": event.mode,
            }
            await self._move(tx, request, RequestStatus.CONFIRMED, ce.time)

    async def on_unresolved(self, tx: Transaction, event: RequestUnresolved, ce: CloudEvent) -> None:
        request = await self._for_update(tx, event.request_id)
        if request and follows(RequestStatus(request.status), RequestStatus.UNRESOLVED):
            request.reason, request.detail, request.waiting = event.reason, event.detail, None
            request.alternatives = [a.model_dump(mode="json", exclude_none=True) for a in event.alternatives]
            await self._move(tx, request, RequestStatus.UNRESOLVED, ce.time, reason=event.reason)

    async def _for_update(self, tx: Transaction, request_id: str) -> OrientationRequest | None:
        request = await tx.session.get(OrientationRequest, request_id, with_for_update=True)
        if request is None:
            log.warning("event for an unknown request ignored")
        return request


def callback_payload(request: OrientationRequest, event_id: str, at: datetime) -> dict[str, Any]:
    """What the regulator receives: the request's new status, as GET /v1/requests/{id} shows it."""
    payload: dict[str, Any] = {
        "event_id": event_id,
        "request_id": request.external_id,  # the regulator's own id
        "correlation_id": request.correlation_id,
        "status": request.status,
        "at": at.isoformat(),
    }
    if request.appointment:
        payload["appointment"] = request.appointment
    if request.reason:
        payload |= {"reason": request.reason, "detail": request.detail}
    if request.alternatives:
        payload["alternatives"] = request.alternatives
    if request.waiting and request.status == "searching":
        payload["waiting"] = request.waiting
    return payload
