"""Noticing that the broker lost what it held, and healing it: topics again, events again.

A memory-only broker that restarts, a topic deleted by hand, a cluster replaced by an empty one:
the services keep running, but the events that were on the broker and not yet consumed are gone,
the consumer groups' offsets with them, and a consumer that commits into a topic that no longer
exists retries for ever. The watch looks at the broker every few seconds and tells a loss by two
signs: one of our topics is missing, or the broker's *epoch* changed. The epoch is the first
record of a one-partition topic of its own, a random id written by whichever process found that
topic empty: every process reads the same first record, so every process notices the same loss,
however fast the topics fill up again afterwards — and a process that starts on a new broker
(`make run` restarted with its embedded broker) compares it with the epoch each service recorded
in its database.

After each look the watch calls `on_look(epoch, lost)`; `lost` says that this process saw the
broker lose its log while it ran. The runtime then restarts its consumers from the beginning of
the new topics, and each service's relay publishes again the outbox rows published since the
broker was last seen whole under the epoch it recorded, minus a margin for what consumers had not
read yet (`OutboxRelay.follow_epoch`). Consumers skip the event ids they have handled.

A look never lasts more than `look_timeout`: the follow-up waits for the relay's round in
progress, and a round caught by the loss waits for its acknowledgements until the producer gives
up (seen: a look held that way, a process that never healed). A look cut short is a failed look:
what it was waiting on is logged, and the next look heals again.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from services.common import metrics

log = structlog.get_logger(__name__)


class BrokerWatch:
    def __init__(
        self,
        bootstrap_servers: str,
        topics: Sequence[str],
        epoch_topic: str,
        create_topics: Callable[[], Awaitable[None]],
        on_look: Callable[[str, bool], Awaitable[None]],
        look_timeout: float = 30.0,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topics, self.epoch_topic = list(topics), epoch_topic
        self.create_topics, self.on_look = create_topics, on_look
        self.look_timeout = look_timeout
        self.epoch: str | None = None  # the broker's epoch as this process knows it
        self.healthy = False  # reachable, every topic there, epoch known, the look's follow-up done
        self.losses = 0
        self._unhealed = False  # a loss was noticed and its follow-up has not succeeded yet
        self._client: AIOKafkaConsumer | None = None
        self._healing = asyncio.Lock()

    async def check(self) -> bool:
        """One look; heals if the broker lost its log. Returns whether the broker is whole now."""
        async with self._healing:
            looking = asyncio.create_task(self._check(), name="broker-look")
            try:
                await asyncio.wait_for(asyncio.shield(looking), self.look_timeout)
            except (KafkaError, OSError, TimeoutError) as error:
                if not looking.done():
                    where = _awaiting(looking)
                    log.warning("broker look stuck: cut short", seconds=self.look_timeout, waiting_on=where)
                    looking.cancel()
                    await asyncio.wait({looking}, timeout=5)
                elif self.healthy:
                    log.warning("broker unreachable", error=type(error).__name__)
                self.healthy = False
                await self._reset_client()
            except asyncio.CancelledError:
                looking.cancel()
                raise
        return self.healthy

    async def _check(self) -> None:
        client = await self._connected()
        present = await client.topics()
        missing = [t for t in [*self.topics, self.epoch_topic] if t not in present]
        if missing:
            await self.create_topics()
        epoch = await self._read_epoch() or await self._write_epoch()
        noticed = self.epoch is not None and (bool(missing) or epoch != self.epoch)  # not at the first look
        if noticed:
            log.warning("broker lost its log: healing", missing=missing, epoch_changed=epoch != self.epoch)
            self.losses += 1
            metrics.BROKER_LOSSES.inc()
            self._unhealed = True
        if self._unhealed:
            self.healthy = False
        await self.on_look(epoch, self._unhealed)  # if it fails, the next look heals again
        self._unhealed = False
        self.epoch = epoch
        self.healthy = True

    async def _connected(self) -> AIOKafkaConsumer:
        if self._client is None:
            client = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap_servers,
                enable_auto_commit=False,
                client_id="sas-broker-watch",
                request_timeout_ms=5000,
            )
            try:
                await asyncio.wait_for(client.start(), 10)
            except BaseException:
                await _quietly(client.stop())  # a client that failed to start still holds connections
                raise
            self._client = client
        return self._client

    async def _reset_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await _quietly(client.stop())

    async def _read_epoch(self) -> str | None:
        """The first record of the epoch topic, fetched from the broker now: a long-lived consumer
        would serve it from what it prefetched from the lost log (seen: a process that never
        noticed the loss), so each look reads with a consumer of its own."""
        partition = TopicPartition(self.epoch_topic, 0)
        reader = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers, enable_auto_commit=False, request_timeout_ms=5000
        )
        try:
            await asyncio.wait_for(reader.start(), 10)
            reader.assign([partition])
            reader.seek(partition, 0)
            found = await reader.getmany(partition, timeout_ms=1000, max_records=1)
        finally:
            await _quietly(reader.stop())
        records = found.get(partition, [])
        return records[0].value.decode() if records and records[0].value else None

    async def _write_epoch(self) -> str:
        """Found empty: write an epoch; whoever wrote first wins, so read it back."""
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap_servers, acks="all")
        try:
            await producer.start()
            await producer.send_and_wait(self.epoch_topic, uuid.uuid4().hex.encode(), partition=0)
        finally:
            await _quietly(producer.stop())
        epoch = await self._read_epoch()
        if epoch is None:
            raise TimeoutError("the epoch just written cannot be read back")
        return epoch

    async def close(self) -> None:
        await self._reset_client()


def _awaiting(task: asyncio.Task[None]) -> list[str]:
    """Where a task is waiting: its chain of awaits, innermost last (for the log)."""
    chain: list[str] = []
    awaited: Any = task.get_coro()
    while awaited is not None:
        frame = getattr(awaited, "cr_frame", None)
        if frame is None:
            chain.append(type(awaited).__name__)  # a future, a task: the end of what can be read
            break
        chain.append(f"{frame.f_code.co_name} ({frame.f_code.co_filename.rsplit('/', 2)[-1]}:{frame.f_lineno})")
        awaited = getattr(awaited, "cr_await", None)
    return chain


async def _quietly(stopping: Awaitable[None]) -> None:
    """Stop a Kafka client whatever state the broker is in (at most 5 s)."""
    with contextlib.suppress(KafkaError, OSError, TimeoutError):
        await asyncio.wait_for(stopping, 5)
