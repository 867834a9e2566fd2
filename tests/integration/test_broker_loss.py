"""The broker killed and restarted mid-cascade, the three services each in its own process.

The embedded broker keeps everything in memory: when it comes back its topics, the events on
them and the groups' offsets are gone. Requests are posted and offers accepted before, during
and after the outage; every request must end confirmed with the professional who accepted it,
and the matcher and the notifier must agree on every offer.
"""

from __future__ import annotations

import asyncio

from services.common.embedded import EmbeddedKafka
from tests.conftest import create_database
from tests.integration.cascade import Cascade
from tests.integration.helpers import skip_when_every_practice_is_closed

REQUESTS = 12


async def test_the_broker_killed_and_restarted_mid_cascade_loses_nothing(postgres_url: str) -> None:
    skip_when_every_practice_is_closed()
    broker = EmbeddedKafka().start()
    cascade = Cascade(await create_database(postgres_url), broker.bootstrap_servers)
    try:
        await cascade.start()
        await cascade.post(REQUESTS // 2)
        await asyncio.sleep(2)
        await cascade.accept_what_came()
        assert cascade.accepted, "no offer was accepted before the broker went away"

        broker.process.kill()  # type: ignore[union-attr]
        broker.process.wait()  # type: ignore[union-attr]
        await cascade.post(REQUESTS // 2)  # recorded, not yet published
        await cascade.accept_what_came()
        await asyncio.sleep(2)
        broker = EmbeddedKafka(port=broker.port).start()  # empty: no topics, no offsets

        statuses = await cascade.until_all_ended()
        assert len(statuses) == REQUESTS
        not_confirmed = {
            r: (s.get("status"), s.get("reason")) for r, s in statuses.items() if s["status"] != "confirmed"
        }
        assert not not_confirmed, (not_confirmed, cascade.log.read_text()[-3000:])
        # every acceptance a professional saw ended in an appointment with them
        booked_with = {str(s["appointment"]["professional"]["rpps"]) for s in statuses.values()}
        assert set(cascade.accepted.values()) <= booked_with and len(cascade.accepted) >= REQUESTS
        matcher, notifier = await cascade.offers_agree()
        assert matcher == notifier
    finally:
        await cascade.stop()
        broker.stop()
