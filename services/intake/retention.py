"""The patient's data kept only as long as it serves (docs/personal-data.md): erasure on
request or at the end of retention, contacts once no page may show them, and the contacts
written before encryption at rest encrypted."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from schemas.events import PatientErased
from schemas.topics import Topics
from services.common import audit, metrics
from services.common.audit import SYSTEM, Actor
from services.common.db import Database, Transaction
from services.common.patient import contact_kept_until
from services.common.sealing import Vault
from services.intake import repository
from services.intake.models import OrientationRequest

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Retention:
    """How long the patient's data is kept (settings: docs/personal-data.md)."""

    after_end: timedelta = timedelta(hours=2)  # CONTACT_RETENTION_AFTER_END_HOURS
    patient_data: timedelta = timedelta(days=7)  # PATIENT_DATA_RETENTION_DAYS


DEFAULT_RETENTION = Retention()


async def erase_patient(
    tx: Transaction, topics: Topics, vault: Vault, request: OrientationRequest, by: Actor, now: datetime, why: str
) -> None:
    """The contact deleted and the request's key destroyed (nothing sealed under it, in any
    topic, can be opened again); the other services told through `PatientErased`."""
    await repository.delete_contact(tx.session, request_id=request.request_id)
    await vault.destroy(tx.session, request.request_id)
    request.patient_erased_at, request.contact_erased_at = now, request.contact_erased_at or now
    await audit.record(tx.session, by, "patient.erased", request.request_id, now, detail=why)
    tx.emit(topics.requests, PatientErased(request_id=request.request_id, erased_at=now), now)
    tx.after_commit.append(lambda: metrics.PATIENT_DATA_ERASED.labels("patient", why).inc())


class RetentionSweep:
    """One round of retention at a time per process (a timer in every process; rows are claimed
    with SKIP LOCKED, so that processes share the work)."""

    def __init__(
        self, db: Database, topics: Topics, vault: Vault, clock: Callable[[], datetime], retention: Retention
    ) -> None:
        self.db, self.topics, self.vault, self.clock, self.retention = db, topics, vault, clock, retention

    async def apply(self, batch: int = 200) -> dict[str, int]:
        """Contacts that no page may show any more, then every detail of requests past
        PATIENT_DATA_RETENTION_DAYS, then contacts not yet encrypted. Returns what it did."""
        contacts = 0
        while erased := await self._erase_shown_contacts(batch):  # until a round finds none due
            contacts += erased
        patients = 0
        while (found := await self._erase_old_patients(batch)) == batch:
            patients += found
        patients += found
        sealed = await self.seal_old_contacts(batch)
        if contacts or patients or sealed:
            log.info("retention applied", contacts_erased=contacts, patients_erased=patients, contacts_sealed=sealed)
        return {"contacts": contacts, "patients": patients, "sealed": sealed}

    async def _erase_old_patients(self, batch: int) -> int:
        now = self.clock()
        async with self.db.transaction() as tx:
            due = await repository.patient_data_received_before(
                tx.session, before=now - self.retention.patient_data, limit=batch
            )
            for request in due:
                await erase_patient(tx, self.topics, self.vault, request, SYSTEM, now, "retention")
        return len(due)

    async def _erase_shown_contacts(self, batch: int) -> int:
        """Contacts of requests that ended: after an appointment, once its page stopped showing
        it (a day at least after it); without one, CONTACT_RETENTION_AFTER_END_HOURS after the end."""
        now, erased = self.clock(), 0
        async with self.db.transaction() as tx:
            ended = await repository.contacts_maybe_done(
                tx.session,
                appointment_before=now - timedelta(days=1),
                ended_before=now - self.retention.after_end,
                limit=batch,
            )
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
                await repository.delete_contact(tx.session, request_id=request.request_id)
                request.contact_erased_at = now
                await audit.record(tx.session, SYSTEM, "contact.erased", request.request_id, now, detail="retention")
                erased += 1
        metrics.PATIENT_DATA_ERASED.labels("contact", "retention").inc(erased)
        return erased

    async def seal_old_contacts(self, batch: int) -> int:
        """Contacts written before they were encrypted at rest (intake_0008), encrypted now."""
        async with self.db.transaction() as tx:
            rows = await repository.unsealed_contacts(tx.session, limit=batch)
            for row in rows:
                row.sealed = self.vault.keys.encrypt(json.dumps({"name": row.name, "phone": row.phone}))
                row.name = row.phone = None
        return len(rows)
