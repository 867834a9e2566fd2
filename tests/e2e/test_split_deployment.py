"""The four services as separate OS processes on the embedded broker and database, behind a
gateway routing by the deployment's table, as the containers of deploy/compose.yaml would run:
one request from POST to confirmed, the dashboard and the figures reachable, nothing else."""

from __future__ import annotations

import asyncio
import email
import re
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from email import policy
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from services.common.clock import PARIS, utcnow
from services.common.embedded import free_port
from tests.conftest import create_database
from tests.gateway import Gateway
from tests.integration.helpers import ALWAYS_OPEN, skip_when_every_practice_is_closed, start_service, wait_healthy

pytestmark = pytest.mark.e2e
AUTH = {"Authorization": "Bearer k"}
OPERATOR = ("admin@sas.example.org", "a long enough password")
ADMIN = {"Authorization": "Bearer ak"}
LINK = re.compile(r"http://[^/\s]+(/o/[A-Za-z0-9_\-]+)")


def slot_start() -> Any:
    """Two hours from now, in an always-open practice's day (a 20-minute slot must end by 23:59)."""
    start = utcnow().replace(second=0, microsecond=0) + timedelta(hours=2)
    local = start.astimezone(PARIS)
    if local.hour == 23 and local.minute >= 39:
        start = (local + timedelta(days=1)).replace(hour=0, minute=5)
    return start


@pytest.fixture
async def deployment(postgres_url: str, kafka_bootstrap: str) -> AsyncIterator[tuple[httpx.AsyncClient, Path, Gateway]]:
    skip_when_every_practice_is_closed()
    database_url = await create_database(postgres_url)
    prefix = f"split{uuid.uuid4().hex[:6]}."
    log = Path(tempfile.mkstemp(suffix=".log")[1])
    data = Path(tempfile.mkdtemp())
    common = {"INTERNAL_API_KEY": "ik"}
    intake = start_service("intake", database_url, kafka_bootstrap, prefix, log, **common)
    matcher = start_service("matcher", database_url, kafka_bootstrap, prefix, log, **common)
    processes = {
        "intake": intake,
        "matcher": matcher,
        "notifier": start_service(
            "notifier",
            database_url,
            kafka_bootstrap,
            prefix,
            log,
            INTAKE_URL=f"http://127.0.0.1:{intake[1]}",
            DATA_DIR=str(data),
            **common,
        ),
        "ops": start_service(
            "ops",
            database_url,
            kafka_bootstrap,
            prefix,
            log,
            OPS_ADMIN_EMAIL=OPERATOR[0],
            OPS_ADMIN_PASSWORD=OPERATOR[1],
            MATCHER_URL=f"http://127.0.0.1:{matcher[1]}",
            **common,
        ),
    }
    gateway = Gateway({name: port for name, (_, port) in processes.items()})
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(gateway, host="127.0.0.1", port=port, log_config=None, lifespan="off"))
    serving = asyncio.create_task(server.serve())
    try:
        for process, service_port in processes.values():
            wait_healthy(service_port, process)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=15) as http:
            yield http, data / "mail", gateway
    finally:
        server.should_exit = True
        await serving
        await gateway.client.aclose()
        for process, _ in processes.values():
            process.terminate()
        for process, _ in processes.values():
            process.wait(timeout=30)


async def eventually(check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = await check()
        if found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.2)


async def test_one_request_from_post_to_confirmed_through_the_gateway(
    deployment: tuple[httpx.AsyncClient, Path, Gateway],
) -> None:
    http, mail, gateway = deployment
    territory = {"name": "CPTS split", "communes": ["79174"]}
    assert (await http.put("/v1/territories/cpts-split", json=territory, headers=ADMIN)).status_code == 201
    site = {"site_id": "main", "name": "Cabinet", "commune_insee": "79174", "opening_hours": ALWAYS_OPEN}
    gp = {"name": "Dr Split", "profession": "general_practitioner", "cpts_id": "cpts-split",
          "sas_participation": "individual", "email": "gp@split.example.org", "sites": [site]}  # fmt: skip
    assert (await http.put("/v1/professionals/79000000001", json=gp, headers=ADMIN)).status_code == 201
    start = slot_start()
    slot = {"rpps": "79000000001", "site_id": "main", "start": start.isoformat(),
            "end": (start + timedelta(minutes=20)).isoformat()}  # fmt: skip
    assert (await http.put("/v1/slots/split-1", json=slot, headers=ADMIN)).status_code == 201
    request = {"request_id": "SPLIT-1", "received_at": utcnow().isoformat(), "patient": {"commune_insee": "79174"}}
    assert (await http.post("/v1/requests", json=request, headers=AUTH)).status_code == 202

    async def offer_link() -> str | None:
        for file in sorted(mail.glob("*.eml")) if mail.exists() else []:
            message = email.message_from_bytes(file.read_bytes(), policy=policy.default)
            found = LINK.findall(message.get_body(("plain",)).get_content())  # type: ignore[union-attr]
            if found:
                return str(found[0])
        return None

    link = await eventually(offer_link)
    assert link, "no offer e-mail reached the professional"
    accepted = await http.post(f"{link}/accept")
    assert accepted.status_code == 200 and "vous avez accepté" in accepted.text

    async def confirmed() -> dict[str, Any] | None:
        status = (await http.get("/v1/requests/SPLIT-1", headers=AUTH)).json()
        return dict(status) if status["status"] == "confirmed" else None

    status = await eventually(confirmed)
    assert status and status["appointment"]["professional"]["rpps"] == "79000000001"

    today = utcnow().astimezone(PARIS).date().isoformat()  # indicator 2 counts by the day of receipt
    period = {"cpts_id": "cpts-split", "from": today, "to": today}

    async def counted() -> bool:
        figures = (await http.get("/v1/indicators", params=period, headers=AUTH)).json()
        return bool(figures.get("sas_requests_with_appointment") == 1)

    assert await eventually(counted), "the ops service's read model never counted the appointment"
    await the_dashboard_is_reachable(http)
    await a_coordinator_pauses_a_professional_through_the_matcher(http)
    await only_public_paths_are_routed(http)
    owners = {service for _, service in gateway.forwarded}
    assert owners == {"intake", "matcher", "notifier", "ops"}


async def the_dashboard_is_reachable(http: httpx.AsyncClient) -> None:
    form = await http.get("/ops/login")
    assert form.status_code == 200
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf
    logged = await http.post("/ops/login", data={"email": OPERATOR[0], "password": OPERATOR[1], "csrf": csrf.group(1)})
    assert logged.status_code == 303 and logged.headers["location"] == "/ops", logged.text
    dashboard = await http.get("/ops", params={"cpts_id": "cpts-split"})
    assert dashboard.status_code == 200 and "cpts-split" in dashboard.text


async def a_coordinator_pauses_a_professional_through_the_matcher(http: httpx.AsyncClient) -> None:
    """The directory page (ops) asks the matcher, another process, over its internal route."""

    async def listed() -> str | None:
        card = await http.get("/ops/directory/79000000001", params={"cpts_id": "cpts-split"})
        return card.text if card.status_code == 200 else None

    page = await eventually(listed)
    assert page and "Dr Split" in page
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf
    today = utcnow().astimezone(PARIS).date().isoformat()
    paused = await http.post(
        "/ops/directory/79000000001/pause", data={"csrf": csrf.group(1), "cpts_id": "cpts-split", "until": today}
    )
    assert paused.status_code == 303, paused.text
    pro = (await http.get("/v1/professionals/79000000001", headers=ADMIN)).json()
    assert pro["paused_until"] is not None


async def only_public_paths_are_routed(http: httpx.AsyncClient) -> None:
    document = (await http.get("/openapi.json")).json()
    assert {"/v1/requests", "/v1/slots/{slot_id}", "/v1/indicators", "/v1/ops/accounts/{email}"} <= set(
        document["paths"]
    )
    assert (await http.get("/docs")).status_code == 200
    for service in ("intake", "matcher", "notifier", "ops"):
        assert (await http.get(f"/healthz/{service}")).status_code == 200, service
        assert (await http.get(f"/metrics/{service}")).status_code == 200, service
    assert (await http.get("/fhir/metadata")).status_code == 200
    assert (
        await http.get("/internal/v1/requests/SPLIT-1/contact", headers={"Authorization": "Bearer ik"})
    ).status_code == 404
    assert (await http.get("/v2/requests")).status_code == 404
