"""The delivery queue on a real database: nothing locked while sending, order per request, leases."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import text

from services.common.clock import utcnow
from services.common.db import Database
from services.common.delivery import DeliveryQueue
from services.common.signing import DeliveryFailed
from services.intake.callbacks import Callback, RegulatorCallbacks
from services.intake.models import CallbackDelivery
from tests.integration.helpers import migrated


class Receiver:
    """A regulator's endpoint that checks, while it is being called, that nothing is locked."""

    def __init__(self, db: Database, failing: set[str]) -> None:
        self.db, self.failing = db, failing
        self.received: list[str] = []
        self.locked_while_sending: list[str] = []

    async def post(self, url: str, payload: dict[str, Any], secrets: Any, event_id: str, headers: Any = None) -> int:
        async with self.db.engine.connect() as conn:
            free = await conn.execute(
                text(
                    "SELECT count(*) FROM "
                    "(SELECT 1 FROM callback_delivery WHERE event_id = :e FOR UPDATE SKIP LOCKED) AS free"
                ),
                {"e": event_id},
            )
            if free.scalar() != 1:
                self.locked_while_sending.append(event_id)
            await conn.rollback()
        if url in self.failing:
            raise DeliveryFailed("HTTP 503: try later")
        self.received.append(event_id)
        return 204


class FixedSecrets:
    """Stands for the clients' signing secrets (services/intake/callbacks.py CallbackSecrets)."""

    async def of(self, client_id: str | None) -> list[str]:
        return ["whsec_dGVzdA=="]


async def queued(db: Database, *rows: tuple[str, str, str]) -> None:
    now = utcnow()
    async with db.transaction() as tx:
        for event_id, request_id, url in rows:
            tx.session.add(
                CallbackDelivery(
                    event_id=event_id,
                    request_id=request_id,
                    url=url,
                    payload={"request_id": request_id},
                    status="pending",
                    next_attempt_at=now,
                    created_at=now,
                )
            )


async def statuses(db: Database) -> dict[str, tuple[str, int]]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(text("SELECT event_id, status, attempts FROM callback_delivery"))
        return {r.event_id: (r.status, r.attempts) for r in rows}


async def test_callbacks_are_sent_with_nothing_locked_in_order_per_request_and_failures_retried_later(
    database_url: str,
) -> None:
    db = await migrated(database_url, "intake")
    receiver = Receiver(db, failing={"http://down.example/cb"})
    queue = DeliveryQueue(db, RegulatorCallbacks(receiver, FixedSecrets()), utcnow)  # type: ignore[arg-type]
    await queued(
        db,
        ("a1", "REQ-A", "http://up.example/cb"),
        ("a2", "REQ-A", "http://up.example/cb"),
        ("b1", "REQ-B", "http://up.example/cb"),
        ("c1", "REQ-C", "http://down.example/cb"),
    )
    assert await queue.deliver_due() == 3  # a1, b1, c1: a2 waits for a1
    assert sorted(receiver.received) == ["a1", "b1"]
    assert queue.more  # a1 delivered: a2 is due now, the pump goes round again at once
    assert await queue.deliver_more() == 0  # a2 sent; nothing waited for it: the pump waits for a poke
    assert receiver.received[-1] == "a2" and not queue.more
    assert await queue.deliver_due() == 0  # c1 is retried later, not now
    assert receiver.locked_while_sending == []
    assert await statuses(db) == {
        "a1": ("delivered", 1),
        "a2": ("delivered", 1),
        "b1": ("delivered", 1),
        "c1": ("pending", 1),
    }
    await db.dispose()


async def test_a_callback_claimed_by_a_process_that_died_is_sent_again_after_its_lease(database_url: str) -> None:
    db = await migrated(database_url, "intake")
    receiver = Receiver(db, failing=set())
    outbound = RegulatorCallbacks(receiver, FixedSecrets())  # type: ignore[arg-type]
    await queued(db, ("d1", "REQ-D", "http://up.example/cb"))
    now = utcnow()
    async with db.transaction() as tx:  # claimed, then the process died before sending
        [claimed] = await outbound.claim(tx, now, 10, now + timedelta(minutes=2))
    assert claimed.event_id == "d1"
    assert await DeliveryQueue(db, outbound, utcnow).deliver_due() == 0  # leased: left alone
    later = DeliveryQueue(db, outbound, lambda: now + timedelta(minutes=3))
    assert await later.deliver_due() == 1
    assert receiver.received == ["d1"]
    await db.dispose()


async def test_a_callback_written_leased_is_sent_after_its_commit_without_a_claim(database_url: str) -> None:
    """The intake writes a request's first pending callback leased and hands it over after the
    commit; the queue's rounds leave it alone, and one waiting behind it is due once it is
    delivered (the hand-over pokes the pump)."""
    db = await migrated(database_url, "intake")
    receiver = Receiver(db, failing=set())
    queue = DeliveryQueue(db, RegulatorCallbacks(receiver, FixedSecrets()), utcnow)  # type: ignore[arg-type]
    poked: list[bool] = []
    queue.on_more.append(lambda: poked.append(True))
    now = utcnow()
    async with db.transaction() as tx:
        first = CallbackDelivery(
            event_id="e1",
            request_id="REQ-E",
            url="http://up.example/cb",
            payload={},
            status="pending",
            next_attempt_at=queue.lease_until(now),
            created_at=now,
        )
        tx.session.add(first)
        tx.session.add(
            CallbackDelivery(
                event_id="e2",
                request_id="REQ-E",
                url="http://up.example/cb",
                payload={},
                status="pending",
                next_attempt_at=now,
                created_at=now,
            )
        )
    assert await queue.deliver_due() == 0  # e1 leased, e2 behind it
    queue.send_claimed([Callback.of(first, None)])
    await queue.close()
    assert receiver.received == ["e1"] and poked == [True] and receiver.locked_while_sending == []
    assert await queue.deliver_due() == 1
    assert receiver.received == ["e1", "e2"]
    assert await statuses(db) == {"e1": ("delivered", 1), "e2": ("delivered", 1)}
    await db.dispose()


async def test_an_outcome_is_recorded_once_the_database_is_back_not_sent_again(database_url: str) -> None:
    """Sent while the database went away: the outcome waits for it, rather than the lease
    running out and the regulator being called a second time."""
    db = await migrated(database_url, "intake")
    receiver = Receiver(db, failing=set())
    callbacks = RegulatorCallbacks(receiver, FixedSecrets())  # type: ignore[arg-type]
    refusals = [ConnectionRefusedError(111, "Connection refused")] * 2
    record = callbacks.record

    async def record_when_back(*args: Any) -> bool:
        if refusals:
            raise refusals.pop()
        return await record(*args)

    callbacks.record = record_when_back  # type: ignore[method-assign]
    await queued(db, ("f1", "REQ-F", "http://up.example/cb"))
    assert await DeliveryQueue(db, callbacks, utcnow).deliver_due() == 1
    assert receiver.received == ["f1"] and refusals == []  # called once, recorded at the third try
    assert await statuses(db) == {"f1": ("delivered", 1)}
    await db.dispose()
