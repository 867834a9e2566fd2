"""What comes of sending a professional's message, recorded in one statement (services/notifier/
dispatch.py): attempts kept, retried with a growing delay, then the next channel; the same
outcome recorded twice (a statement tried again after a lost connection) changes nothing twice."""

from __future__ import annotations

from sqlalchemy import text

from services.common.clock import utcnow
from services.notifier.channels import Message
from services.notifier.dispatch import MAX_TRIES_PER_CHANNEL, Outgoing, ProfessionalMessages
from services.notifier.models import Notification
from tests.integration.helpers import migrated


def _sent(notification: Notification, channel: str, attempts: int) -> Outgoing:
    assert notification.id is not None
    message = Message("m", channel, "x", "", "", {}, 1, None)
    return Outgoing(notification.id, "O1", "R1", "offer", message, notification.channel_index, attempts)


async def test_outcomes_move_a_message_on_once_each(database_url: str) -> None:
    db = await migrated(database_url, "notifier")
    pokes: list[bool] = []
    messages = ProfessionalMessages({}, lambda *_: None, [lambda: pokes.append(True)])  # type: ignore[arg-type,return-value]
    now = utcnow()
    async with db.transaction() as tx:
        notification = Notification(
            offer_id="O1",
            purpose="offer",
            channels=[{"type": "webhook", "url": "http://127.0.0.1:9/x"}, {"type": "email", "destination": "a@b.c"}],
            delivered=[],
            next_attempt_at=now,
            created_at=now,
        )
        tx.session.add(notification)

    async def state() -> tuple[str, int, int, list[str], float]:
        async with db.engine.connect() as conn:
            row = (
                await conn.execute(
                    text("SELECT status, channel_index, attempts, delivered, next_attempt_at FROM notification")
                )
            ).one()
            return row[0], row[1], row[2], row[3], round((row[4] - now).total_seconds())

    for attempt in range(MAX_TRIES_PER_CHANNEL - 1):  # the webhook fails: retried later, 2, 4, 8 s on
        failed = [(_sent(notification, "webhook", attempt), "ConnectError: refused")]
        await messages.record(db, failed, now)
        await messages.record(db, failed, now)  # the same outcome again: nothing more
        assert await state() == ("pending", 0, attempt + 1, [], 2 ** (attempt + 1))
    assert pokes == []
    last = [(_sent(notification, "webhook", MAX_TRIES_PER_CHANNEL - 1), "ConnectError: refused")]
    await messages.record(db, last, now)  # given up: the next channel, now
    assert await state() == ("pending", 1, 0, [], 0) and pokes == [True]
    notification.channel_index = 1
    delivered = [(_sent(notification, "email", 0), None)]
    await messages.record(db, delivered, now)
    await messages.record(db, delivered, now)
    assert await state() == ("sent", 2, 0, ["email"], 0) and pokes == [True]
    async with db.engine.connect() as conn:
        tried = (await conn.execute(text("SELECT channel, ok FROM delivery_attempt ORDER BY id"))).all()
    assert [tuple(r) for r in tried] == [("webhook", False)] * MAX_TRIES_PER_CHANNEL + [("email", True)]
    await db.dispose()
