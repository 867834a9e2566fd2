"""Kafka consumers that rest when nothing comes, and are woken when an event is published.

The embedded broker answers a waiting fetch only when its wait runs out, so a consumer that must
see an event within milliseconds asks every few milliseconds: measured, 0.4 core of the service
and the broker together on an idle machine, for nothing. A resting consumer found nothing for
`rest_after` seconds: it pauses its partitions (no fetch at all, only the group's heartbeats)
until it is woken, or at the latest after `look_every` seconds (an event published by someone
else than the services: a test, a hand). Every outbox relay says, through PostgreSQL
(`NOTIFY events_published`, services/common/relay.py), that it has just published; every process
listening wakes all its consumers, which fetch at once.

Against Kafka, which answers a waiting fetch as soon as a record arrives, nothing rests
(`CONSUMER_REST_AFTER_MS=0`, the default there): the usual long fetch costs nothing when idle.
"""

from __future__ import annotations

import asyncio
import contextlib
from itertools import chain
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.errors import IllegalStateError

GLANCE = 0.05  # seconds: how long a look on its own waits for records (a few fetches)


class ConsumerRest:
    def __init__(self, rest_after: float, look_every: float) -> None:
        self.rest_after, self.look_every = rest_after, look_every
        self._wakes: list[asyncio.Event] = []
        self.rests = 0  # how many times a consumer paused (for tests and curiosity)

    @property
    def enabled(self) -> bool:
        return self.rest_after > 0

    def wake(self) -> None:
        """Something was published: every resting consumer of this process fetches now."""
        for event in self._wakes:
            event.set()

    def watch(self, subscriber: Any) -> None:
        """Before the broker starts: this FastStream batch subscriber takes its records through
        `_take` below instead of its own loop, which looks again every few milliseconds."""
        if not self.enabled:
            return
        woken = asyncio.Event()
        self._wakes.append(woken)
        max_records = subscriber.max_records

        async def get_msg(consumer: AIOKafkaConsumer) -> tuple[ConsumerRecord[bytes, bytes], ...]:
            return await self._take(consumer, woken, max_records)

        subscriber.get_msg = get_msg  # FastStream's consume loop calls it for each batch

    async def _take(
        self, consumer: AIOKafkaConsumer, woken: asyncio.Event, max_records: int
    ) -> tuple[ConsumerRecord[bytes, bytes], ...]:
        looking = bool(consumer.paused()) and not woken.is_set()  # the rest ended by time, not by a wake
        _resume(consumer)
        woken.clear()  # a wake from now on is not lost: it ends the rest below at once
        # a look on its own needs one fetch to know that nothing came; after a wake the consumer
        # stays awake for rest_after (more is likely to follow)
        awake = min(self.rest_after, GLANCE) if looking else self.rest_after
        found = await consumer.getmany(timeout_ms=int(awake * 1000), max_records=max_records)
        if found:
            return tuple(chain.from_iterable(found.values()))
        _pause(consumer)  # until the next call, which FastStream's loop makes right after this one
        self.rests += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(woken.wait(), self.look_every)
        return ()


def _pause(consumer: AIOKafkaConsumer) -> None:
    for partition in consumer.assignment():
        with contextlib.suppress(IllegalStateError):  # no longer ours: a rebalance under way
            consumer.pause(partition)


def _resume(consumer: AIOKafkaConsumer) -> None:
    """Every paused partition (nothing else pauses them), those of a rebalance under way aside."""
    for partition in consumer.paused():
        with contextlib.suppress(IllegalStateError):
            consumer.resume(partition)
