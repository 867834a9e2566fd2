"""A resting consumer fetches nothing until woken, then takes what was published at once; a look
on its own comes after `look_every` anyway (services/common/consumer_rest.py), on the real broker."""

from __future__ import annotations

import asyncio
import uuid

from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage

from services.common.consumer_rest import ConsumerRest
from tests.integration.helpers import eventually, publish_raw


async def _resting_consumer(bootstrap: str, rest: ConsumerRest) -> tuple[KafkaBroker, str, list[bytes]]:
    topic = f"rest-{uuid.uuid4().hex[:8]}"
    received: list[bytes] = []
    broker = KafkaBroker(bootstrap)
    subscriber = broker.subscriber(
        topic,
        group_id=f"g-{topic}",
        batch=True,
        max_records=50,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=10,
        ack_policy=AckPolicy.ACK,
    )

    @subscriber
    async def take(_: list[bytes], message: KafkaMessage) -> None:
        received.extend(record.value for record in message.raw_message)  # type: ignore[union-attr]

    rest.watch(subscriber)
    await publish_raw(bootstrap, topic, [(None, b"first")])  # the topic exists before the group joins
    await broker.start()
    assert await eventually(lambda: _has(received, b"first"), timeout=20)
    return broker, topic, received


async def _has(received: list[bytes], value: bytes) -> bool:
    return value in received


async def test_a_resting_consumer_takes_nothing_until_woken(kafka_bootstrap: str) -> None:
    rest = ConsumerRest(rest_after=0.2, look_every=60)
    broker, topic, received = await _resting_consumer(kafka_bootstrap, rest)
    try:
        await _until_resting(rest)
        await publish_raw(kafka_bootstrap, topic, [(None, b"while resting")])
        await asyncio.sleep(1.5)
        assert b"while resting" not in received  # no fetch while it rests: the broker was not asked
        rest.wake()
        assert await eventually(lambda: _has(received, b"while resting"), timeout=2)
    finally:
        await broker.stop()


async def test_a_resting_consumer_looks_on_its_own_after_a_while(kafka_bootstrap: str) -> None:
    rest = ConsumerRest(rest_after=0.2, look_every=1.0)
    broker, topic, received = await _resting_consumer(kafka_bootstrap, rest)
    try:
        await _until_resting(rest)
        await publish_raw(kafka_bootstrap, topic, [(None, b"nobody woke it")])
        assert await eventually(lambda: _has(received, b"nobody woke it"), timeout=5)
    finally:
        await broker.stop()


async def _until_resting(rest: ConsumerRest) -> None:
    resting = rest.rests

    async def rested() -> bool:
        return rest.rests > resting

    assert await eventually(rested, timeout=5)
