"""The broker killed and restarted mid-cascade, the four services each in its own process.

The embedded broker keeps everything in memory: when it comes back its topics, the events on
them and the groups' offsets are gone. Requests are posted and offers accepted before, during
and after the outage, a professional pauses from their own page and another asks for their
link by e-mail while it is away; every
request must end confirmed with the professional who accepted it, the matcher and the notifier
must agree on every offer, and the operations read model must end with every request confirmed
and the pause recorded (its consumer group starts again from nothing as well), the link
e-mail must arrive, and a patient's data erased during the outage must be erased in the matcher too.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

from services.common.clock import PARIS
from services.common.embedded import EmbeddedKafka
from tests.conftest import create_database
from tests.integration.cascade import AUTH, Cascade
from tests.integration.helpers import skip_when_every_practice_is_closed

REQUESTS = 12


async def test_the_broker_killed_and_restarted_mid_cascade_loses_nothing(postgres_url: str) -> None:
    skip_when_every_practice_is_closed()
    broker = EmbeddedKafka().start()
    cascade = Cascade(await create_database(postgres_url), broker.bootstrap_servers, with_ops=True)
    try:
        await cascade.start()
        await cascade.post(REQUESTS // 2)
        await asyncio.sleep(2)
        await cascade.accept_what_came()
        assert cascade.accepted, "no offer was accepted before the broker went away"

        broker.process.kill()  # type: ignore[union-attr]
        broker.process.wait()  # type: ignore[union-attr]
        await cascade.post(REQUESTS // 2)  # recorded, not yet published
        own = cascade.own_link()  # a professional pauses until tonight: the index hears of it at once
        tonight = datetime.now(PARIS).date().isoformat()
        paused = await cascade.http.post(f"{own}/pause", data={"until": tonight}, follow_redirects=False)
        assert paused.status_code == 303, paused.text
        rpps = own.split("/p/p1.")[1].split(".")[0]
        asked = await cascade.http.post(cascade.url(cascade.matcher, "/p"), data={"email": "81000000004@x.org"})
        assert asked.status_code == 200  # "send me my link": recorded, told to the notifier after the loss
        erased = cascade.posted[0]  # the patient's data erased while the broker is away
        gone = await cascade.http.delete(cascade.url(cascade.intake, f"/v1/requests/{erased}/patient"), headers=AUTH)
        assert gone.status_code == 200 and gone.json()["patient_erased_at"], gone.text
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
        await the_read_model_caught_up(cascade, rpps)
        searched = await cascade.query(f"SELECT patient_erased_at FROM matcher.search WHERE request_id = '{erased}'")
        assert searched[0]["patient_erased_at"] is not None  # the erasure reached the matcher after the loss
        assert await cascade.link_email_to("81000000004@x.org"), "the link asked for during the loss never came"
    finally:
        await cascade.stop()
        broker.stop()


async def the_read_model_caught_up(cascade: Cascade, paused_rpps: str, timeout: float = 60) -> None:
    """The operations service's read model, fed by its own consumer group across the loss."""
    deadline = time.monotonic() + timeout
    confirmed: set[str] = set()
    pause = None
    while time.monotonic() < deadline:
        rows = await cascade.query("SELECT request_id FROM ops.ops_request WHERE confirmed_at IS NOT NULL")
        confirmed = {r["request_id"] for r in rows}
        latest = await cascade.query(
            "SELECT paused_until FROM ops.ops_professional_version "
            f"WHERE rpps = '{paused_rpps}' ORDER BY at DESC LIMIT 1"
        )
        pause = latest[0]["paused_until"] if latest else None
        if set(cascade.posted) <= confirmed and pause is not None:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"read model: {len(set(cascade.posted) - confirmed)} requests not confirmed, pause {pause}")
