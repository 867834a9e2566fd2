"""Retention by itself (docs/personal-data.md): under a moved clock, the contact goes once no
page may show it, every detail after PATIENT_DATA_RETENTION_DAYS, and a sweeper started again
(a restart) goes on from what the database says."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import text

from schemas.events import PatientDetails
from services.common.access.registry import ClientRegistry
from services.common.context import Context
from services.common.outbound import OutboundPolicy
from services.intake.callbacks import CallbackSecrets
from services.intake.retention import Retention
from services.intake.service import IntakeService, NewRequest
from tests.conftest import TUESDAY_MORNING, FakeClock
from tests.integration.helpers import fresh_topics, migrated, vault_for_tests

RULES = Retention(after_end=timedelta(hours=2), patient_data=timedelta(days=7))


def new_request(request_id: str, clock: FakeClock) -> NewRequest:
    return NewRequest(
        request_id,
        clock.now,
        "48h",
        "general",
        "79191",
        PatientDetails(lat=46.3, lon=-0.46, age=67, sex="F"),
        callback_url=None,
        correlation_id=None,
        teleconsultation_ok=False,
        contact_name=f"Patient {request_id}",
        contact_phone="0600000000",
        body={"id": request_id},
    )


async def test_contacts_then_details_go_by_themselves(database_url: str) -> None:
    db = await migrated(database_url, "intake")
    clients = ClientRegistry(Context.schema_database(database_url, "access"))
    await clients.start()
    clock = FakeClock(TUESDAY_MORNING)

    def service() -> IntakeService:
        return IntakeService(
            db, fresh_topics(), CallbackSecrets(clients, ""), OutboundPolicy(), vault_for_tests(), clock, b"k", RULES
        )

    first = service()
    try:
        for request_id in ("SEEN", "ENDED", "STILL"):
            await first.submit(new_request(request_id, clock))
        appointment = TUESDAY_MORNING + timedelta(hours=6)  # Tuesday 15:00 Paris
        async with db.engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE orientation_request SET status = 'confirmed', updated_at = :at, "
                    "appointment = CAST(:appointment AS jsonb) WHERE request_id = 'SEEN'"
                ),
                {"at": clock.now, "appointment": f'{{"start": "{appointment.isoformat()}"}}'},
            )
            await conn.execute(
                text(
                    "UPDATE orientation_request SET status = 'unresolved', updated_at = :at WHERE request_id = 'ENDED'"
                ),
                {"at": clock.now},
            )
            await conn.execute(  # a contact written before contacts were encrypted
                text(
                    "UPDATE patient_contact SET sealed = NULL, name = 'Old Plain', phone = '0611' "
                    "WHERE request_id = 'STILL'"
                )
            )

        async def contacts() -> set[str]:
            async with db.engine.connect() as conn:
                return set((await conn.execute(text("SELECT request_id FROM patient_contact"))).scalars())

        async def state(request_id: str) -> dict[str, Any]:
            async with db.engine.connect() as conn:
                row = await conn.execute(
                    text(
                        "SELECT contact_erased_at, patient_erased_at, age_band, commune_insee "
                        "FROM orientation_request WHERE request_id = :id"
                    ),
                    {"id": request_id},
                )
                return dict(row.mappings().one())

        clock.advance(hours=1)  # within the 2 h after the end: nothing yet, but the old contact is encrypted
        assert await first.apply_retention() == {"contacts": 0, "patients": 0, "sealed": 1}
        assert (await first.contact("STILL")) is not None and (await first.contact("STILL")).name == "Old Plain"  # type: ignore[union-attr]
        async with db.engine.connect() as conn:
            plain = await conn.execute(text("SELECT count(*) FROM patient_contact WHERE name IS NOT NULL"))
            assert plain.scalar_one() == 0

        clock.advance(hours=1, minutes=1)  # ENDED: 2 h after its end; SEEN: its page still shows the contact
        assert await first.apply_retention() == {"contacts": 1, "patients": 0, "sealed": 0}
        assert await contacts() == {"SEEN", "STILL"}
        assert (await state("ENDED"))["contact_erased_at"] is not None

        restarted = service()  # a new process: nothing kept in memory
        clock.now = appointment + timedelta(days=1, hours=8)  # Wednesday 23:00 Paris: the day after is not over
        assert (await restarted.apply_retention())["contacts"] == 0
        clock.now = appointment + timedelta(days=1, hours=9, minutes=1)  # Thursday 00:01 Paris
        assert (await restarted.apply_retention())["contacts"] == 1
        assert await contacts() == {"STILL"}  # still being handled: kept
        assert (await restarted.contact("SEEN")) is None

        clock.now = TUESDAY_MORNING + timedelta(days=7, minutes=1)
        assert (await restarted.apply_retention())["patients"] == 3
        assert await contacts() == set()
        for request_id in ("SEEN", "ENDED", "STILL"):
            kept = await state(request_id)
            assert kept["patient_erased_at"] == clock.now and kept["age_band"] == "60-69" and kept["commune_insee"]
        async with db.engine.connect() as conn:
            keys = await conn.execute(
                text("SELECT count(*) FROM access.request_key WHERE request_id IN ('SEEN', 'ENDED', 'STILL')")
            )
            assert keys.scalar_one() == 0
            told = await conn.execute(
                text("SELECT count(*) FROM outbox_message WHERE value->>'type' LIKE '%patient.erased.v1'")
            )
            assert told.scalar_one() == 3  # every service is told
            trail = await conn.execute(
                text(
                    "SELECT action, count(*) FROM access.audit_entry WHERE request_id IN ('SEEN', 'ENDED', 'STILL') "
                    "AND actor_kind = 'system' AND action LIKE '%.erased' GROUP BY action"
                )
            )
            assert {row[0]: row[1] for row in trail} == {"contact.erased": 2, "patient.erased": 3}
        assert await restarted.apply_retention() == {"contacts": 0, "patients": 0, "sealed": 0}  # nothing twice
        await restarted.moves.close()
    finally:
        await first.moves.close()
        await clients.dispose()
        await db.dispose()
