"""The broker killed and restarted mid-cascade, the three services each in its own process.

The embedded broker keeps everything in memory: when it comes back its topics, the events on
them and the groups' offsets are gone. Requests are posted and offers accepted before, during
and after the outage; every request must end confirmed with the professional who accepted it,
and the matcher and the notifier must agree on every offer.
"""

from __future__ import annotations

import asyncio
import email
import re
import tempfile
import time
from datetime import timedelta
from email import policy
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from services.common.clock import utcnow
from services.common.embedded import EmbeddedKafka
from tests.conftest import create_database
from tests.integration.helpers import (
    ALWAYS_OPEN,
    fresh_topics,
    skip_when_every_practice_is_closed,
    start_service,
    wait_healthy,
)

LINK = re.compile(r"http://[^/\s]+(/o/[A-Za-z0-9_\-]+)")
AUTH = {"Authorization": "Bearer k"}
PROFESSIONALS = 5
REQUESTS = 12


class Services:
    def __init__(self, database_url: str, bootstrap: str, mail: Path) -> None:
        prefix = fresh_topics().prefix
        self.log = Path(tempfile.mkstemp(suffix=".log")[1])
        common = {"INTERNAL_API_KEY": "ik", "BROKER_CHECK_SECONDS": "0.5"}
        self.intake = start_service("intake", database_url, bootstrap, prefix, self.log, **common)
        self.matcher = start_service("matcher", database_url, bootstrap, prefix, self.log, **common)
        self.notifier = start_service(
            "notifier",
            database_url,
            bootstrap,
            prefix,
            self.log,
            INTAKE_URL=f"http://127.0.0.1:{self.intake[1]}",
            DATA_DIR=str(mail.parent),
            **common,
        )
        self.processes = [self.intake, self.matcher, self.notifier]

    def url(self, service: tuple[object, int], path: str) -> str:
        return f"http://127.0.0.1:{service[1]}{path}"

    def stop(self) -> None:
        for process, _ in self.processes:
            process.terminate()
        for process, _ in self.processes:
            process.wait(timeout=20)


async def test_the_broker_killed_and_restarted_mid_cascade_loses_nothing(postgres_url: str) -> None:
    skip_when_every_practice_is_closed()
    database_url = await create_database(postgres_url)
    broker = EmbeddedKafka().start()
    mail = Path(tempfile.mkdtemp()) / "mail"
    services = Services(database_url, broker.bootstrap_servers, mail)
    accepted: dict[str, str] = {}  # offer link → the professional whose e-mail it came in
    try:
        for process, port in services.processes:
            wait_healthy(port, process)
        async with httpx.AsyncClient(timeout=10) as http:
            start = utcnow().replace(second=0, microsecond=0) + timedelta(hours=2)
            for n in range(PROFESSIONALS):
                rpps = f"8100000000{n}"
                site = {"site_id": "main", "name": "Cabinet", "commune_insee": "79174", "opening_hours": ALWAYS_OPEN}
                body = {"name": f"Dr {n}", "profession": "general_practitioner", "email": f"{rpps}@x.org"}
                put = await http.put(
                    services.url(services.matcher, f"/v1/professionals/{rpps}"),
                    json={**body, "sites": [site]},
                    headers=AUTH,
                )
                assert put.status_code in (200, 201), put.text
                for s in range(3):
                    at = start + timedelta(minutes=20 * (3 * n + s))
                    slot = {
                        "rpps": rpps,
                        "site_id": "main",
                        "start": at.isoformat(),
                        "end": (at + timedelta(minutes=20)).isoformat(),
                    }
                    put = await http.put(services.url(services.matcher, f"/v1/slots/s{n}-{s}"), json=slot, headers=AUTH)
                    assert put.status_code in (200, 201), put.text

            async def post(count: int, first: int) -> list[str]:
                ids = [f"BL-{first + i}" for i in range(count)]
                for request_id in ids:
                    body = {
                        "request_id": request_id,
                        "received_at": utcnow().isoformat(),
                        "patient": {"commune_insee": "79174"},
                    }
                    answer = await http.post(services.url(services.intake, "/v1/requests"), json=body, headers=AUTH)
                    assert answer.status_code == 202, answer.text
                return ids

            async def accept_what_came() -> None:
                """As the professionals do: open each new offer e-mail and accept it."""
                for file in sorted(mail.glob("*.eml")) if mail.exists() else []:
                    message = email.message_from_bytes(file.read_bytes(), policy=policy.default)
                    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
                    rpps = str(message["To"]).split("@")[0]
                    for path in LINK.findall(text):
                        if path in accepted or "retirée" in text:
                            continue
                        try:
                            page = await http.post(services.url(services.notifier, f"{path}/accept"))
                        except httpx.TransportError:
                            continue
                        if page.status_code == 200 and "vous avez accepté" in page.text:
                            accepted[path] = rpps

            ids = await post(REQUESTS // 2, 0)
            await asyncio.sleep(2)
            await accept_what_came()
            assert accepted, "no offer was accepted before the broker went away"

            broker.process.kill()  # type: ignore[union-attr]
            broker.process.wait()  # type: ignore[union-attr]
            ids += await post(REQUESTS // 2, REQUESTS // 2)  # recorded, not yet published
            await accept_what_came()
            await asyncio.sleep(2)
            broker = EmbeddedKafka(port=broker.port).start()  # empty: no topics, no offsets

            statuses: dict[str, dict[str, object]] = {}
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                await accept_what_came()
                for request_id in ids:
                    answer = await http.get(services.url(services.intake, f"/v1/requests/{request_id}"), headers=AUTH)
                    statuses[request_id] = answer.json()
                if all(s.get("status") == "confirmed" for s in statuses.values()):
                    break
                await asyncio.sleep(0.5)
            not_confirmed = {
                r: (s.get("status"), s.get("reason")) for r, s in statuses.items() if s.get("status") != "confirmed"
            }
            assert not not_confirmed, (not_confirmed, services.log.read_text()[-3000:])

        # every acceptance a professional saw ended in an appointment with them
        booked_with = {str(s["appointment"]["professional"]["rpps"]) for s in statuses.values()}  # type: ignore[index]
        assert set(accepted.values()) <= booked_with
        assert len(accepted) >= REQUESTS
        # the matcher and the notifier agree on every offer
        connection = await asyncpg.connect(make_url(database_url).set(drivername="postgresql").render_as_string(False))
        try:
            matcher = dict(await connection.fetch("SELECT offer_id, status FROM matcher.match_offer"))
            notifier = dict(await connection.fetch("SELECT offer_id, status FROM notifier.offer"))
        finally:
            await connection.close()
        as_matcher_says = {offer: "accepted" if status == "confirmed" else status for offer, status in notifier.items()}
        assert as_matcher_says == matcher
    finally:
        services.stop()
        broker.stop()
