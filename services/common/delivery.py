"""A retrying delivery queue: messages to the outside world (regulators' callbacks, professionals'
e-mails, SMS and webhooks) with no network call while a transaction or a row lock is open.

A round claims the due rows in a short transaction — each row's next attempt is pushed a lease
ahead, so that other processes leave it alone and a process that dies while sending leaves it
due again once the lease is over — commits, sends them all at once (one after another for rows
of the same key: a request's callbacks, an offer's messages), then records every result in a
second short transaction. The owner of the table says what is due, how to send one and what a
result means, through an `Outbound`.

A row written already leased (by the transaction that creates it, when nothing of its key is
pending before it) can be handed over after that commit (`send_claimed`): it is sent at once
without a claim of its own; a process that dies first leaves it to a round once the lease is over.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Hashable
from datetime import datetime, timedelta
from typing import Generic, Protocol, TypeVar

import structlog

from services.common.clock import Clock
from services.common.db import Database, Transaction, database_away

log = structlog.get_logger(__name__)

Item = TypeVar("Item")


class Outbound(Protocol[Item]):
    async def claim(self, tx: Transaction, now: datetime, limit: int, lease_until: datetime) -> list[Item]:
        """The due rows (locked with SKIP LOCKED), their next attempt moved to `lease_until`."""
        ...

    def key(self, item: Item) -> Hashable:
        """Items of one key are sent in claim order, one after another."""
        ...

    async def send(self, item: Item) -> None:
        """Send one item; raise when the receiver did not take it."""
        ...

    async def record(self, db: Database, sent: list[tuple[Item, str | None]], now: datetime) -> bool:
        """What came of the sends (`error` None: delivered), in one transaction or one statement;
        True when a later item of the same key may have become due through them (the queue then
        goes round again)."""
        ...


class DeliveryQueue(Generic[Item]):
    def __init__(
        self,
        db: Database,
        outbound: Outbound[Item],
        clock: Clock,
        batch: int = 50,
        lease: timedelta = timedelta(minutes=2),
        on_more: Callable[[], None] | None = None,
    ) -> None:
        self.db, self.outbound, self.clock, self.batch, self.lease = db, outbound, clock, batch, lease
        self.more = False  # after a round: whether another one may find something due at once
        # after a hand-over that made something due: poke the pump
        self.on_more: list[Callable[[], None]] = [on_more] if on_more else []
        self._handed_over: list[Item] = []
        self._drainer: asyncio.Task[None] | None = None

    async def deliver_more(self) -> int:
        """For a Pump: one round, and whether to go round again at once (a full batch, or an
        item that was waiting for one just delivered); else the pump waits for its next poke —
        under load an empty claim after every round was a transaction per message for nothing."""
        tried = await self.deliver_due()
        return tried if self.more else 0

    async def deliver_due(self) -> int:
        """One round; returns how many items it tried."""
        now = self.clock()
        self.more = False
        async with self.db.transaction() as tx:
            items = await self.outbound.claim(tx, now, self.batch, now + self.lease)
        if not items:
            return 0
        self.more = await self._send_and_record(items) or len(items) >= self.batch
        return len(items)

    def send_claimed(self, items: list[Item]) -> None:
        """Send items whose rows were written leased by a transaction that has just committed.
        One task sends what has been handed over meanwhile together (one transaction records
        them all), so that under load hand-overs do not cost a transaction each."""
        self._handed_over.extend(items)
        if self._handed_over and (self._drainer is None or self._drainer.done()):
            self._drainer = asyncio.create_task(self._drain(), name="delivery-hand-over")

    async def _drain(self) -> None:
        while self._handed_over:
            items, self._handed_over = self._handed_over, []
            try:
                if await self._send_and_record(items):
                    for poke in self.on_more:
                        poke()
            except Exception:  # the rows stay leased: a round takes them up when the lease is over
                log.exception("sending handed-over items failed", items=len(items))

    async def close(self) -> None:
        """Let hand-overs in flight finish (a stop waits for them rather than leaving them leased)."""
        if self._drainer is not None and not self._drainer.done():
            await asyncio.wait({self._drainer}, timeout=5)

    def lease_until(self, now: datetime) -> datetime:
        return now + self.lease

    async def _send_and_record(self, items: list[Item]) -> bool:
        """Send (a key's items in order, keys side by side), record; whether more became due."""
        by_key: dict[Hashable, list[int]] = defaultdict(list)
        for position, item in enumerate(items):
            by_key[self.outbound.key(item)].append(position)
        errors: list[str | None] = [None] * len(items)

        async def send_in_order(positions: list[int]) -> None:
            for position in positions:
                errors[position] = await self._send(items[position])

        await asyncio.gather(*(send_in_order(positions) for positions in by_key.values()))
        return await self._record(items, errors)

    async def _record(self, items: list[Item], errors: list[str | None]) -> bool:
        """Record what the sends gave. Should the database be away, wait for it while the lease
        runs (else the items would be sent again once it is over, the receiver told twice)."""
        give_up_at = asyncio.get_running_loop().time() + self.lease.total_seconds()
        tries = 0
        while True:
            try:
                return await self.outbound.record(self.db, list(zip(items, errors, strict=True)), self.clock())
            except Exception as error:
                tries += 1
                if not database_away(error) or asyncio.get_running_loop().time() >= give_up_at:
                    raise
                log.warning("database away, outcome of sent items kept to record", tries=tries, items=len(items))
                await asyncio.sleep(min(5.0, 0.1 * 2**tries))

    async def _send(self, item: Item) -> str | None:
        try:
            await self.outbound.send(item)
        except Exception as failure:  # the receiver's failure: recorded, retried later
            return f"{type(failure).__name__}: {failure}"[:500]
        return None
