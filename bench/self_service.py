"""Professionals at their own page during a load run (`bench/load.py --self-service N`).

N of the benchmark's GPs ask for their personal link ("send me my link", read from the service's
mail folder), then, while requests flow, one of them at a time (every `interval` seconds) pauses
until tonight, ends a pause, publishes a slot or changes their extra patients — through the
page's forms, as on a phone. Afterwards: how each action was answered (never a 5xx), and whether
any offer reached a professional while they were on pause (it must not: the claim checks the
pause under the professional's row lock). Offers are told apart per professional by the path of
their booking software's webhook (`/booking/<rpps>`).
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp

PARIS = ZoneInfo("Europe/Paris")
OWN_LINK = re.compile(r"https?://[^/\s]+(/p/[A-Za-z0-9_.\-]+)")


@dataclass
class Professional:
    rpps: str
    link: str
    paused_since: datetime | None = None  # wall clock, once the pause was answered
    pauses: list[tuple[datetime, datetime]] = field(default_factory=list)  # (answered, resume sent)


@dataclass
class SelfService:
    base: str
    mail: Path
    interval: float
    rng: random.Random
    professionals: dict[str, Professional] = field(default_factory=dict)
    answers: Counter[str] = field(default_factory=Counter)  # "pause 303", "publish 422", …
    offers: list[tuple[str, datetime, str]] = field(default_factory=list)  # rpps, received (wall), request

    async def ask_links(self, http: aiohttp.ClientSession, rpps: list[str]) -> None:
        for one in rpps:
            async with http.post(f"{self.base}/p", data={"email": f"{one}@bench.example.org"}) as answer:
                await answer.read()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(self.professionals) < len(rpps):
            for file in sorted(self.mail.glob("*.eml")) if self.mail.exists() else []:
                message = email.message_from_bytes(file.read_bytes(), policy=policy.default)
                found = OWN_LINK.search(message.get_body(("plain",)).get_content())  # type: ignore[union-attr]
                who = str(message["To"]).split("@")[0]
                if found and who in rpps:
                    self.professionals[who] = Professional(who, found.group(1))
            await asyncio.sleep(0.2)
        print(f"self-service: {len(self.professionals)} of {len(rpps)} professionals got their link", flush=True)

    def offered(self, rpps: str, request_id: str) -> None:
        if rpps in self.professionals:
            self.offers.append((rpps, datetime.now(UTC), request_id))

    async def act_until(self, http: aiohttp.ClientSession, stop: asyncio.Event) -> None:
        while not stop.is_set() and self.professionals:
            await self.act_once(http, self.rng.choice(list(self.professionals.values())))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)

    async def act_once(self, http: aiohttp.ClientSession, pro: Professional) -> None:
        today = datetime.now(PARIS).date()
        if pro.paused_since is not None:
            resumed = datetime.now(UTC)
            status = await self._post(http, pro, "pause", {})
            if status == 303:
                pro.pauses.append((pro.paused_since, resumed))
                pro.paused_since = None
            return
        what = self.rng.choice(["pause", "publish", "publish", "overflow"])
        if what == "pause":
            if await self._post(http, pro, "pause", {"until": today.isoformat()}) == 303:
                pro.paused_since = datetime.now(UTC)
        elif what == "publish":
            start = datetime.now(PARIS) + timedelta(minutes=self.rng.randrange(60, 40 * 60, 5))
            form = {"day": start.date().isoformat(), "at": start.strftime("%H:%M"), "minutes": "20", "site_id": "main"}
            await self._post(http, pro, "slots", form)
        else:
            await self._post(http, pro, "overflow", {"accepts": "true", "cap": str(self.rng.randint(1, 5))})

    async def _post(self, http: aiohttp.ClientSession, pro: Professional, action: str, form: dict[str, str]) -> int:
        name = "publish" if action == "slots" else action
        try:
            async with http.post(f"{self.base}{pro.link}/{action}", data=form, allow_redirects=False) as answer:
                await answer.read()
                self.answers[f"{name} {answer.status}"] += 1
                return answer.status
        except (aiohttp.ClientError, TimeoutError) as error:
            self.answers[f"{name} {type(error).__name__}"] += 1
            return 0

    async def offers_while_paused(self, http: aiohttp.ClientSession, key: str) -> list[str]:
        """Offers received while their professional was on pause, whose offer the service made after
        the pause was recorded (by the request's own history): each one is a fault."""
        now = datetime.now(UTC)
        faults = []
        for rpps, received, request_id in self.offers:
            pro = self.professionals.get(rpps)
            if pro is None:
                continue
            windows = pro.pauses + ([(pro.paused_since, now)] if pro.paused_since else [])
            if not any(start <= received <= end for start, end in windows):
                continue
            async with http.get(
                f"{self.base}/v1/requests/{request_id}", headers={"Authorization": f"Bearer {key}"}
            ) as answer:
                history = (await answer.json()).get("history", [])
            made = [datetime.fromisoformat(h["at"]) for h in history if h["status"] == "offered"]
            if any(start <= at <= end for at in made for start, end in windows):
                faults.append(f"{request_id} offered to {rpps} on pause")
        return faults

    def line(self, faults: list[str]) -> str:
        pauses = sum(len(p.pauses) + (p.paused_since is not None) for p in self.professionals.values())
        server_errors = sum(n for k, n in self.answers.items() if not k.split()[1].startswith(("2", "3", "4")))
        return (
            f"self_service professionals={len(self.professionals)} pauses={pauses} answers={dict(self.answers)} "
            f"server_errors={server_errors} offers_to_them={len(self.offers)} offers_while_paused={len(faults)}"
        )
