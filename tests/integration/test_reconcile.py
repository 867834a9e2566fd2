"""The safety net: a request stuck on a service's side has its events published again, with back-off."""

from __future__ import annotations

from sqlalchemy import text

from services.common.reconcile import Reconciler
from services.intake import entrypoint as intake
from services.matcher import entrypoint as matcher
from services.notifier import entrypoint as notifier
from tests.integration.helpers import migrated

ROW = (
    "INSERT INTO orientation_request (request_id, fingerprint, received_at, urgency, motive, lat, lon, "
    "teleconsultation_ok, status, created_at, updated_at) VALUES (:id, 'f', now(), '48h', 'general', 46.2, -0.1, "
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
