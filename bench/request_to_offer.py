"""How long from `POST /v1/requests` to an offer pending with a professional, end to end.

Starts the three services on the embedded broker and database (or KAFKA_BOOTSTRAP_SERVERS /
DATABASE_URL), registers professionals with free slots, posts requests one after another and
polls each until `offered`. Prints p50/p99 and a closing line:

    python bench/request_to_offer.py [--requests 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import uvicorn

from services.common.clock import PARIS
from services.common.embedded import free_port
from services.common.logging import configure_logging
from services.common.settings import Settings
from services.main import build_app, infrastructure

KEY = "bench-key"
ADMIN_KEY = "bench-admin-key"
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)  # a Tuesday morning: the fake clock of the run


async def run(requests: int) -> None:
    settings = Settings(
        regulator_api_keys=KEY,
        admin_api_keys=ADMIN_KEY,
        secret_key="bench",
        demo_data=False,
        data_dir=Path(tempfile.mkdtemp(prefix="bench-")),
        port=free_port(),
        log_level="WARNING",
    )
    configure_logging("console", "WARNING")
    with infrastructure(settings) as (database_url, bootstrap):
        app, _ = build_app(settings, database_url, bootstrap, clock=lambda: NOW)
        server = uvicorn.Server(uvicorn.Config(app, port=settings.port, log_config=None))
        serving = asyncio.create_task(server.serve())
        auth = {"Authorization": f"Bearer {ADMIN_KEY}"}  # the directory (requests: the regulator's key)
        regulator = {"Authorization": f"Bearer {KEY}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.port}", timeout=10) as http:
            while True:
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            start = datetime(2026, 12, 1, 14, 0, tzinfo=PARIS)
            for i in range(requests):  # one GP and one slot per request, all in Melle
                rpps = f"9{i:010d}"
                await http.put(
                    f"/v1/professionals/{rpps}",
                    headers=auth,
                    json={
                        "name": f"Dr {i}",
                        "profession": "general_practitioner",
                        "email": f"{rpps}@bench.example.org",
                        "sites": [{"site_id": "s", "name": "Cabinet", "commune_insee": "79174"}],
                    },
                )
                await http.put(
                    f"/v1/slots/b{i}",
                    headers=auth,
                    json={
                        "rpps": rpps,
                        "site_id": "s",
                        "start": (start + timedelta(minutes=i)).isoformat(),
                        "end": (start + timedelta(minutes=i + 20)).isoformat(),
                    },
                )
            latencies = []
            for _ in range(requests):
                request_id = f"B-{uuid.uuid4().hex[:12]}"
                began = time.perf_counter()
                posted = await http.post(
                    "/v1/requests",
                    headers=regulator,
                    json={
                        "request_id": request_id,
                        "received_at": NOW.isoformat(),
                        "patient": {"commune_insee": "79174"},
                    },
                )
                assert posted.status_code == 202, posted.text
                # polling the public API is what a regulator does, and what we measure
                while (await http.get(f"/v1/requests/{request_id}", headers=regulator)).json()["status"] != "offered":  # noqa: ASYNC110
                    await asyncio.sleep(0.002)
                latencies.append((time.perf_counter() - began) * 1000)
        server.should_exit = True
        await serving
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"{requests} requests, each POST → offered through intake, matcher and back (polled every 2 ms)")
    print(f"request_to_offer p50_ms={p50:.1f} p99_ms={p99:.1f} max_ms={latencies[-1]:.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    asyncio.run(run(parser.parse_args().requests))
