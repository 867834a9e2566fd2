"""Kafka plumbing: the broker, topics, the outbox relay and the event consumer.

Delivery is at least once end to end: the relay publishes committed outbox rows and marks them
only after the broker acknowledged them; a consumer commits its offset only after its own
transaction, and remembers event ids so that a redelivery changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka import ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from pydantic import ValidationError

from schemas.events import CloudEvent, DeadLetter, EventData, RequestEventData, UnknownEventType
from schemas.topics import Topics
from services.common import metrics
from services.common.clock import utcnow
from services.common.db import Database, Transaction, database_away
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


async def ensure_topics(bootstrap_servers: str, topics: Topics, partitions: int, replication: int = 1) -> None:
    """Create the topics that are missing, with an explicit partition count (brokers may
    auto-create with another) and replication factor (TOPIC_REPLICATION_FACTOR: 3 on a
    three-broker cluster), and the one-partition epoch topic."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=5000)
    await admin.start()
    try:
        for name, count in [*((name, partitions) for name in topics.all()), (topics.epoch, 1)]:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([NewTopic(name, count, replication)])
    finally:
        await admin.close()


def subscriber_options(settings: Settings, patience_ms: int = 0) -> dict[str, Any]:
    """A batch subscriber's options; `patience_ms` > 0 for a consumer that may lag that long (it
    polls that rarely and takes bigger batches)."""
    return {
        "ack_policy": AckPolicy.MANUAL,
        "batch": True,  # see EventConsumer
        "max_records": settings.consumer_batch,
        "batch_timeout_ms": patience_ms or settings.consumer_batch_wait_ms,
        "auto_offset_reset": "earliest",
        "fetch_max_wait_ms": patience_ms or settings.fetch_max_wait_ms,
        "session_timeout_ms": settings.session_timeout_ms,
        "heartbeat_interval_ms": settings.heartbeat_interval_ms,
    }


class Pump:
    """Runs `work` again and again: right after a `poke()`, else every `interval` seconds."""

    def __init__(self, name: str, work: Callable[[], Awaitable[int]], interval: float, min_gap: float = 0.0) -> None:
        self.name = name
        self.work = work
        self.interval = interval
        self.min_gap = min_gap  # at least this long between the starts of two rounds: pokes in between gather
        self._wake = asyncio.Event()
        self._retry = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def poke(self) -> None:
        self._wake.set()

    def retry_now(self) -> None:
        """Cut short the wait after a failure: what failed has just been mended (a broker healed)."""
        self._retry.set()
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
        loop = asyncio.get_running_loop()
        started = -float("inf")
        while True:
            if self.min_gap:
                await asyncio.sleep(max(0.0, started + self.min_gap - loop.time()))
            started = loop.time()
            self._wake.clear()
            try:
                done = await self.work()
                failures = 0
            except Exception:  # a later round retries; nothing is lost
                failures += 1
                log.exception("background work failed", pump=self.name, failures=failures)
                self._retry.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._retry.wait(), min(30.0, self.interval * 2**failures))
                continue
            if done:
                continue  # there may be more
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)


Handler = Callable[[Transaction, Any, CloudEvent], Awaitable[None]]


def records_of(message: KafkaMessage) -> tuple[ConsumerRecord[bytes, bytes], ...]:
    """The raw records of what a (batch) subscriber was handed."""
    raw = message.raw_message
    return raw if isinstance(raw, tuple) else (raw,)


@dataclass(frozen=True)
class Received:
    """One record as read from Kafka: its event, or why it could not be decoded."""

    record: ConsumerRecord[bytes, bytes]
    event: CloudEvent | None = None
    data: EventData | None = None
    error: str | None = None

    @classmethod
    def decode(cls, record: ConsumerRecord[bytes, bytes]) -> Received:
        try:
            event = CloudEvent.model_validate_json(record.value or b"")
            return cls(record, event, event.payload())
        except (ValidationError, UnknownEventType, ValueError) as error:
            return cls(record, error=_short(error))


@dataclass(frozen=True)
class _Decoded:
    record: ConsumerRecord[bytes, bytes]
    event: CloudEvent
    data: EventData
    handler: Handler


class BatchSubscriber:
    """What `broker.subscriber(..., batch=True)` is given: a plain function, to which FastStream
    hands the raw batch (the annotation matters); the subclass decodes it itself in `__call__`."""

    commit_timeout = 15.0  # seconds: a commit into a topic the broker lost would be retried for ever
    commit_failing_since: float | None = None  # loop time of the first commit that failed since the last success

    async def __call__(self, message: KafkaMessage) -> None:
        raise NotImplementedError

    async def _commit(self, message: KafkaMessage) -> None:
        """Commit the batch's offsets, within `commit_timeout`. A failure leaves them to the next
        commit (commits are cumulative); health reports a commit failing for long."""
        started = asyncio.get_running_loop().time()
        try:
            await asyncio.wait_for(message.ack(), self.commit_timeout)
        except BaseException:
            if self.commit_failing_since is None:
                self.commit_failing_since = started
            raise
        self.commit_failing_since = None

    def subscriber_function(self) -> Callable[[KafkaMessage], Awaitable[None]]:
        async def consume(message: KafkaMessage) -> None:
            await self(message)

        return consume


@dataclass
class EventConsumer(BatchSubscriber):
    """One consumer group's entry point: decode, skip redeliveries, handle, then commit the offsets.

    It takes what the broker has in batches (FastStream batch subscribers) and commits the offsets
    once per batch. A batch is handled in one transaction, with one statement remembering its
    event ids, so that a busy consumer pays one commit for many events — unless `together` is
    off: handlers that lock rows other processes lock too (the matcher's claims on professionals)
    would hold many locks at once and deadlock with each other, so they commit event by event.

    When a batch fails, the events before the failing one are handled together again, the
    failing one alone (retried, then sent to the dead-letter topic after `max_attempts`), and
    the rest together. A message that cannot be decoded or validated goes to the dead-letter
    topic at once. Either way the consumer goes on. Events of types this consumer has no
    handler for are acknowledged and ignored.
    """

    name: str
    db: Database
    broker: KafkaBroker
    topics: Topics
    handlers: Mapping[type[EventData], Handler]
    max_attempts: int = 5
    retry_delay: float = 0.2
    together: bool = True  # False: one transaction per event (handlers that lock shared rows)
    away_wait_max: float = 5.0  # seconds between tries at most while the database is away

    async def __call__(self, message: KafkaMessage) -> None:
        await self.take([Received.decode(record) for record in records_of(message)])
        await self._commit(message)

    async def take(self, received: Sequence[Received]) -> None:
        """Handle a batch of decoded records (the caller commits the offsets afterwards)."""
        batch: list[_Decoded] = []
        for one in received:
            if one.error is not None or one.event is None or one.data is None:
                await self._dead_letter(one.record, f"undecodable event: {one.error}", attempts=1)
                continue
            handler = self.handlers.get(type(one.data))
            if handler is not None:
                batch.append(_Decoded(one.record, one.event, one.data, handler))
        await self._handle(batch)

    async def _handle(self, batch: list[_Decoded]) -> None:
        """Together while that works; the event whose handler failed alone (retried, then
        dead-lettered), and the ones around it together again."""
        while len(batch) > 1 and self.together:
            failed = await self._handle_together(batch)
            if failed is None:
                return
            if failed < 0:  # not one handler's doing (the commit, say): each alone
                break
            await self._handle(batch[:failed])
            await self._handle_alone(batch[failed])
            batch = batch[failed + 1 :]
        for one in batch:
            await self._handle_alone(one)

    async def _handle_together(self, batch: list[_Decoded]) -> int | None:
        """Handles the batch in one transaction; None when done, else the index of the event
        whose handler failed (-1 when the failure was not one handler's), nothing committed."""
        current = -1
        try:
            async with self.db.transaction() as tx:
                fresh = await tx.first_times(self.name, [one.event.id for one in batch])
                for index, one in enumerate(batch):
                    current = index
                    if one.event.id in fresh:
                        fresh.discard(one.event.id)  # the same event twice in one batch: once
                        with self._about(one):
                            await one.handler(tx, one.data, one.event)
                        self._count(tx, one)
                current = -1
        except Exception as error:
            log.warning("a batch of events failed", events=len(batch), failed_at=current, error=_short(error))
            return current
        return None

    async def _handle_alone(self, one: _Decoded) -> None:
        """Retried `max_attempts` times, then dead-lettered — unless the database is away: that
        is no fault of the event's, so the consumer waits for it (backing off up to
        `away_wait_max` seconds) and does not count those tries."""
        with self._about(one):
            attempt, away = 1, 0
            while True:
                try:
                    async with self.db.transaction() as tx:
                        if await tx.first_time(self.name, one.event.id):
                            await one.handler(tx, one.data, one.event)
                            self._count(tx, one)
                        else:
                            log.info("redelivered event ignored")
                    return
                except Exception as error:
                    if database_away(error):
                        away += 1
                        log.warning("database away, waiting for it", tries=away, error=_short(error))
                        await asyncio.sleep(min(self.away_wait_max, self.retry_delay * 2**away))
                        continue
                    if attempt < self.max_attempts:
                        log.warning("event handling failed, will retry", attempt=attempt, error=_short(error))
                        await asyncio.sleep(self.retry_delay * attempt)
                        attempt += 1
                        continue
                    log.exception("event handling failed for good, dead-lettered", attempts=attempt)
                    await self._dead_letter(one.record, f"handler failed: {_short(error)}", attempts=attempt)
                    return

    def _about(self, one: _Decoded) -> contextlib.AbstractContextManager[Any]:
        event = one.event
        about = {"request_id": event.subject} if isinstance(one.data, RequestEventData) else {"subject": event.subject}
        return structlog.contextvars.bound_contextvars(
            **about, event_id=event.id, event_type=event.type, consumer=self.name
        )

    def _count(self, tx: Transaction, one: _Decoded) -> None:
        tx.after_commit.append(lambda: metrics.EVENTS_HANDLED.labels(self.name, one.event.type).inc())

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], reason: str, attempts: int) -> None:
        key = record.key.decode(errors="replace") if record.key else None
        letter = DeadLetter(
            consumer=self.name,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=key,
            value=(record.value or b"").decode(errors="replace"),
            reason=reason,
            failed_at=utcnow(),
            attempts=attempts,
        )
        log.error("dead letter", topic=letter.topic, offset=letter.offset, reason=reason)
        metrics.DEAD_LETTERS.labels(self.name).inc()
        await self.broker.publish(
            letter.model_dump_json().encode(), self.topics.dead_letters, key=key.encode() if key else None
        )


@dataclass
class SharedConsumer(BatchSubscriber):
    """The consumers of the services one process hosts, behind one Kafka consumer.

    Each Kafka consumer polls the broker on its own (every few milliseconds on the embedded
    broker, which answers a waiting fetch only when the wait ends): with four services' groups
    in each of two worker processes, polling alone kept half a core of the service and half of
    the broker busy on an idle machine. One group per process kind reads the union of the
    topics once; each member takes the records of its own topics, with its own transactions,
    dedup (under its own name) and dead letters, the members side by side; the offsets are
    committed once all of them are done, so that a crash redelivers to every member and each
    ignores what it had handled.
    """

    members: Sequence[tuple[frozenset[str], EventConsumer]]

    async def __call__(self, message: KafkaMessage) -> None:
        received = [Received.decode(record) for record in records_of(message)]
        outcomes = await asyncio.gather(
            *(consumer.take([r for r in received if r.record.topic in topics]) for topics, consumer in self.members),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome  # nothing committed: the batch comes again and the members skip what they did
        await self._commit(message)


def _short(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:500]
