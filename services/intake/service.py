"""The intake's use cases: receive, follow, cancel and erase requests. The matcher's news is
applied in `news.py`, status moves and callbacks in `status.py`, retention in `retention.py`."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from schemas.events import PatientDetails, RequestCancelled, RequestReceived
from schemas.topics import Topics
from services.common import audit
from services.common.audit import SYSTEM, Actor
from services.common.clock import utcnow
from services.common.db import Database
from services.common.outbound import OutboundPolicy
from services.common.patient import age_band
from services.common.sealing import Vault, seal_with
from services.intake import repository
from services.intake.callbacks import CallbackSecrets
from services.intake.domain import (
    CannotCancel,
    RequestConflict,
    RequestNotFound,
    RequestStatus,
    check_received_at,
    deadline_of,
    fingerprint,
    internal_id,
    legacy_fingerprint,
)
from services.intake.models import OrientationRequest, PatientContact, RequestHistory
from services.intake.news import MatcherNews
from services.intake.retention import DEFAULT_RETENTION, Retention, RetentionSweep, erase_patient
from services.intake.status import StatusMoves

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
    posted_by: Actor | None = None  # for the audit trail: the key's client, or the console's account

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
        retention: Retention = DEFAULT_RETENTION,
        wake_callbacks: Callable[[], None] | None = None,
    ) -> None:
        """Built whole with its parts: status moves (and callbacks), the matcher's news, the
        retention sweep. `wake_callbacks` pokes the callback dispatcher (a Pump) when one is due."""
        self.db, self.topics, self.vault, self.clock = db, topics, vault, clock
        self.fingerprint_key = fingerprint_key  # SECRET_KEY: never leaves the service
        self.moves = StatusMoves(db, secrets, outbound, clock, wake_callbacks)
        self.news = MatcherNews(self.moves)
        self.retention = RetentionSweep(db, topics, vault, clock, retention)

    async def apply_retention(self, batch: int = 200) -> dict[str, int]:
        """One round of retention (see RetentionSweep.apply)."""
        return await self.retention.apply(batch)

    async def submit(self, new: NewRequest) -> tuple[OrientationRequest, bool]:
        """Record a request and announce it; the same request again changes nothing.

        Returns the request and whether it was created now. Raises RequestConflict when the
        id is known with a different body.
        """
        print_ = fingerprint(new.body, self.fingerprint_key)
        async with self.db.transaction() as tx:
            # one id posted at once by one or two organisations: one at a time
            await repository.one_posting_at_a_time(tx.session, request_id=new.request_id)
            existing = await repository.owned(
                tx.session, organisation=new.organisation, request_id=new.request_id, lock=True
            )
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
            await audit.record(tx.session, new.posted_by or SYSTEM, "request.posted", request_id, now)
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

    async def get(
        self, request_id: str, organisation: str | None = None, reader: Actor | None = None
    ) -> tuple[OrientationRequest, list[RequestHistory]]:
        """A request and its history, as its organisation (or an admin: None) may see it; a
        `reader` is recorded in the audit trail."""
        async with self.db.transaction() as tx:
            request = await repository.owned(tx.session, organisation=organisation, request_id=request_id)
            if request is None:
                raise RequestNotFound(request_id)
            history = await repository.history_of(tx.session, request_id=request.request_id)
            if reader is not None:
                await audit.record(tx.session, reader, "request.read", request.request_id, self.clock())
            return request, history

    async def cancel(
        self, request_id: str, organisation: str | None = None, by: Actor = audit.SYSTEM
    ) -> OrientationRequest:
        async with self.db.transaction() as tx:
            request = await repository.owned(tx.session, organisation=organisation, request_id=request_id, lock=True)
            if request is None:
                raise RequestNotFound(request_id)
            request_id = request.request_id
            await audit.record(tx.session, by, "request.cancelled", request_id, self.clock())
            if request.status == RequestStatus.CANCELLED:
                return request
            if request.status == RequestStatus.UNRESOLVED:
                raise CannotCancel(f"request {request_id} already ended unresolved ({request.reason})")
            now = self.clock()
            request.reason, request.detail, request.asked = "cancelled", "cancelled by the regulator", None
            await self.moves.move(tx, request, RequestStatus.CANCELLED, now, reason="cancelled")
            tx.emit(self.topics.requests, RequestCancelled(request_id=request_id, cancelled_at=now), now)
        log.info("request cancelled", request_id=request_id)
        return request

    async def recent(self, organisation: str, limit: int = 100) -> list[OrientationRequest]:
        """The organisation's latest requests, newest first (the console's list; no patient data)."""
        async with self.db.transaction() as tx:
            return await repository.recent_of(tx.session, organisation=organisation, limit=limit)

    async def end_unsearched(self) -> int:
        """A safety net: a request still `received` when its deadline passed was never searched
        (the matcher never answered, even with the request published again): it ends unresolved
        with a reason, and the matcher is told it is cancelled should the request reach it late."""
        now = self.clock()
        async with self.db.transaction() as tx:  # 24 h: the shortest deadline
            waiting = await repository.received_before(tx.session, before=now - timedelta(hours=24), limit=100)
            ended = [r for r in waiting if deadline_of(r.received_at, r.urgency, r.motive) <= now]
            for request in ended:
                request.reason = "deadline_cannot_be_met"
                request.detail = "the search never started before the deadline: the matcher did not answer"
                await self.moves.move(tx, request, RequestStatus.UNRESOLVED, now, reason=request.reason)
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
        if row.sealed is None:  # written before encryption (see RetentionSweep.seal_old_contacts)
            return Contact(row.name, row.phone)
        opened = json.loads(self.vault.keys.decrypt(row.sealed) or "{}")
        return Contact(opened.get("name"), opened.get("phone"))

    async def erase(self, request_id: str, organisation: str | None = None, by: Actor = SYSTEM) -> OrientationRequest:
        """Erase the patient's contact and details everywhere: here at once (with the request's
        key, so that nothing sealed under it in any topic can be opened again), in the other
        services through `PatientErased`. Asking again changes nothing."""
        async with self.db.transaction() as tx:
            request = await repository.owned(tx.session, organisation=organisation, request_id=request_id, lock=True)
            if request is None:
                raise RequestNotFound(request_id)
            if request.patient_erased_at is None:
                await erase_patient(tx, self.topics, self.vault, request, by, self.clock(), "asked")
        log.info("patient data erased", request_id=request.request_id)
        return request

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
            request = await repository.owned(tx.session, organisation=organisation, request_id=request_id)
            if request is None:
                raise RequestNotFound(request_id)
            found = await audit.entries(tx.session, [request.request_id], action, limit)
        if organisation is not None:
            for item in found:
                item["request_id"] = request.external_id
        return found
