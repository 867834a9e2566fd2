"""Consumers on the real broker: a redelivery does nothing, bad messages are dead-lettered."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from faststream.kafka import KafkaBroker
from sqlalchemy import func, select, text

from schemas.events import CloudEvent, DeadLetter, RequestReceived
from services.common.access.registry import ClientRegistry
from services.common.clock import utcnow
from services.common.context import Context
from services.common.db import Transaction
from services.common.messaging import (
    EventConsumer,
    Handler,
    SharedConsumer,
    ensure_topics,
    make_broker,
    subscriber_options,
)
from services.common.runtime import Runtime
from services.common.settings import Settings
from services.matcher import entrypoint as matcher
from services.matcher.adapters.models import SearchRecord
from tests.integration.helpers import (
    event_bytes,
    eventually,
    fresh_topics,
    migrated,
    publish_raw,
    read_topic,
    vault_for_tests,
)


def received(request_id: str) -> RequestReceived:
    return RequestReceived(
        request_id=request_id,
        received_at=utcnow(),
        urgency="48h",
        motive="general",
        commune_insee="79174",
    )


async def test_redelivered_event_changes_nothing_and_poison_goes_to_dead_letters(
    database_url: str, kafka_bootstrap: str
) -> None:
    topics = fresh_topics()
    settings = Settings(topic_prefix=topics.prefix, secret_key="x", regulator_api_keys="k")
    clients = ClientRegistry(Context.schema_database(database_url, "access"))
    ctx = Context(settings, database_url, topics, utcnow, b"x", clients, vault_for_tests())
    part = matcher.build(ctx).part
    runtime = Runtime(settings, make_broker(settings, kafka_bootstrap), kafka_bootstrap, topics, [part], clients)
    await runtime.start()
    try:
        first, first_bytes = event_bytes(received("REQ-1"))
        _, last_bytes = event_bytes(received("REQ-2"))
        bad_data = CloudEvent.wrap(received("REQ-X"), source="/t", time=utcnow()).model_dump(mode="json")
        del bad_data["data"]["commune_insee"]
        await publish_raw(
            kafka_bootstrap,
            topics.requests,
            [
                ("REQ-1", first_bytes),
                ("REQ-1", first_bytes),  # the same event again: a redelivery
                ("REQ-P", b"this is not json"),
                ("REQ-U", json.dumps({**bad_data, "type": "fr.sas.orientation.nonsense.v1"}).encode()),
                ("REQ-X", json.dumps(bad_data).encode()),
                ("REQ-2", last_bytes),  # the consumer goes on after the bad ones
            ],
        )

        async def searches() -> int:
            async with part.db.transaction() as tx:
                found = await tx.session.execute(select(func.count()).select_from(SearchRecord))
                return int(found.scalar_one())

        assert await eventually(lambda: _at_least(searches, 2)) is True
        async with part.db.engine.connect() as conn:
            handled = await conn.execute(
                text("SELECT count(*) FROM processed_event WHERE event_id = :id"), {"id": first.id}
            )
            assert handled.scalar() == 1
            started = await conn.execute(
                text(
                    "SELECT count(*) FROM outbox_message WHERE key = 'REQ-1' "
                    "AND value->>'type' = 'fr.sas.orientation.search.started.v1'"
                )
            )
            assert started.scalar() == 1  # handled once: one search started, not two

        letters = [
            DeadLetter.model_validate_json(r.value or b"")
            for r in await read_topic(kafka_bootstrap, topics.dead_letters, expected=3)
        ]
        assert sorted(letter.key or "" for letter in letters) == ["REQ-P", "REQ-U", "REQ-X"]
        for letter in letters:
            assert letter.consumer == "matcher" and letter.topic == topics.requests
            assert letter.reason.startswith("undecodable event")
        by_key = {letter.key: letter for letter in letters}
        assert by_key["REQ-P"].value == "this is not json"
        assert "unknown event type" in by_key["REQ-U"].reason
        assert "commune_insee" in by_key["REQ-X"].reason
    finally:
        await runtime.stop()


async def _at_least(count: Any, n: int) -> bool:
    return bool(await count() >= n)


async def test_a_database_that_is_away_is_waited_for_not_dead_lettered(database_url: str, kafka_bootstrap: str) -> None:
    """A restart of the database is no fault of the event's: its handler is tried again, beyond
    `max_attempts`, until the database answers; only an event failing on its own content goes
    to the dead-letter topic."""
    topics = fresh_topics()
    settings = Settings(topic_prefix=topics.prefix)
    await ensure_topics(kafka_bootstrap, topics, 1)
    db = await migrated(database_url, "matcher")
    handled: list[str] = []
    refusals = {"AWAY": 6}

    async def handler(tx: Transaction, event: RequestReceived, _: CloudEvent) -> None:
        if refusals.get(event.request_id, 0) > 0:
            refusals[event.request_id] -= 1
            raise RuntimeError("could not reach the database") from ConnectionRefusedError(111, "Connection refused")
        if event.request_id == "POISON":
            raise RuntimeError("this event itself is wrong")
        handled.append(event.request_id)

    broker = KafkaBroker(kafka_bootstrap)
    consumer = EventConsumer(
        "patient", db, broker, topics, {RequestReceived: handler}, max_attempts=2, retry_delay=0.01
    )
    consumer.away_wait_max = 0.05
    broker.subscriber(topics.requests, group_id=f"{topics.prefix}patient", **subscriber_options(settings))(
        consumer.subscriber_function()
    )
    await broker.start()
    try:
        await publish_raw(
            kafka_bootstrap,
            topics.requests,
            [(key, event_bytes(received(key))[1]) for key in ("AWAY", "POISON", "AFTER")],
        )

        async def done() -> bool:
            return "AFTER" in handled

        assert await eventually(done, timeout=30)
        assert handled == ["AWAY", "AFTER"] and refusals["AWAY"] == 0  # six refusals, more than max_attempts
        [record] = await read_topic(kafka_bootstrap, topics.dead_letters, expected=1)
        assert DeadLetter.model_validate_json(record.value or b"").key == "POISON"
    finally:
        await broker.stop()
        await db.dispose()


async def test_a_handler_that_keeps_failing_is_dead_lettered_after_its_attempts(
    database_url: str, kafka_bootstrap: str
) -> None:
    topics = fresh_topics()
    settings = Settings(topic_prefix=topics.prefix)
    await ensure_topics(kafka_bootstrap, topics, 2)
    db = await migrated(database_url, "matcher")
    handled: list[str] = []

    async def handler(tx: Transaction, event: RequestReceived, _: CloudEvent) -> None:
        if event.request_id == "BROKEN":
            raise RuntimeError("the database said no")
        handled.append(event.request_id)

    broker = KafkaBroker(kafka_bootstrap)
    consumer = EventConsumer("flaky", db, broker, topics, {RequestReceived: handler}, max_attempts=3, retry_delay=0.01)

    broker.subscriber(topics.requests, group_id=f"{topics.prefix}flaky", **subscriber_options(settings))(
        consumer.subscriber_function()
    )
    await broker.start()
    try:
        await publish_raw(
            kafka_bootstrap,
            topics.requests,
            [
                ("BROKEN", event_bytes(received("BROKEN"))[1]),
                ("BROKEN", event_bytes(received("OK-AFTER"))[1]),  # same partition, behind the broken one
            ],
        )

        async def done() -> bool:
            return "OK-AFTER" in handled

        assert await eventually(done, timeout=30)
        [record] = await read_topic(kafka_bootstrap, topics.dead_letters, expected=1)
        letter = DeadLetter.model_validate_json(record.value or b"")
        assert letter.consumer == "flaky" and letter.attempts == 3
        assert "the database said no" in letter.reason
        assert handled == ["OK-AFTER"]
        async with db.engine.connect() as conn:  # the failed attempts left nothing behind
            rows = await conn.execute(text("SELECT count(*) FROM processed_event WHERE consumer = 'flaky'"))
            assert rows.scalar() == 1
    finally:
        await broker.stop()
        await db.dispose()
    assert utcnow() - letter.failed_at < timedelta(minutes=5)


async def test_a_backlog_is_handled_in_batches_and_a_failing_event_does_not_hold_up_its_batch(
    database_url: str, kafka_bootstrap: str
) -> None:
    """Events waiting on the broker are handled many to a transaction; when one of them fails,
    the others of its batch are handled alone and the failing one is dead-lettered."""
    topics = fresh_topics()
    settings = Settings(topic_prefix=topics.prefix)
    await ensure_topics(kafka_bootstrap, topics, 1)
    db = await migrated(database_url, "matcher")
    transactions: dict[str, Transaction] = {}  # kept alive, so that their ids stay distinct

    async def handler(tx: Transaction, event: RequestReceived, _: CloudEvent) -> None:
        if event.request_id == "BROKEN":
            raise RuntimeError("no")
        transactions[event.request_id] = tx

    events = [event_bytes(received(f"REQ-{i}")) for i in range(40)]
    await publish_raw(
        kafka_bootstrap,
        topics.requests,
        [(f"REQ-{i}", raw) for i, (_, raw) in enumerate(events[:20])]
        + [("BROKEN", event_bytes(received("BROKEN"))[1])]
        + [(f"REQ-{i + 20}", raw) for i, (_, raw) in enumerate(events[20:])]
        + [("REQ-0", events[0][1])],  # a redelivery of the first
    )
    broker = KafkaBroker(kafka_bootstrap)
    consumer = EventConsumer("batch", db, broker, topics, {RequestReceived: handler}, max_attempts=2, retry_delay=0.01)
    broker.subscriber(topics.requests, group_id=f"{topics.prefix}batch", **subscriber_options(settings))(
        consumer.subscriber_function()
    )
    await broker.start()
    try:

        async def all_handled() -> bool:
            return len(transactions) == 40

        assert await eventually(all_handled, timeout=30)
        [record] = await read_topic(kafka_bootstrap, topics.dead_letters, expected=1)
        assert DeadLetter.model_validate_json(record.value or b"").key == "BROKEN"
        assert len({id(tx) for tx in transactions.values()}) <= 10  # many events to a transaction, the broken one too
        async with db.engine.connect() as conn:
            rows = await conn.execute(text("SELECT count(*) FROM processed_event WHERE consumer = 'batch'"))
            assert rows.scalar() == 40  # each once, the redelivery ignored, nothing for the broken one
    finally:
        await broker.stop()
        await db.dispose()


async def test_shared_consumer_gives_each_member_its_own_topics(database_url: str, kafka_bootstrap: str) -> None:
    """The services of one process behind one Kafka consumer: each member sees the records of
    its topics only, remembers them under its own name and dead-letters what it cannot read."""
    topics = fresh_topics()
    settings = Settings(topic_prefix=topics.prefix)
    await ensure_topics(kafka_bootstrap, topics, 2)
    db = await migrated(database_url, "matcher")
    seen: dict[str, list[str]] = {"on-requests": [], "on-matching": []}

    def recorder(name: str) -> Handler:
        async def handle(tx: Transaction, event: RequestReceived, _: CloudEvent) -> None:
            seen[name].append(event.request_id)

        return handle

    await publish_raw(
        kafka_bootstrap,
        topics.requests,
        [(f"R-{i}", event_bytes(received(f"R-{i}"))[1]) for i in range(10)] + [("R-bad", b"{not json")],
    )
    await publish_raw(
        kafka_bootstrap, topics.matching, [(f"M-{i}", event_bytes(received(f"M-{i}"))[1]) for i in range(5)]
    )
    broker = KafkaBroker(kafka_bootstrap)
    members = [
        (
            frozenset({topics.requests}),
            EventConsumer("on-requests", db, broker, topics, {RequestReceived: recorder("on-requests")}),
        ),
        (
            frozenset({topics.matching}),
            EventConsumer("on-matching", db, broker, topics, {RequestReceived: recorder("on-matching")}),
        ),
    ]
    broker.subscriber(
        topics.requests, topics.matching, group_id=f"{topics.prefix}shared", **subscriber_options(settings)
    )(SharedConsumer(members).subscriber_function())
    await broker.start()
    try:

        async def all_handled() -> bool:
            return len(seen["on-requests"]) == 10 and len(seen["on-matching"]) == 5

        assert await eventually(all_handled, timeout=30)
        assert sorted(seen["on-requests"]) == sorted(f"R-{i}" for i in range(10))
        assert sorted(seen["on-matching"]) == sorted(f"M-{i}" for i in range(5))
        [record] = await read_topic(kafka_bootstrap, topics.dead_letters, expected=1)
        letter = DeadLetter.model_validate_json(record.value or b"")
        assert (letter.consumer, letter.topic) == ("on-requests", topics.requests)
        async with db.engine.connect() as conn:
            rows = await conn.execute(text("SELECT consumer, count(*) FROM processed_event GROUP BY consumer"))
            assert dict(rows.all()) == {"on-requests": 10, "on-matching": 5}
    finally:
        await broker.stop()
        await db.dispose()
