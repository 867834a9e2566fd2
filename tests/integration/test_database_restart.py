"""PostgreSQL stopped and started again mid-cascade, the three services each in its own process.

While the database is away the API answers 503 with Retry-After, the offer pages and the
professionals' own pages say to try again,
and the consumers wait: nothing is dead-lettered, no acceptance is lost, and every request
answered 202 ends confirmed with the professional who accepted it.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.common.embedded import EmbeddedPostgres
from tests.integration.cascade import ADMIN, Cascade
from tests.integration.helpers import read_topic, skip_when_every_practice_is_closed


async def test_postgresql_stopped_and_started_mid_cascade_loses_nothing(kafka_bootstrap: str) -> None:
    skip_when_every_practice_is_closed()
    server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="sas-test-restart-")) / "data").start()
    cascade = Cascade(server.url(), kafka_bootstrap)
    try:
        await cascade.start()
        await cascade.post(6)
        await asyncio.sleep(2)
        await cascade.accept_what_came(at_most=2)  # the other offers are answered during the outage
        assert cascade.accepted, "no offer was accepted before the database went away"
        accepted_before = len(cascade.accepted)

        server.pause()
        during = await cascade.post(3)
        assert [a.status_code for a in during] == [503, 503, 503]
        assert all(a.headers.get("retry-after") for a in during)
        assert all(a.headers["content-type"].startswith("application/problem+json") for a in during)
        pages = await cascade.accept_what_came()  # offers e-mailed before, answered now
        assert pages and all(p.status_code == 503 and "Réessayez" in p.text for p in pages)
        own = cascade.own_link()  # a professional's own page: "try again", and nothing half-done
        shown = await cascade.http.get(own)
        assert shown.status_code == 503 and shown.headers.get("retry-after") and "Réessayez" in shown.text
        soon = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
        paused = await cascade.http.post(f"{own}/pause", data={"until": soon})
        assert paused.status_code == 503 and "Réessayez" in paused.text
        await asyncio.sleep(3)
        server.resume()
        after = await cascade.post(3)
        assert [a.status_code for a in after] == [202, 202, 202], [(a.status_code, a.text[:300]) for a in after]

        statuses = await cascade.until_all_ended()
        assert len(statuses) == 9
        not_confirmed = {
            r: (s.get("status"), s.get("reason")) for r, s in statuses.items() if s["status"] != "confirmed"
        }
        assert not not_confirmed, (not_confirmed, cascade.log.read_text()[-3000:])
        booked_with = {str(s["appointment"]["professional"]["rpps"]) for s in statuses.values()}
        assert set(cascade.accepted.values()) <= booked_with and len(cascade.accepted) > accepted_before
        assert (await cascade.http.get(own)).status_code == 200
        rpps = own.split("/p/p1.")[1].split(".")[0]
        pro = await cascade.http.get(cascade.url(cascade.matcher, f"/v1/professionals/{rpps}"), headers=ADMIN)
        assert pro.json()["paused_until"] is None  # the change refused during the outage did not happen
        matcher, notifier = await cascade.offers_agree()
        assert matcher == notifier
        dead = await read_topic(kafka_bootstrap, f"{cascade.prefix}deadletter.v1", expected=1, timeout=2)
        assert dead == []
    finally:
        await cascade.stop()
        server.stop()
