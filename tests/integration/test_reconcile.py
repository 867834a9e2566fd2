"""The safety net: a request stuck on a service's side has its events published again, with back-off."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from schemas.events import PatientDetails
from services.common.access.registry import ClientRegistry
from services.common.context import Context
from services.common.outbound import OutboundPolicy
from services.common.reconcile import Reconciler
from services.intake import entrypoint as intake
from services.intake.callbacks import CallbackSecrets
from services.intake.service import IntakeService, NewRequest
from services.matcher import entrypoint as matcher
from services.notifier import entrypoint as notifier
from tests.conftest import TUESDAY_MORNING, FakeClock
from tests.integration.helpers import fresh_topics, migrated, vault_for_tests

ROW = (
    "INSERT INTO orientation_request (request_id, external_id, fingerprint, received_at, urgency, motive, "
    "commune_insee, teleconsultation_ok, status, created_at, updated_at) VALUES (CAST(:id AS text), "
    "CAST(:id AS text), 'f', now(), '48h', 'general', '79174', "
    "false, :status, now() - make_interval(secs => :age), now())"
)
EVENT = (
    "INSERT INTO outbox_message (event_id, topic, key, value, created_at, published_at) "
    "VALUES (gen_random_uuid(), 't', :id, '{}', now(), now())"
)


async def test_a_request_stuck_on_the_intake_side_is_published_again_with_back_off(database_url: str) -> None:
    db = await migrated(database_url, "intake")
    try:
        async with db.engine.begin() as conn:
            for request_id, status, age in (
                ("STUCK", "received", 120),
                ("NEW", "received", 5),
                ("MOVED", "searching", 120),
            ):
                await conn.execute(text(ROW), {"id": request_id, "status": status, "age": age})
                await conn.execute(text(EVENT), {"id": request_id})
        reconciler = Reconciler(db, intake.STUCK)
        assert await reconciler.run_once() == 1

        async def unpublished() -> set[str]:
            async with db.engine.connect() as conn:
                rows = await conn.execute(text("SELECT key FROM outbox_message WHERE published_at IS NULL"))
                return {row[0] for row in rows}

        assert await unpublished() == {"STUCK"}  # the relay publishes it again; consumers skip what they had
        async with db.engine.begin() as conn:
            await conn.execute(text("UPDATE outbox_message SET published_at = now()"))
        assert await reconciler.run_once() == 0  # not again before its back-off
        assert await unpublished() == set()
    finally:
        await db.dispose()


async def test_every_service_s_stuck_query_runs_on_its_schema(database_url: str) -> None:
    for schema, query in (("intake", intake.STUCK), ("matcher", matcher.STUCK), ("notifier", notifier.STUCK)):
        db = await migrated(database_url, schema)
        try:
            assert await Reconciler(db, query).run_once() == 0
        finally:
            await db.dispose()


async def test_a_request_never_searched_ends_unresolved_when_its_deadline_passed(database_url: str) -> None:
    db = await migrated(database_url, "intake")
    clock = FakeClock(TUESDAY_MORNING)
    clients = ClientRegistry(Context.schema_database(database_url, "access"))
    await clients.start()  # the shared schema: the audit trail the intake writes to
    secrets = CallbackSecrets(clients, "")
    service = IntakeService(db, fresh_topics(), secrets, OutboundPolicy(), vault_for_tests(), clock=clock)
    try:
        for request_id, received_at in (("LOST", clock.now), ("RECENT", clock.now + timedelta(hours=30))):
            new = NewRequest(
                request_id,
                received_at,
                "48h",
                "general",
                "79174",
                PatientDetails(lat=46.2, lon=-0.1),
                callback_url=None,
                correlation_id=None,
                teleconsultation_ok=False,
                contact_name=None,
                contact_phone=None,
                body={"id": request_id},
            )
            if request_id == "RECENT":
                clock.advance(hours=30)
            await service.submit(new)
        clock.advance(hours=19)  # LOST: 49 h since received, never searched; RECENT: 19 h
        assert await service.end_unsearched() == 1
        request, history = await service.get("LOST")
        assert request.status == "unresolved" and request.reason == "deadline_cannot_be_met"
        assert history[-1].status == "unresolved"
        assert (await service.get("RECENT"))[0].status == "received"
        async with db.engine.connect() as conn:
            told = await conn.execute(text("SELECT value->>'type' FROM outbox_message WHERE key = 'LOST' ORDER BY seq"))
            assert [row[0] for row in told][-1].endswith("request.cancelled.v1")  # the matcher drops it if it comes
    finally:
        await service.moves.close()
        await clients.dispose()
        await db.dispose()
