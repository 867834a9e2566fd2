"""A waiting request survives a `kill -9` of the matcher: the process that comes back serves it
as soon as a professional can take it (a slot published meanwhile, through another process)."""

from __future__ import annotations

import signal
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from services.common.clock import PARIS, utcnow
from services.matcher.directory import Directory, SiteInput
from services.matcher.domain.opening_hours import WeeklyHours, first_open_time, is_public_holiday
from tests.integration.helpers import (
    equals,
    event_bytes,
    eventually,
    fresh_topics,
    migrated,
    publish_raw,
    start_matcher,
    wait_healthy,
)
from tests.integration.test_concurrent_matchers import ALWAYS_OPEN
from tests.integration.test_consumer import received


async def test_a_waiting_request_is_served_after_the_matcher_was_killed(
    database_url: str, kafka_bootstrap: str
) -> None:
    today = utcnow().astimezone(PARIS)
    if is_public_holiday(today.date(), "79") or (today.hour == 23 and today.minute >= 58):
        pytest.skip("the matcher process runs on the real clock: every practice is closed now (a holiday)")
    topics = fresh_topics()
    db = await migrated(database_url, "matcher")

    async def nothing(_: list[str]) -> None:
        return None

    directory = Directory(db, utcnow, topics, nothing)
    now = utcnow()
    start = first_open_time(WeeklyHours.parse(ALWAYS_OPEN), now + timedelta(hours=2), now + timedelta(hours=40), "79")
    assert start is not None
    site = SiteInput("main", "Cabinet", "79174", "79", 46.208, -0.144, ALWAYS_OPEN)
    for rpps in ("71000000001", "71000000002"):
        await directory.put_professional(rpps, {"name": f"Dr {rpps}", "profession": "general_practitioner"}, [site])
    await directory.put_slot("only", "71000000001", "main", start, start + timedelta(minutes=20), "in_person")

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
        await directory.put_slot("new", "71000000002", "main", start, start + timedelta(minutes=20), "in_person")
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
