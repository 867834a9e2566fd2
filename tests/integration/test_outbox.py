"""The transactional outbox: committed events reach Kafka, in order per request; rolled back ones never."""

from __future__ import annotations

import asyncio
import json

import pytest
from faststream.kafka import KafkaBroker
from sqlalchemy import text

from schemas.events import SearchStarted
from services.common.clock import utcnow
from services.common.messaging import ensure_topics
from services.common.relay import OutboxRelay
from tests.integration.helpers import fresh_topics, migrated, read_topic


async def test_committed_events_are_published_in_order_and_rolled_back_ones_never(
    database_url: str, kafka_bootstrap: str
) -> None:
    topics = fresh_topics()
    await ensure_topics(kafka_bootstrap, topics, 3)
    db = await migrated(database_url, "matcher")
    deadline = utcnow()
    for attempt in (1, 2, 3):
        async with db.transaction() as tx:
            tx.emit(topics.matching, SearchStarted(request_id="REQ-A", deadline=deadline, attempt=attempt))
            tx.emit(topics.matching, SearchStarted(request_id="REQ-B", deadline=deadline, attempt=attempt))
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            tx.emit(topics.matching, SearchStarted(request_id="REQ-C", deadline=deadline, attempt=1))
            raise RuntimeError("the state change failed: its event must not leave")

    broker = KafkaBroker(kafka_bootstrap)
    await broker.start()
    try:
        relay = OutboxRelay(db, broker, batch=4)
        assert await relay.backlog() == 6
        assert await relay.relay_once() == 4
        assert await relay.relay_once() == 2
        assert await relay.relay_once() == 0
        assert await relay.backlog() == 0
    finally:
        await relay.close()
        await broker.stop()

    records = await read_topic(kafka_bootstrap, topics.matching, expected=6)
    assert len(records) == 6
    by_key: dict[str, list[int]] = {}
    for record in records:
        assert record.key is not None and record.value is not None
        event = json.loads(record.value)
        assert event["specversion"] == "1.0"
        assert event["type"] == "fr.sas.orientation.search.started.v1"
        assert event["source"] == "/test/matcher"
        assert event["subject"] == record.key.decode()
        assert {"id", "time", "data"} <= event.keys()
        by_key.setdefault(record.key.decode(), []).append(event["data"]["attempt"])
    assert by_key == {"REQ-A": [1, 2, 3], "REQ-B": [1, 2, 3]}  # each request's events in commit order
    async with db.engine.connect() as conn:
        unpublished = await conn.execute(text("SELECT count(*) FROM outbox_message WHERE published_at IS NULL"))
        assert unpublished.scalar() == 0
    await db.dispose()


async def test_one_process_relays_a_schema_and_another_takes_over_when_it_goes(
    database_url: str, kafka_bootstrap: str
) -> None:
    """Two relays on one schema (two processes): only the lock holder publishes, a commit in any
    process wakes it, and when it goes the other one relays."""
    topics = fresh_topics()
    await ensure_topics(kafka_bootstrap, topics, 3)
    db = await migrated(database_url, "matcher")
    broker = KafkaBroker(kafka_bootstrap)
    await broker.start()
    first, second = OutboxRelay(db, broker), OutboxRelay(db, broker)
    second.retake_every = 0.3
    woken = asyncio.Event()
    first.on_notified = woken.set
    try:
        assert await first.relay_once() == 0 and first.leading
        assert await second.relay_once() == 0 and not second.leading
        async with db.transaction() as tx:
            tx.emit(topics.matching, SearchStarted(request_id="REQ-N", deadline=utcnow(), attempt=1))
        await asyncio.wait_for(woken.wait(), 5)  # the trigger's notification, on commit
        assert await second.relay_once() == 0  # not the relay: leaves the row alone
        assert await first.relay_once() == 1
        await first.close()
        async with db.transaction() as tx:
            tx.emit(topics.matching, SearchStarted(request_id="REQ-N", deadline=utcnow(), attempt=2))
        assert await second.relay_once() == 0  # it tried a moment ago: not again at every commit
        await asyncio.sleep(0.35)
        assert await second.relay_once() == 1 and second.leading
    finally:
        await first.close()
        await second.close()
        await broker.stop()
    records = await read_topic(kafka_bootstrap, topics.matching, expected=2)
    assert [json.loads(r.value or b"{}")["data"]["attempt"] for r in records] == [1, 2]
    await db.dispose()
