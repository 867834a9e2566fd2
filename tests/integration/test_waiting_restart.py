"""A waiting request survives a `kill -9` of the matcher: the process that comes back serves it
as soon as a professional can take it (a slot published meanwhile, through another process)."""

from __future__ import annotations

import signal
import tempfile
from datetime import timedelta
from pathlib import Path

from sqlalchemy import text

from tests.integration.helpers import (
    MELLE_SITE,
    always_open_directory,
    equals,
    event_bytes,
    eventually,
    fresh_topics,
    migrated,
    publish_raw,
    skip_when_every_practice_is_closed,
    start_matcher,
    wait_healthy,
)
from tests.integration.test_consumer import received


async def test_a_waiting_request_is_served_after_the_matcher_was_killed(
    database_url: str, kafka_bootstrap: str
) -> None:
    skip_when_every_practice_is_closed()
    topics = fresh_topics()
    db = await migrated(database_url, "matcher")
    directory, start = await always_open_directory(db, topics)
    site = MELLE_SITE
    for rpps in ("71000000001", "71000000002"):
        await directory.professionals.put(rpps, {"name": f"Dr {rpps}", "profession": "general_practitioner"}, [site])
    await directory.slots.put("only", "71000000001", "main", start, start + timedelta(minutes=20), "in_person")

    async def status_of(request_id: str) -> str | None:
        async with db.engine.connect() as conn:
            found = await conn.execute(text("SELECT status FROM search WHERE request_id = :r"), {"r": request_id})
            return found.scalar()

    log = Path(tempfile.mkstemp(suffix=".log")[1])
    process, port = start_matcher(database_url, kafka_bootstrap, topics.prefix, log)
    try:
        wait_healthy(port, process)
        await publish_raw(kafka_bootstrap, topics.requests, [("FIRST", event_bytes(received("FIRST"))[1])])
        assert await eventually(lambda: equals(status_of("FIRST"), "offered"))
        await publish_raw(kafka_bootstrap, topics.requests, [("SECOND", event_bytes(received("SECOND"))[1])])
        assert await eventually(lambda: equals(status_of("SECOND"), "waiting"))

        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        # meanwhile, the other professional publishes a slot (no matcher is running to hear it)
        await directory.slots.put("new", "71000000002", "main", start, start + timedelta(minutes=20), "in_person")
        process, port = start_matcher(database_url, kafka_bootstrap, topics.prefix, log)
        wait_healthy(port, process)
        assert await eventually(lambda: equals(status_of("SECOND"), "offered"), timeout=20)
        async with db.engine.connect() as conn:
            held = (await conn.execute(text("SELECT state, request_id FROM slot WHERE slot_id = 'new'"))).one()
        assert tuple(held) == ("held", "SECOND")
    finally:
        process.terminate()
        process.wait(timeout=20)
        await db.dispose()
