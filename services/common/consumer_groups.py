"""The Kafka consumers of a process: one per consumer group (the prompt groups of several
services sharing one Kafka consumer), each marked ready once it joined, rewound after a broker
loss, and measured (health, lag) for /healthz and /metrics."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from aiokafka.abc import ConsumerRebalanceListener
from faststream.kafka import KafkaBroker

from schemas.topics import Topics
from services.common import metrics
from services.common.consumer_rest import ConsumerRest
from services.common.db import Database
from services.common.messaging import BatchSubscriber, EventConsumer, SharedConsumer, subscriber_options
from services.common.parts import Subscription
from services.common.settings import Settings

REWIND_SECONDS = 60.0  # after a broker loss, a consumer given partitions in this time reads them from the start


class Joined(ConsumerRebalanceListener):  # type: ignore[misc]
    """Marks a consumer ready once it has joined its group (with or without partitions); after a
    broker loss, starts it at the beginning of what it is given (see ConsumerGroups.rewind)."""

    def __init__(self, function: BatchSubscriber) -> None:
        self.ready = asyncio.Event()
        self.function = function  # what handles its batches: tells whether its commits fail
        self.subscriber: Any = None  # FastStream's subscriber, once registered
        self.rewind_until = -float("inf")  # loop time until which an assignment starts at the beginning

    async def on_partitions_revoked(self, revoked: Any) -> None:
        return None

    async def on_partitions_assigned(self, assigned: Any) -> None:
        consumer = getattr(self.subscriber, "consumer", None)
        if assigned and consumer is not None and asyncio.get_running_loop().time() < self.rewind_until:
            # a new broker's group may hold offsets the old consumer committed late, past what
            # the new topics hold: everything there is to read again (handled ids are skipped)
            await consumer.seek_to_beginning(*assigned)
        self.ready.set()


class ConsumerGroups:
    def __init__(self, settings: Settings, broker: KafkaBroker, topics: Topics, rest: ConsumerRest) -> None:
        self.settings, self.broker, self.topics = settings, broker, topics
        self.rest = rest  # idle consumers stop fetching until woken (consumer_rest.py)
        self.joined: dict[str, Joined] = {}  # by subscription name (shared consumers appear under each)

    def register(self, subscriptions: Sequence[tuple[Subscription, Database]]) -> None:
        """Before the broker starts: a consumer per patient group, one shared by the prompt ones."""
        consumers = [
            (
                sub,
                EventConsumer(
                    sub.name,
                    db,
                    self.broker,
                    self.topics,
                    sub.handlers,
                    self.settings.consumer_max_attempts,
                    together=sub.together,
                ),
            )
            for sub, db in subscriptions
        ]
        prompt = [(sub, consumer) for sub, consumer in consumers if not sub.patience_ms]
        for sub, consumer in consumers:
            if sub.patience_ms:
                self._subscribe(sub.name, sub.topics, consumer, [sub], sub.patience_ms)
        if len(prompt) == 1:
            sub, consumer = prompt[0]
            self._subscribe(sub.name, sub.topics, consumer, [sub])
        elif prompt:  # one Kafka consumer for all of them (see SharedConsumer)
            shared = SharedConsumer([(frozenset(sub.topics), consumer) for sub, consumer in prompt])
            self._subscribe(
                "+".join(sub.name for sub, _ in prompt),
                sorted({topic for sub, _ in prompt for topic in sub.topics}),
                shared,
                [sub for sub, _ in prompt],
            )

    def _subscribe(
        self,
        group: str,
        topics: list[str],
        function: BatchSubscriber,
        subs: list[Subscription],
        patience_ms: int = 0,
    ) -> None:
        joined = Joined(function)
        for sub in subs:
            self.joined[sub.name] = joined
        joined.subscriber = self.broker.subscriber(
            *topics,
            group_id=f"{self.topics.prefix}{group}",
            listener=joined,
            title=f"{group}-consumer",
            **subscriber_options(self.settings, patience_ms),
        )
        joined.subscriber(function.subscriber_function())
        self.rest.watch(joined.subscriber)

    def healthy(self) -> dict[str, bool]:
        """Each consumer group: joined, and its commits not failing for 10 s or more."""
        now = asyncio.get_running_loop().time()
        healthy = {}
        for name, joined in self.joined.items():
            failing = joined.function.commit_failing_since
            healthy[name] = joined.ready.is_set() and (failing is None or now - failing < 10)
        return healthy

    async def rewind(self) -> None:
        """The broker lost its log: what the consumers were given, and what they are given for a
        while, they read from the start (past positions belong to the lost log)."""
        rewind_until = asyncio.get_running_loop().time() + REWIND_SECONDS
        for joined in {id(j): j for j in self.joined.values()}.values():
            joined.rewind_until = rewind_until
            consumer = getattr(joined.subscriber, "consumer", None)
            if consumer is not None and consumer.assignment():
                await consumer.seek_to_beginning(*consumer.assignment())
        self.rest.wake()  # a resting consumer reads what it was rewound to now

    async def measure(self) -> None:
        """Gauges read at scrape time: each group's health and lag."""
        for name, healthy in self.healthy().items():
            metrics.CONSUMER_HEALTHY.labels(name).set(1 if healthy else 0)
        for subscriber in self.broker.subscribers:
            consumer = getattr(subscriber, "consumer", None)
            if consumer is None:
                continue
            lag = 0
            with contextlib.suppress(Exception):
                for partition in consumer.assignment():
                    highwater = consumer.highwater(partition)
                    if highwater is not None:
                        lag += max(0, highwater - await consumer.position(partition))
                group = str(getattr(subscriber, "group_id", None) or "none").removeprefix(self.topics.prefix)
                metrics.CONSUMER_LAG.labels(group).set(lag)
