"""The outbox relay: a service's committed events published to Kafka, oldest first, and marked
only once the broker acknowledged them (see OutboxRelay); delivered rows pruned after a while."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import asyncpg
import structlog
from faststream.kafka import KafkaBroker
from sqlalchemy import text

from services.common import metrics
from services.common.db import Database
from services.common.db_listener import DatabaseListener

log = structlog.get_logger(__name__)


PUBLISHED = "events_published"  # the channel a relay notifies once it published (services/common/consumer_rest.py)


class OutboxRelay:
    """Publishes a service's committed outbox rows to Kafka, oldest first.

    One process at a time relays a schema: the one whose relay holds the schema's advisory lock
    on a connection of its own (when that process dies its connection and lock go with it, and
    another process takes over at its next try). That keeps each request's events in commit
    order. A trigger notifies `outbox_<schema>` when a transaction writes to the outbox, which
    wakes the relaying process whichever process committed (heard through the process's one
    listening connection, `listener`: see db_listener.py for why not this one).

    A round reads a batch, hands every message to the producer at once (in order), waits for
    all the acknowledgements, then marks the rows: no transaction stays open while the broker
    works. A crash between publishing and marking publishes those rows again; consumers ignore
    event ids they have handled.
    """

    def __init__(
        self, db: Database, broker: KafkaBroker, batch: int = 500, listener: DatabaseListener | None = None
    ) -> None:
        """`listener`: the process's listening connection (one of its own when not given)."""
        self.db = db
        self.broker = broker
        self.batch = batch
        self.on_notified: Callable[[], None] = lambda: None  # the runtime pokes its pump
        self.listener = listener or DatabaseListener(db)
        self._own_listener = listener is None
        self._heard = False  # whether the listener was asked for our channel
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
        await connection.execute(  # marked, and the resting consumers of every process woken
            "WITH marked AS (UPDATE outbox_message SET published_at = now() WHERE seq = ANY($1::bigint[])) "
            f"SELECT pg_notify('{PUBLISHED}', '')",
            [r["seq"] for r in rows],
        )
        return len(rows)

    async def relay_more(self) -> int:
        """For a Pump: one round, and whether a full batch suggests there is more."""
        published = await self.relay_once()
        return published if published >= self.batch else 0

    async def _lead(self) -> asyncpg.Connection | None:
        connection = self._connection
        if not self._heard:
            self._heard = True  # asked once: should the database be away, the listener keeps trying
            await self.listener.listen(f"outbox_{self.db.schema}", lambda _: self.on_notified())
        if connection is None or connection.is_closed():
            self.leading = False
            connection = await self.db.own_connection()  # it holds the lock
            connection.add_termination_listener(self._terminated)
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

    def _terminated(self, _: object) -> None:
        self.db.connections_lost()  # the server ended our connection: the pooled ones are gone too

    async def close(self) -> None:
        if self._connection is not None and not self._connection.is_closed():
            self._connection.remove_termination_listener(self._terminated)  # closed on purpose
            await self._connection.close()  # the lock goes with it
        self._connection, self.leading = None, False
        if self._own_listener:
            await self.listener.close()

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
