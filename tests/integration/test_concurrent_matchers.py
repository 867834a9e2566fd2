"""Several matcher processes, many requests at once for the last free slots of a town:
each slot is held once, each professional gets one offer at a time, the others wait for them."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from schemas.events import OfferRefused
from services.common.clock import utcnow
from tests.integration.helpers import (
    MELLE_SITE,
    always_open_directory,
    equals,
    event_bytes,
    eventually,
    fresh_topics,
    matcher_processes,
    migrated,
    publish_raw,
    skip_when_every_practice_is_closed,
)
from tests.integration.test_consumer import received

REQUESTS = 10


async def test_the_last_slots_of_a_town_are_each_given_once(database_url: str, kafka_bootstrap: str) -> None:
    skip_when_every_practice_is_closed()
    topics = fresh_topics()
    db = await migrated(database_url, "matcher")
    directory, start = await always_open_directory(db, topics)
    for rpps in ("70000000001", "70000000002"):
        site = MELLE_SITE
        await directory.professionals.put(rpps, {"name": f"Dr {rpps}", "profession": "general_practitioner"}, [site])
        await directory.slots.put(f"last-{rpps}", rpps, "main", start, start + timedelta(minutes=20), "in_person")

    async with matcher_processes(database_url, kafka_bootstrap, topics.prefix, 3) as logs:
        ids = [f"RUSH-{i:02d}" for i in range(REQUESTS)]
        await publish_raw(kafka_bootstrap, topics.requests, [(i, event_bytes(received(i))[1]) for i in ids])

        async def all_decided() -> bool:
            async with db.engine.connect() as conn:
                left = await conn.execute(
                    text("SELECT count(*) FROM search WHERE status NOT IN ('offered', 'waiting')")
                )
                total = await conn.execute(text("SELECT count(*) FROM search"))
                return bool(total.scalar() == REQUESTS and left.scalar() == 0)

        assert await eventually(all_decided, timeout=40)
        async with db.engine.connect() as conn:
            offers = (
                await conn.execute(
                    text("SELECT offer_id, request_id, rpps, slot_id FROM match_offer WHERE status = 'pending'")
                )
            ).all()
            slots = dict((await conn.execute(text("SELECT slot_id, offer_id FROM slot"))).all())
            statuses = dict((await conn.execute(text("SELECT status, count(*) FROM search GROUP BY status"))).all())
        assert sorted(o.rpps for o in offers) == ["70000000001", "70000000002"]  # one offer each, no more
        assert sorted(o.slot_id for o in offers) == ["last-70000000001", "last-70000000002"]
        assert len({o.request_id for o in offers}) == 2
        for offer in offers:  # each slot held by exactly the offer that claimed it
            assert slots[offer.slot_id] == offer.offer_id
        assert statuses == {"offered": 2, "waiting": REQUESTS - 2}  # the two may yet refuse: the others wait
        handled = [
            log.read_text().count('"offer proposed"') + log.read_text().count('"request waiting"') for log in logs
        ]
        assert sum(handled) == REQUESTS and sum(1 for n in handled if n) >= 2  # the work was shared

        # An urgent request arrives and waits too; then a professional refuses: whichever process
        # serves the waiting list, the freed slot goes to the urgent request, not to an older one.
        urgent = received("URGENT").model_copy(update={"urgency": "24h"})
        await publish_raw(kafka_bootstrap, topics.requests, [("URGENT", event_bytes(urgent)[1])])

        async def status_of(request_id: str) -> str | None:
            async with db.engine.connect() as conn:
                found = await conn.execute(text("SELECT status FROM search WHERE request_id = :r"), {"r": request_id})
                return found.scalar()

        assert await eventually(lambda: equals(status_of("URGENT"), "waiting"), timeout=20)
        refused = offers[0]
        refusal = OfferRefused(
            request_id=refused.request_id, offer_id=refused.offer_id, rpps=refused.rpps, refused_at=utcnow()
        )
        await publish_raw(kafka_bootstrap, topics.offers, [(refused.request_id, event_bytes(refusal)[1])])
        if not await eventually(lambda: equals(status_of("URGENT"), "offered"), timeout=40):
            tails = "\n".join(line for log in logs for line in log.read_text().splitlines()[-15:])
            raise AssertionError(f"the urgent request was not offered; the matchers' last lines:\n{tails}")
        async with db.engine.connect() as conn:
            given = (
                await conn.execute(
                    text("SELECT request_id, rpps FROM match_offer WHERE status = 'pending' ORDER BY request_id")
                )
            ).all()
    await db.dispose()
    assert sorted(r.rpps for r in given) == ["70000000001", "70000000002"]  # still one offer each
    assert "URGENT" in {r.request_id for r in given}
