"""All three services running on a real broker and database, HTTP in, real SMTP out."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage, Message
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from aiosmtpd.controller import Controller
from fastapi import FastAPI, Request, Response
from playwright.async_api import Browser, async_playwright
from standardwebhooks.webhooks import Webhook

from services.common.access.accounts import Accounts
from services.common.clock import PARIS
from services.common.embedded import free_port
from services.common.runtime import Runtime
from services.common.settings import Settings
from services.main import build_app
from services.ops.deps import Operations
from tests.conftest import TUESDAY_MORNING, FakeClock, create_database

API_KEY = "test-regulator-key"
ADMIN_KEY = "test-admin-key"
FHIR_KEY = "test-platform-key"
LINK = re.compile(r"https?://[^/\s]+(/o/[A-Za-z0-9_\-]+)")


class SmtpSink:
    """A real SMTP server on loopback that keeps what it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []
        self._lock = threading.Lock()
        self.controller = Controller(self, hostname="127.0.0.1", port=free_port())

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            self.messages.append(
                (list(envelope.rcpt_tos), email.message_from_bytes(envelope.content, policy=policy.default))
            )
        return "250 OK"

    def to(self, recipient: str) -> list[Message]:
        with self._lock:
            return [m for rcpt, m in self.messages if recipient in rcpt]

    async def wait_for(self, recipient: str, count: int = 1, timeout: float = 15.0) -> list[Message]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.to(recipient)
            if len(found) >= count:
                return found
            await asyncio.sleep(0.05)
        raise AssertionError(f"{count} e-mail(s) to {recipient} expected, got {len(self.to(recipient))}")


def body_of(message: Message) -> str:
    assert isinstance(message, EmailMessage)
    return str(message.get_content())


def link_path(message: Message) -> str:
    found = LINK.search(body_of(message))
    assert found, "no offer link in the e-mail"
    return found.group(1)


SECRET = "whsec_" + base64.b64encode(b"test-signing-secret-32-bytes-long").decode()


class Receiver:
    """A local HTTP endpoint standing for an SMS provider, a booking software or a regulator:
    it keeps what it receives and can be told to fail."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.failures: dict[str, int] = {}  # path -> how many calls to answer 500 first
        app = FastAPI()

        @app.post("/{path:path}")
        async def take(path: str, request: Request) -> Response:
            body = await request.body()
            if self.failures.get(path, 0) > 0:
                self.failures[path] -= 1
                return Response(status_code=500)
            self.received.append((path, dict(request.headers), body))
            return Response(status_code=204)

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None))

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def bodies(self, path: str, secret: str = SECRET) -> list[dict[str, Any]]:
        """What came to `path`, each checked as a receiver would: the `standardwebhooks` library
        verifies the signature and the timestamp's freshness (WebhookVerificationError otherwise)."""
        found = []
        for got_path, headers, body in self.received:
            if got_path == path:
                found.append(Webhook(secret).verify(body, headers))
        return found

    async def wait_for(
        self, path: str, count: int = 1, timeout: float = 15.0, secret: str = SECRET
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.bodies(path, secret)) >= count:
                return self.bodies(path, secret)
            await asyncio.sleep(0.05)
        raise AssertionError(f"{count} call(s) to /{path} expected, got {len(self.bodies(path, secret))}")


@dataclass
class Stack:
    http: httpx.AsyncClient
    mail: SmtpSink
    clock: FakeClock
    runtime: Runtime
    receiver: Receiver
    database_url: str  # as the database's owner (the services connect as their own roles)
    auth: dict[str, str] = field(default_factory=lambda: {"Authorization": f"Bearer {API_KEY}"})  # a regulator
    admin: dict[str, str] = field(default_factory=lambda: {"Authorization": f"Bearer {ADMIN_KEY}"})
    platform: dict[str, str] = field(default_factory=lambda: {"Authorization": f"Bearer {FHIR_KEY}"})

    def accounts(self) -> Accounts:
        """People's accounts, as the operations service keeps them (the shared schema)."""
        ops = next(p for p in self.runtime.parts if p.name == "ops")
        return next(thing for thing in ops.provides if isinstance(thing, Operations)).accounts

    def paris(self, day_offset: int, hour: int, minute: int = 0) -> datetime:
        """A Paris wall-clock time on the fake clock's day (+ day_offset)."""
        day = TUESDAY_MORNING.astimezone(PARIS).date() + timedelta(days=day_offset)
        return datetime(day.year, day.month, day.day, hour, minute, tzinfo=PARIS)

    async def professional(
        self,
        rpps: str,
        commune: str,
        *,
        profession: str = "general_practitioner",
        overflow_cap: int = 0,
        slots: list[datetime] | None = None,
        **extra: Any,
    ) -> str:
        body = {
            "name": f"Dr {rpps}",
            "profession": profession,
            "cpts_id": None,
            "sas_participation": "individual",
            "accepts_overflow": overflow_cap > 0,
            "overflow_daily_cap": overflow_cap,
            "email": f"{rpps}@sante.example.org",
            "sites": [{"site_id": "main", "name": f"Cabinet {rpps}", "commune_insee": commune}],
            **extra,
        }
        response = await self.http.put(f"/v1/professionals/{rpps}", json=body, headers=self.admin)
        assert response.status_code in (200, 201), response.text
        for i, start in enumerate(slots or []):
            slot = {
                "rpps": rpps,
                "site_id": "main",
                "start": start.isoformat(),
                "end": (start + timedelta(minutes=20)).isoformat(),
                "mode": "in_person",
            }
            response = await self.http.put(f"/v1/slots/{rpps}-{i}", json=slot, headers=self.admin)
            assert response.status_code in (200, 201), response.text
        return f"{rpps}@sante.example.org"

    def request_body(self, commune: str, **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "request_id": f"SAS-{uuid.uuid4().hex[:10]}",
            "received_at": self.clock.now.isoformat(),
            "urgency": "48h",
            "motive": "general",
            "patient": {
                "commune_insee": commune,
                "age": 67,
                "teleconsultation_ok": False,
                "contact": {"name": "Jeanne Patiente", "phone": "06 12 34 56 78"},
            },
        }
        body.update(extra)
        return body

    async def submit(self, commune: str, **extra: Any) -> str:
        body = self.request_body(commune, **extra)
        response = await self.http.post("/v1/requests", json=body, headers=self.auth)
        assert response.status_code == 202, response.text
        return str(body["request_id"])

    async def status(self, request_id: str) -> dict[str, Any]:
        response = await self.http.get(f"/v1/requests/{request_id}", headers=self.auth)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def wait_status(self, request_id: str, status: str, timeout: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        seen: dict[str, Any] = {}
        while time.monotonic() < deadline:
            seen = await self.status(request_id)
            if seen["status"] == status:
                return seen
            await asyncio.sleep(0.05)
        raise AssertionError(f"{request_id}: expected {status}, still {seen.get('status')}: {seen}")

    async def wait_waiting(self, request_id: str, timeout: float = 15.0) -> dict[str, Any]:
        """Until the request is searching and waits for someone (see `waiting` in its status)."""
        deadline = time.monotonic() + timeout
        seen: dict[str, Any] = {}
        while time.monotonic() < deadline:
            seen = await self.status(request_id)
            if seen["status"] == "searching" and "waiting" in seen:
                return seen
            await asyncio.sleep(0.05)
        raise AssertionError(f"{request_id}: expected to be waiting, got {seen}")


async def operator_client(stack: Stack, email: str, password: str) -> httpx.AsyncClient:
    """A client logged in to the operations dashboard (checks the session cookie's flags)."""
    client = httpx.AsyncClient(base_url=str(stack.http.base_url), timeout=10, limits=httpx.Limits(keepalive_expiry=2.0))
    form = await client.get("/ops/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf
    logged = await client.post("/ops/login", data={"email": email, "password": password, "csrf": csrf.group(1)})
    assert logged.status_code == 303 and logged.headers["location"] == "/ops", logged.text
    cookie = logged.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    return client


@pytest.fixture(scope="module")
async def stack(kafka_bootstrap: str, postgres_url: str) -> AsyncIterator[Stack]:
    async with running_stack(kafka_bootstrap, postgres_url) as started:
        yield started


@pytest.fixture(scope="module")
async def trial_stack(kafka_bootstrap: str, postgres_url: str) -> AsyncIterator[Stack]:
    """As `make run`'s trial: no SMTP relay, the e-mails kept in DATA_DIR/mail (the trial mailbox)."""
    async with running_stack(kafka_bootstrap, postgres_url, trial=True) as started:
        yield started


@contextlib.asynccontextmanager
async def running_stack(kafka_bootstrap: str, postgres_url: str, trial: bool = False) -> AsyncIterator[Stack]:
    database_url = await create_database(postgres_url)
    mail = SmtpSink()
    mail.controller.start()
    port = free_port()
    receiver = Receiver()
    receiving = asyncio.create_task(receiver.server.serve())
    settings = Settings(
        sms_webhook_url=receiver.url("sms"),
        sms_webhook_secret=SECRET,
        webhook_secret=SECRET,
        callback_secret=SECRET,
        regulator_api_keys=API_KEY,
        admin_api_keys=ADMIN_KEY,
        fhir_api_keys=FHIR_KEY,
        internal_api_key="internal-test-key",
        secret_key="test-secret",
        smtp_host=None if trial else "127.0.0.1",
        smtp_port=mail.controller.port,
        topic_prefix=f"t{uuid.uuid4().hex[:8]}.",
        port=port,
        demo_data=False,
        sweep_interval_seconds=0.1,
        data_dir=Path(tempfile.mkdtemp()),
        outbound_allowed_networks="127.0.0.0/8",  # the receivers of these tests listen on loopback
        # every test calls from 127.0.0.1: limits out of the way (tests/e2e/test_access.py lowers them)
        api_rate_limit="100000/minute",
        page_rate_limit="100000/minute",
        login_rate_limit="10000/minute",
        link_request_rate_limit="10000/hour",
    )
    clock = FakeClock(TUESDAY_MORNING)
    app, runtime = build_app(settings, database_url, kafka_bootstrap, clock=clock)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    serving = asyncio.create_task(server.serve())
    # idle connections dropped before uvicorn's 5 s keep-alive ends: reusing one the server is
    # closing at that moment fails with a ReadError (seen once in CI, three accepts at once)
    keep = httpx.Limits(keepalive_expiry=2.0)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10, limits=keep) as http:
        deadline = time.monotonic() + 60
        while True:
            try:
                if (await http.get("/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and not serving.done(), "the services did not become healthy"
            await asyncio.sleep(0.1)
        yield Stack(http, mail, clock, runtime, receiver, database_url)
    server.should_exit = receiver.server.should_exit = True
    await serving
    await receiving
    mail.controller.stop()


def chromium() -> str:
    """Debian's Chromium, installed here when it is missing (Playwright's own download cannot work here)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.geteuid() != 0:
        pytest.fail("Chromium is missing and only root can install it: apt-get install -y chromium")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, capture_output=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"],
        check=True,
        env=env,
        capture_output=True,
    )
    found = shutil.which("chromium")
    assert found, "chromium did not install"
    return found


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    path = chromium()
    async with async_playwright() as p:
        launched = await p.chromium.launch(
            executable_path=path,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )
        yield launched
        await launched.close()
