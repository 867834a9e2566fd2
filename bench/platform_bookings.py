"""The national SAS platform booking slots over FHIR during a load run (`bench/load.py --platform N`).

Every 1/N second it searches one GP's free slots as the platform does (`GET /fhir/Slot` with the
guide's query) and books the first one (`POST /fhir/Appointment`), racing the cascade that offers
the same slots to the regulators' requests. Afterwards the load run counts a slot booked by both
as a double booking, and this prints how searches and bookings were answered (never a 5xx; a
422 is the platform losing a race to the cascade, as it should sometimes).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

RPPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"  # the guide's idNat_PS (8 + RPPS)
OPERATOR = "http://interopsante.org/fhir/StructureDefinition/FrAppointmentOperator"
REGULATOR_SYSTEM = "urn:oid:1.2.250.1.213.3.6"
BENCH_SYSTEM = "urn:oid:1.2.250.1.213.3.6.99"  # the benchmark's own appointment ids
FHIR_JSON = "application/fhir+json"


@dataclass
class PlatformBookings:
    base: str
    key: str
    rate: float  # bookings tried per second
    rng: random.Random
    answers: Counter[str] = field(default_factory=Counter)
    booked: list[tuple[str, str]] = field(default_factory=list)  # (rpps, start) of each 201

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}", "Accept": FHIR_JSON}

    async def book_until(self, http: aiohttp.ClientSession, rpps: list[str], stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.book_one(http, self.rng.choice(rpps))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1 / self.rate)

    async def book_one(self, http: aiohttp.ClientSession, rpps: str) -> None:
        now = datetime.now(UTC)
        query = [
            ("start", "ge" + now.isoformat()),
            ("start", "le" + (now + timedelta(hours=48)).isoformat()),
            ("schedule.actor:Practitioner.identifier", f"{RPPS_SYSTEM}|8{rpps}"),
            ("status", "free"),
        ]
        try:
            async with http.get(f"{self.base}/fhir/Slot", params=query, headers=self.headers) as answer:
                self.answers[f"search {answer.status}"] += 1
                found = await answer.json(content_type=None) if answer.status == 200 else {}
            slots = [e["resource"] for e in found.get("entry", []) if e["resource"]["resourceType"] == "Slot"]
            if not slots:
                return
            slot = slots[0]
            body = _appointment(rpps, slot["start"], slot["end"])
            headers = {**self.headers, "Content-Type": FHIR_JSON}
            async with http.post(f"{self.base}/fhir/Appointment", json=body, headers=headers) as answer:
                await answer.read()
                self.answers[f"book {answer.status}"] += 1
                if answer.status == 201:
                    self.booked.append((rpps, slot["start"]))
        except (aiohttp.ClientError, TimeoutError) as error:
            self.answers[type(error).__name__] += 1

    def line(self) -> str:
        server_errors = sum(n for k, n in self.answers.items() if k.split()[-1][:1] not in "234")
        return f"platform answers={dict(self.answers)} booked={len(self.booked)} server_errors={server_errors}"


def _appointment(rpps: str, start: str, end: str) -> dict[str, Any]:
    return {
        "resourceType": "Appointment",
        "identifier": [{"system": BENCH_SYSTEM, "value": uuid.uuid4().hex}],
        "status": "booked",
        "start": start,
        "end": end,
        "participant": [{"actor": {"identifier": {"system": RPPS_SYSTEM, "value": f"8{rpps}"}}, "status": "accepted"}],
        "extension": [
            {"url": OPERATOR, "valueReference": {"identifier": {"system": REGULATOR_SYSTEM, "value": "bench"}}}
        ],
    }
