"""The broker watch on a real broker that loses its log: a look whose follow-up cannot finish is
cut short, and the next look heals (services/common/broker_watch.py).

Seen once in the broker-loss cascade: a process's look waited behind its relay's round, caught by
the loss, and that process never healed nor replayed its outbox."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from structlog.testing import capture_logs

from schemas.topics import Topics
from services.common.broker_watch import BrokerWatch
from services.common.embedded import EmbeddedKafka
from services.common.messaging import ensure_topics


@pytest.fixture
def own_broker() -> EmbeddedKafka:
    """A broker of the test's own: it is killed and started again empty."""
    broker = EmbeddedKafka().start()
    yield broker  # type: ignore[misc]
    broker.stop()


async def test_a_look_held_up_after_a_loss_is_cut_short_and_the_next_look_heals(own_broker: EmbeddedKafka) -> None:
    topics = Topics(prefix=f"watch-{uuid.uuid4().hex[:6]}.")
    follow_ups: list[tuple[str, bool]] = []
    hold_the_follow_up = asyncio.Event()

    async def on_look(epoch: str, lost: bool) -> None:
        follow_ups.append((epoch, lost))
        if lost and not hold_the_follow_up.is_set():
            hold_the_follow_up.set()
            await asyncio.Event().wait()  # what a relay round waiting on a lost broker looks like

    watch = BrokerWatch(
        own_broker.bootstrap_servers,
        topics.all(),
        topics.epoch,
        lambda: ensure_topics(own_broker.bootstrap_servers, topics, partitions=1),
        on_look,
        look_timeout=3,
    )
    try:
        assert await asyncio.wait_for(watch.check(), 30)
        first_epoch = follow_ups[-1][0]
        assert follow_ups == [(first_epoch, False)]

        own_broker.stop()
        own_broker.start()  # same port, empty: no topics, no epoch
        with capture_logs() as logs:
            for _ in range(40):  # the first looks may find the broker unreachable, as a pump would
                assert not await asyncio.wait_for(watch.check(), 30)  # then held, and cut short
                if hold_the_follow_up.is_set():
                    break
                await asyncio.sleep(0.5)
        stuck = [e for e in logs if e["event"] == "broker look stuck: cut short"]
        assert stuck and any("on_look" in step for step in stuck[0]["waiting_on"]), logs
        assert not watch.healthy and watch.losses == 1

        assert await asyncio.wait_for(watch.check(), 30)  # the next look heals
        second_epoch, lost = follow_ups[-1]
        assert lost and second_epoch != first_epoch
        assert watch.healthy and watch.epoch == second_epoch
        assert await asyncio.wait_for(watch.check(), 30)
        assert follow_ups[-1] == (second_epoch, False)  # healed once: the looks after are plain
    finally:
        await watch.close()
