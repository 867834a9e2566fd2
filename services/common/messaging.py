"""Kafka plumbing: the broker, topics, the outbox relay and the event consumer.

Delivery is at least once end to end: the relay publishes committed outbox rows and marks them
only after the broker acknowledged them; a consumer commits its offset only after its own
transaction, and remembers event ids so that a redelivery changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from pydantic import ValidationError
from sqlalchemy import text

from schemas.events import CloudEvent, DeadLetter, EventData, RequestEventData, UnknownEventType
from schemas.topics import Topics
from services.common import metrics
from services.common.clock import utcnow
from services.common.db import Database, Transaction
from services.common.settings import Settings

log = structlog.get_logger(__name__)


def make_broker(settings: Settings, bootstrap_servers: str) -> KafkaBroker:
    return KafkaBroker(
        bootstrap_servers,
        enable_idempotence=settings.kafka_enable_idempotence,
        acks="all",
        client_id="sas-orientation",
        # FastStream's own per-message lines at DEBUG: ours carry more context.
        logger=logging.getLogger("faststream.sas"),
        log_level=logging.DEBUG,
    )


async def ensure_topics(bootstrap_servers: str, topics: Topics, partitions: int) -> None:
    """Create the topics with an explicit partition count (brokers may auto-create with another)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        for name in topics.all():
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


def subscriber_options(settings: Settings) -> dict[str, Any]:
    return {
        "ack_policy": AckPolicy.MANUAL,
        "auto_offset_reset": "earliest",
        "fetch_max_wait_ms": settings.fetch_max_wait_ms,
        "session_timeout_ms": settings.session_timeout_ms,
        "heartbeat_interval_ms": settings.heartbeat_interval_ms,
    }


class Pump:
    """Runs `work` again and again: right after a `poke()`, else every `interval` seconds."""

    def __init__(self, name: str, work: Callable[[], Awaitable[int]], interval: float) -> None:
        self.name = name
        self.work = work
        self.interval = interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def poke(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        failures = 0
        while True:
            self._wake.clear()
            try:
                done = await self.work()
                failures = 0
            except Exception:  # a later round retries; nothing is lost
                failures += 1
                log.exception("background work failed", pump=self.name, failures=failures)
                await asyncio.sleep(min(30.0, self.interval * 2**failures))
                continue
            if done:
                continue  # there may be more
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)


class OutboxRelay:
    """Publishes a service's committed outbox rows to Kafka, oldest first.

    One process at a time relays a given schema (a transaction-scoped advisory lock), which
    keeps each request's events in commit order; other processes simply find the lock taken.
    """

    def __init__(self, db: Database, broker: KafkaBroker, batch: int = 200) -> None:
        self.db = db
        self.broker = broker
        self.batch = batch

    async def relay_once(self) -> int:
        async with self.db.engine.connect() as conn, conn.begin():
            locked = await conn.execute(
                text("SELECT pg_try_advisory_xact_lock(hashtext(:k))"), {"k": f"outbox:{self.db.schema}"}
            )
            if not locked.scalar():
                return 0
            rows = (
                await conn.execute(
                    text(
                        "SELECT seq, topic, key, value FROM outbox_message "
                        "WHERE published_at IS NULL ORDER BY seq LIMIT :n"
                    ),
                    {"n": self.batch},
                )
            ).all()
            for row in rows:
                await self.broker.publish(
                    json.dumps(row.value).encode(),
                    row.topic,
                    key=row.key.encode(),
                    headers={
                        "content-type": "application/cloudevents+json",
                        "ce_id": row.value["id"],
                        "ce_type": row.value["type"],
                    },
                )
            if rows:
                await conn.execute(
                    text("UPDATE outbox_message SET published_at = now() WHERE seq = ANY(:seqs)"),
                    {"seqs": [r.seq for r in rows]},
                )
        return len(rows)

    async def backlog(self) -> int:
        async with self.db.engine.connect() as conn:
            result = await conn.execute(text("SELECT count(*) FROM outbox_message WHERE published_at IS NULL"))
            return int(result.scalar() or 0)


Handler = Callable[[Transaction, Any, CloudEvent], Awaitable[None]]


@dataclass
class EventConsumer:
    """One consumer group's entry point: decode, skip redeliveries, handle, then commit the offset.

    A message that cannot be decoded or validated goes to the dead-letter topic at once; one
    whose handler keeps failing goes there after `max_attempts`. Either way the consumer goes on.
    Events of types this consumer has no handler for are acknowledged and ignored.
    """

    name: str
    db: Database
    broker: KafkaBroker
    topics: Topics
    handlers: Mapping[type[EventData], Handler]
    max_attempts: int = 5
    retry_delay: float = 0.2

    def __post_init__(self) -> None:
        self._attempts: dict[tuple[str, int, int], int] = {}

    def subscriber_function(self) -> Callable[[KafkaMessage], Awaitable[None]]:
        """A plain function for `broker.subscriber(...)`: FastStream hands it the raw message
        (the annotation matters) and we decode it ourselves."""

        async def consume(message: KafkaMessage) -> None:
            await self(message)

        return consume

    async def __call__(self, message: KafkaMessage) -> None:
        record = message.raw_message
        position = (record.topic, record.partition, record.offset)  # type: ignore[union-attr]
        try:
            event = CloudEvent.model_validate_json(message.body)
            data = event.payload()
        except (ValidationError, UnknownEventType, ValueError) as error:
            await self._dead_letter(message, f"undecodable event: {_short(error)}", attempts=1)
            await message.ack()
            return
        handler = self.handlers.get(type(data))
        if handler is None:
            await message.ack()
            return
        about = {"request_id": event.subject} if isinstance(data, RequestEventData) else {"subject": event.subject}
        with structlog.contextvars.bound_contextvars(
            **about, event_id=event.id, event_type=event.type, consumer=self.name
        ):
            try:
                async with self.db.transaction() as tx:
                    if await tx.first_time(self.name, event.id):
                        await handler(tx, data, event)
                        tx.after_commit.append(lambda: metrics.EVENTS_HANDLED.labels(self.name, event.type).inc())
                    else:
                        log.info("redelivered event ignored")
            except Exception as error:
                attempts = self._attempts.get(position, 0) + 1
                self._attempts[position] = attempts
                if attempts < self.max_attempts:
                    log.warning("event handling failed, will retry", attempt=attempts, error=_short(error))
                    await asyncio.sleep(self.retry_delay * attempts)
                    await message.nack()
                    return
                log.exception("event handling failed for good, dead-lettered", attempts=attempts)
                await self._dead_letter(message, f"handler failed: {_short(error)}", attempts=attempts)
            self._attempts.pop(position, None)
            await message.ack()

    async def _dead_letter(self, message: KafkaMessage, reason: str, attempts: int) -> None:
        record = message.raw_message
        key = record.key.decode(errors="replace") if record.key else None  # type: ignore[union-attr]
        letter = DeadLetter(
            consumer=self.name,
            topic=record.topic,  # type: ignore[union-attr]
            partition=record.partition,  # type: ignore[union-attr]
            offset=record.offset,  # type: ignore[union-attr]
            key=key,
            value=message.body.decode(errors="replace"),
            reason=reason,
            failed_at=utcnow(),
            attempts=attempts,
        )
        log.error("dead letter", topic=letter.topic, offset=letter.offset, reason=reason)
        metrics.DEAD_LETTERS.labels(self.name).inc()
        await self.broker.publish(
            letter.model_dump_json().encode(), self.topics.dead_letters, key=key.encode() if key else None
        )


def _short(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:500]
