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
from datetime import timedelta
from typing import Any

import asyncpg
import structlog
from aiokafka import ConsumerRecord
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


class OutboxRelay:
    """Publishes a service's committed outbox rows to Kafka, oldest first.

    One process at a time relays a schema: the one whose relay holds the schema's advisory lock
    on a connection of its own (when that process dies its connection and lock go with it, and
    another process takes over at its next try). That keeps each request's events in commit
    order. A trigger notifies `outbox_<schema>` when a transaction writes to the outbox, which
    wakes the relaying process whichever process committed.

    A round reads a batch, hands every message to the producer at once (in order), waits for
    all the acknowledgements, then marks the rows: no transaction stays open while the broker
    works. A crash between publishing and marking publishes those rows again; consumers ignore
    event ids they have handled.
    """

    def __init__(self, db: Database, broker: KafkaBroker, batch: int = 500) -> None:
        self.db = db
        self.broker = broker
        self.batch = batch
        self.on_notified: Callable[[], None] = lambda: None  # the runtime pokes its pump
        self._connection: asyncpg.Connection | None = None
        self.leading = False
        self.retake_every = 1.0  # seconds between tries to take the lead while another process holds it
        self._tried_at = -float("inf")
        self._epoch: str | None = None  # the broker epoch last recorded, and when (follow_epoch)
        self._epoch_written = -float("inf")
        self._using = asyncio.Lock()  # one operation at a time on the relay's own connection

    async def relay_once(self) -> int:
        """Publish one batch if this process is the relay; returns how many rows it published."""
        async with self._using:
            return await self._relay_once()

    async def _relay_once(self) -> int:
        connection = await self._lead()
        if connection is None:
            return 0
        rows = await connection.fetch(
            "SELECT seq, topic, key, value::text AS value, value->>'id' AS id, value->>'type' AS type "
            "FROM outbox_message WHERE published_at IS NULL ORDER BY seq LIMIT $1",
            self.batch,
        )
        if not rows:
            return 0
        acknowledgements = [
            await self.broker.publish(
                row["value"].encode(),
                row["topic"],
                key=row["key"].encode(),
                headers={"content-type": "application/cloudevents+json", "ce_id": row["id"], "ce_type": row["type"]},
                no_confirm=True,  # queued in order now, acknowledged together below
            )
            for row in rows
        ]
        await asyncio.gather(*acknowledgements)
        await connection.execute(
            "UPDATE outbox_message SET published_at = now() WHERE seq = ANY($1::bigint[])", [r["seq"] for r in rows]
        )
        return len(rows)

    async def relay_more(self) -> int:
        """For a Pump: one round, and whether a full batch suggests there is more."""
        published = await self.relay_once()
        return published if published >= self.batch else 0

    async def _lead(self) -> asyncpg.Connection | None:
        connection = self._connection
        if connection is None or connection.is_closed():
            self.leading = False
            connection = await self.db.own_connection()  # it holds the lock and listens
            await connection.add_listener(f"outbox_{self.db.schema}", lambda *_: self.on_notified())
            self._connection = connection
        loop = asyncio.get_running_loop()
        if not self.leading and loop.time() - self._tried_at >= self.retake_every:
            # not at every commit of this process: the leader relays those rows anyway
            self._tried_at = loop.time()
            self.leading = bool(
                await connection.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", f"outbox:{self.db.schema}")
            )
        return connection if self.leading else None

    async def follow_epoch(self, epoch: str, margin: timedelta, refresh: timedelta = timedelta(seconds=30)) -> int:
        """Record that the broker is whole under `epoch`; when the service last saw it under another
        epoch, its log was lost: publish again, in their order, the outbox rows published since the
        broker was last seen whole, minus `margin` (consumers skip the ids they handled).

        Only the relaying process does it, so that the rows are replayed once whichever processes
        notice; returns how many rows it replayed."""
        loop = asyncio.get_running_loop()
        if epoch == self._epoch and loop.time() - self._epoch_written < refresh.total_seconds():
            return 0
        async with self._using:
            replayed = await self._follow_epoch(epoch, margin)
        if replayed is None:  # not the relaying process
            return 0
        self._epoch, self._epoch_written = epoch, loop.time()
        if replayed:
            log.warning("outbox replayed after a broker loss", schema=self.db.schema, events=replayed)
            metrics.EVENTS_REPUBLISHED.labels(self.db.schema, "broker_loss").inc(replayed)
            self.on_notified()
        return replayed

    async def _follow_epoch(self, epoch: str, margin: timedelta) -> int | None:
        connection = await self._lead()
        if connection is None:
            return None
        replayed = 0
        async with connection.transaction():
            known = await connection.fetchrow("SELECT epoch, whole_at FROM broker_epoch WHERE id = 1 FOR UPDATE")
            if known is not None and known["epoch"] != epoch:
                status = await connection.execute(
                    "UPDATE outbox_message SET published_at = NULL WHERE published_at >= $1",
                    known["whole_at"] - margin,
                )
                replayed = int(status.split()[-1])
            await connection.execute(
                "INSERT INTO broker_epoch (id, epoch, whole_at) VALUES (1, $1, now()) "
                "ON CONFLICT (id) DO UPDATE SET epoch = excluded.epoch, whole_at = excluded.whole_at",
                epoch,
            )
        return replayed

    async def close(self) -> None:
        if self._connection is not None and not self._connection.is_closed():
            await self._connection.close()  # the lock goes with it
        self._connection, self.leading = None, False

    async def backlog(self) -> int:
        async with self.db.engine.connect() as conn:
            result = await conn.execute(text("SELECT count(*) FROM outbox_message WHERE published_at IS NULL"))
            return int(result.scalar() or 0)


async def prune_delivered(db: Database, keep: timedelta, batch: int = 10_000) -> int:
    """Forget outbox rows published, and event ids handled, longer than `keep` ago.

    Both are kept that long on purpose: the outbox to replay after a broker loss, the ids so that
    a replay (or any redelivery) within that time changes nothing. Deletes in small batches, so
    that no long transaction holds up the relay or the consumers; returns the rows deleted."""
    deleted = 0
    for statement in (
        "DELETE FROM outbox_message WHERE seq IN (SELECT seq FROM outbox_message "
        "WHERE published_at < now() - make_interval(secs => :keep) LIMIT :batch)",
        "DELETE FROM processed_event WHERE (consumer, event_id) IN (SELECT consumer, event_id FROM processed_event "
        "WHERE processed_at < now() - make_interval(secs => :keep) LIMIT :batch)",
    ):
        while True:
            async with db.engine.begin() as conn:
                result = await conn.execute(text(statement), {"keep": keep.total_seconds(), "batch": batch})
            count = int(getattr(result, "rowcount", 0) or 0)
            deleted += count
            if count < batch:
                break
    return deleted


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
