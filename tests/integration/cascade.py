"""The three services in their own processes, a small directory, requests and professionals who
accept: the harness of the tests that take the broker or the database away mid-cascade."""

from __future__ import annotations

import asyncio
import email
import re
import tempfile
import time
from datetime import timedelta
from email import policy
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from services.common.clock import utcnow
from tests.integration.helpers import ALWAYS_OPEN, fresh_topics, start_service, wait_healthy

LINK = re.compile(r"http://[^/\s]+(/o/[A-Za-z0-9_\-]+)")
OWN_LINK = re.compile(r"http://[^/\s]+(/p/[A-Za-z0-9_.\-]+)")
AUTH = {"Authorization": "Bearer k"}  # a regulator
ADMIN = {"Authorization": "Bearer ak"}
FINAL = ("confirmed", "unresolved", "cancelled")


class Cascade:
    """intake, matcher and notifier (and, when asked, the operations service) as OS processes on
    one database and one broker; the notifier keeps its e-mails in a folder, where the
    professionals' links are read. The professionals belong to one CPTS, `cpts-cascade`."""

    def __init__(self, database_url: str, bootstrap: str, with_ops: bool = False) -> None:
        self.database_url = database_url
        self.prefix = fresh_topics().prefix
        self.mail = Path(tempfile.mkdtemp()) / "mail"
        self.log = Path(tempfile.mkstemp(suffix=".log")[1])
        # the reconciler (requests stuck a minute) looks every 5 s: its safety net acts within the tests' window
        common = {"INTERNAL_API_KEY": "ik", "BROKER_CHECK_SECONDS": "0.5", "RECONCILE_SECONDS": "5"}
        # consumers rest as on the embedded broker, and look on their own only every 30 s: each hop
        # between these processes is carried by a relay's wake (services/common/consumer_rest.py)
        common |= {"CONSUMER_REST_AFTER_MS": "300", "CONSUMER_LOOK_SECONDS": "30"}
        self.intake = start_service("intake", database_url, bootstrap, self.prefix, self.log, **common)
        self.matcher = start_service("matcher", database_url, bootstrap, self.prefix, self.log, **common)
        self.notifier = start_service(
            "notifier",
            database_url,
            bootstrap,
            self.prefix,
            self.log,
            INTAKE_URL=f"http://127.0.0.1:{self.intake[1]}",
            DATA_DIR=str(self.mail.parent),
            **common,
        )
        self.processes = [self.intake, self.matcher, self.notifier]
        if with_ops:
            matcher_url = f"http://127.0.0.1:{self.matcher[1]}"
            ops = start_service(
                "ops", database_url, bootstrap, self.prefix, self.log, MATCHER_URL=matcher_url, **common
            )
            self.processes.append(ops)
        # idle connections dropped before uvicorn's 5 s keep-alive closes them (see tests/e2e/conftest.py)
        self.http = httpx.AsyncClient(timeout=10, limits=httpx.Limits(keepalive_expiry=2.0))
        self.accepted: dict[str, str] = {}  # offer link → the professional whose e-mail it came in
        self.posted: list[str] = []  # request ids the intake answered 202 to

    def url(self, service: tuple[Any, int], path: str) -> str:
        return f"http://127.0.0.1:{service[1]}{path}"

    async def start(self, professionals: int = 5, slots: int = 3) -> None:
        for process, port in self.processes:
            wait_healthy(port, process)
        start = utcnow().replace(second=0, microsecond=0) + timedelta(hours=2)
        territory = {"name": "CPTS cascade", "communes": ["79174"]}
        put = await self.http.put(self.url(self.matcher, "/v1/territories/cpts-cascade"), json=territory, headers=ADMIN)
        assert put.status_code in (200, 201), put.text
        for n in range(professionals):
            rpps = f"8100000000{n}"
            site = {"site_id": "main", "name": "Cabinet", "commune_insee": "79174", "opening_hours": ALWAYS_OPEN}
            body = {"name": f"Dr {n}", "profession": "general_practitioner", "email": f"{rpps}@x.org", "sites": [site]}
            body["cpts_id"] = "cpts-cascade"
            put = await self.http.put(self.url(self.matcher, f"/v1/professionals/{rpps}"), json=body, headers=ADMIN)
            assert put.status_code in (200, 201), put.text
            for s in range(slots):
                at = start + timedelta(minutes=20 * (slots * n + s))
                end = at + timedelta(minutes=20)
                slot = {"rpps": rpps, "site_id": "main", "start": at.isoformat(), "end": end.isoformat()}
                put = await self.http.put(self.url(self.matcher, f"/v1/slots/s{n}-{s}"), json=slot, headers=ADMIN)
                assert put.status_code in (200, 201), put.text

    async def post(self, count: int) -> list[httpx.Response]:
        """`count` requests; those answered 202 are followed to their end."""
        answers = []
        for _ in range(count):
            request_id = f"C-{len(self.posted) + len(answers)}-{time.monotonic_ns() % 10**6}"
            body = {
                "request_id": request_id,
                "received_at": utcnow().isoformat(),
                "patient": {"commune_insee": "79174"},
            }
            answer = await self.http.post(self.url(self.intake, "/v1/requests"), json=body, headers=AUTH)
            if answer.status_code == 202:
                self.posted.append(request_id)
            answers.append(answer)
        return answers

    async def accept_what_came(self, at_most: int | None = None) -> list[httpx.Response]:
        """As the professionals do: open each new offer e-mail and accept; returns the answers."""
        answers: list[httpx.Response] = []
        for file in sorted(self.mail.glob("*.eml")) if self.mail.exists() else []:
            message = email.message_from_bytes(file.read_bytes(), policy=policy.default)
            text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            if "retirée" in text:
                continue
            for path in LINK.findall(text):
                if path in self.accepted or (at_most is not None and len(answers) >= at_most):
                    continue
                try:
                    page = await self.http.post(self.url(self.notifier, f"{path}/accept"))
                except httpx.TransportError:
                    continue
                answers.append(page)
                if page.status_code == 200 and "vous avez accepté" in page.text:
                    self.accepted[path] = str(message["To"]).split("@")[0]
        return answers

    def own_link(self) -> str:
        """A professional's personal link, from the first e-mail that carries one (their own page,
        served by the matcher)."""
        for file in sorted(self.mail.glob("*.eml")) if self.mail.exists() else []:
            message = email.message_from_bytes(file.read_bytes(), policy=policy.default)
            found = OWN_LINK.search(message.get_body(("plain",)).get_content())  # type: ignore[union-attr]
            if found:
                return self.url(self.matcher, found.group(1))
        raise AssertionError("no e-mail carries a personal link")

    async def link_email_to(self, address: str, timeout: float = 30) -> bool:
        """Whether the "send me my link" e-mail reached `address` (within `timeout`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for file in sorted(self.mail.glob("*.eml")) if self.mail.exists() else []:
                message = email.message_from_bytes(file.read_bytes(), policy=policy.default)
                if address in str(message["To"]) and "Votre lien vers votre espace SAS" in str(message["Subject"]):
                    return True
            await asyncio.sleep(0.2)
        return False

    async def statuses(self) -> dict[str, dict[str, Any]]:
        found = {}
        for request_id in self.posted:
            answer = await self.http.get(self.url(self.intake, f"/v1/requests/{request_id}"), headers=AUTH)
            found[request_id] = answer.json()
        return found

    async def until_all_ended(self, timeout: float = 90) -> dict[str, dict[str, Any]]:
        """Accepting what comes until every request ended; returns the last statuses."""
        deadline = time.monotonic() + timeout
        statuses: dict[str, dict[str, Any]] = {}
        while time.monotonic() < deadline:
            await self.accept_what_came()
            try:
                statuses = await self.statuses()
            except httpx.TransportError:
                statuses = {}
            if statuses and all(s.get("status") in FINAL for s in statuses.values()):
                break
            await asyncio.sleep(0.5)
        return statuses

    async def query(self, sql: str) -> list[Any]:
        """Rows straight from the shared database (every service's schema)."""
        url = make_url(self.database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        connection = await asyncpg.connect(url)
        try:
            return list(await connection.fetch(sql))
        finally:
            await connection.close()

    async def offers_agree(self) -> tuple[dict[str, str], dict[str, str]]:
        """Every offer as the matcher sees it, and as the notifier does (in the matcher's words)."""
        url = make_url(self.database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        connection = await asyncpg.connect(url)
        try:
            matcher = dict(await connection.fetch("SELECT offer_id, status FROM matcher.match_offer"))
            notifier = dict(await connection.fetch("SELECT offer_id, status FROM notifier.offer"))
        finally:
            await connection.close()
        return matcher, {offer: "accepted" if status == "confirmed" else status for offer, status in notifier.items()}

    async def stop(self) -> None:
        await self.http.aclose()
        for process, _ in self.processes:
            process.terminate()
        for process, _ in self.processes:
            process.wait(timeout=20)
