"""Open-loop load on the running service: POST /v1/requests → `offered` callback, at fixed rates.

Tried as a regulator's software uses it. The benchmark starts `sas-run` (embedded broker and
database, a fresh data folder) or targets a running service (`--url`, `--key`; it must be able to
reach this machine's callback receiver). It loads a département's directory through the public
API (`--gps` general practitioners over the département's communes, drawn by population, each
with `--slots` free slots in the next 48 h, one in five also taking extra patients; their practices
are open around the clock so that the run does not depend on the hour), then posts requests
**open-loop**: each send is scheduled by the clock at the arrival rate and never waits for an
earlier reply. Each request carries a `callback_url` on a local receiver, which timestamps the
`offered` callback. Latency is measured from the *scheduled* send time, so a slow service
cannot hide its backlog by slowing the sender down.

Keeping the directory from running dry: the professionals' booking software is a webhook on the
same receiver. For one request in ten (`--accept-share`) the receiver accepts the offer through
the link the webhook carries, as a professional would; every other request is cancelled by the
regulator as soon as it is `offered`, which withdraws the offer and frees the held slot. At the
end it checks that no slot was booked twice and that every request ended (confirmed, cancelled,
or unresolved with a reason).

For each rate it prints achieved rate, p50/p90/p99/max of POST → offered, requests never offered
(with the reasons of those that ended unresolved), HTTP errors, the CPU used by the service's
processes, the broker and PostgreSQL (in cores), and their memory (PSS), and per request the
service's CPU (ms, its idle polling included) and the transactions PostgreSQL ran (when the
benchmark started the service, so knows its database): steadier figures than latencies to compare
two versions with on a noisy machine. `--ramp` steps the rate
up (10, 20, 50, 100, 200, 400, …) until p99 passes 1 s and prints the knee, the highest rate with
p99 under 1 s. The closing line:

    load knee_rps=… p50_ms_at_20=… p99_ms_at_20=… cpu_ms_per_request_at_20=… idle_cores=… rss_mb=…

(`cpu_ms_per_request_at_20`: service, broker and PostgreSQL together, each also printed apart per
step; `idle_cores`: the three over `--idle` seconds of nothing happening before the load.)

    python bench/load.py                         # 20 requests/s for 30 s
    python bench/load.py --ramp                  # until p99 passes 1 s
    python bench/load.py --rate 50 --duration 60
    python bench/load.py --url http://127.0.0.1:8000 --key KEY --ramp
    python bench/load.py --rate 10 --statements 30   # which statements a request costs

`--statements N` starts the embedded PostgreSQL first with pg_stat_statements loaded (the service
shares it) and prints, per request of each step, every statement's count and time for the N most
called, and all statements together (`db_statements`, `db_statement_ms`).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import psutil
from aiohttp import web

from services.common.geo import communes

ALWAYS_OPEN = {day: [["00:00", "23:59"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
RAMP = (10, 20, 50, 100, 200, 400, 800, 1600)
TERMINAL = {"confirmed", "cancelled", "unresolved"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else float("nan")


@dataclass
class Tracked:
    """One posted request as the benchmark sees it."""

    scheduled: float  # when it was meant to be sent (perf_counter)
    wall: datetime  # the same moment on the wall clock, to read the service's history against
    accept: bool  # accepted by the professional's software, else cancelled by the regulator
    statuses: dict[str, float] = field(default_factory=dict)  # first callback time of each status
    final: dict[str, Any] | None = None  # the terminal callback
    http_error: str | None = None
    accepted: bool = False  # the professional's software was shown the acceptance


class Receiver:
    """The regulator's callback endpoint and the professionals' booking software, in one server."""

    def __init__(self, base: str, key: str) -> None:
        self.base, self.key = base, key
        self.requests: dict[str, Tracked] = {}
        self.actions: set[asyncio.Task[None]] = set()
        self.action_errors: Counter[str] = Counter()
        self.http: aiohttp.ClientSession | None = None
        self.on_offer: list[Any] = []  # (rpps, request_id) callbacks: see bench/self_service.py

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/callback", self.callback)
        app.router.add_post("/booking", self.booking)
        app.router.add_post("/booking/{rpps}", self.booking)
        return app

    def _act(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self.actions.add(task)
        task.add_done_callback(self.actions.discard)

    async def callback(self, request: web.Request) -> web.Response:
        body = await request.json()
        tracked = self.requests.get(body["request_id"])
        if tracked is not None:
            status = body["status"]
            tracked.statuses.setdefault(status, time.perf_counter())
            if status in TERMINAL:
                tracked.final = body
            if status == "offered" and not tracked.accept:
                self._act(self._post(f"{self.base}/v1/requests/{body['request_id']}/cancel", "cancel"))
        return web.Response(status=204)

    async def booking(self, request: web.Request) -> web.Response:
        body = await request.json()
        tracked = self.requests.get(body.get("request_id", ""))
        if tracked is not None and body.get("event") == "offer":
            for told in self.on_offer:
                told(request.match_info.get("rpps", ""), body["request_id"])
        if tracked is not None and tracked.accept and body.get("event") == "offer":
            self._act(self._accept(tracked, f"{body['link']}/accept"))
        return web.Response(status=204)

    async def _accept(self, tracked: Tracked, url: str) -> None:
        tracked.accepted = await self._post(url, "accept") == 200

    async def _post(self, url: str, what: str) -> int | None:
        assert self.http is not None
        headers = {"Authorization": f"Bearer {self.key}"} if what == "cancel" else {}
        try:
            async with self.http.post(url, headers=headers) as response:
                await response.read()
                if response.status >= 400:
                    self.action_errors[f"{what} HTTP {response.status}"] += 1
                return response.status
        except (aiohttp.ClientError, TimeoutError) as error:
            self.action_errors[f"{what} {type(error).__name__}"] += 1
            return None


class Processes:
    """CPU and memory of the service's processes, the broker and PostgreSQL."""

    def __init__(self, root: psutil.Process | None, data_dir: str | None) -> None:
        self.root, self.data_dir = root, data_dir

    def groups(self) -> dict[str, list[psutil.Process]]:
        found: dict[str, list[psutil.Process]] = {"service": [], "broker": [], "postgres": []}
        if self.root is None:
            return found
        tree = [self.root, *self.root.children(recursive=True)]
        for process in psutil.process_iter(["cmdline"]):  # the embedded PostgreSQL is not a child
            with contextlib.suppress(psutil.Error):
                if self.data_dir and any(self.data_dir in part for part in process.info["cmdline"] or []):
                    tree += [process, *process.children(recursive=True)]  # the server and its backends
        seen: set[int] = set()
        for process in tree:
            if process.pid in seen:
                continue
            seen.add(process.pid)
            with contextlib.suppress(psutil.Error):
                name = process.name()
                group = "broker" if "tansu" in name else "postgres" if "postgres" in name else "service"
                found[group].append(process)
        return found

    def cpu(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for group, processes in self.groups().items():
            total = 0.0
            for process in processes:
                with contextlib.suppress(psutil.Error):
                    times = process.cpu_times()
                    total += times.user + times.system
            totals[group] = total
        return totals

    async def transactions(self) -> tuple[int, int] | None:
        """Transactions PostgreSQL has ended so far (all databases), and how many of them were
        rolled back, when its socket is known."""
        if not self.data_dir:
            return None
        try:
            connection = await asyncpg.connect(host=str(Path(self.data_dir) / "postgres"), user="postgres")
        except (OSError, asyncpg.PostgresError):
            return None
        try:
            row = await connection.fetchrow(
                "SELECT sum(xact_commit + xact_rollback) AS ended, sum(xact_rollback) AS rolled_back "
                "FROM pg_stat_database"
            )
            return int(row["ended"]), int(row["rolled_back"])
        finally:
            await connection.close()

    async def statements(self, top: int, reset: bool = False) -> list[Any]:
        """pg_stat_statements' statements by calls (with --statements), or reset it; [] without it."""
        if not self.data_dir:
            return []
        try:
            connection = await asyncpg.connect(host=str(Path(self.data_dir) / "postgres"), user="postgres")
        except (OSError, asyncpg.PostgresError):
            return []
        try:
            if reset:
                await connection.execute("SELECT pg_stat_statements_reset()")
                return []
            if top == 0:  # the total, as one row
                return [
                    await connection.fetchrow(
                        "SELECT sum(calls) AS calls, sum(total_exec_time) AS ms FROM pg_stat_statements"
                    )
                ]
            return list(
                await connection.fetch(
                    "SELECT calls, total_exec_time, regexp_replace(query, '\\s+', ' ', 'g') AS query "
                    "FROM pg_stat_statements ORDER BY calls DESC LIMIT $1",
                    top,
                )
            )
        except asyncpg.PostgresError:  # the extension is not loaded
            return []
        finally:
            await connection.close()

    def memory_mb(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for group, processes in self.groups().items():
            total = 0
            for process in processes:
                with contextlib.suppress(psutil.Error):
                    info = process.memory_full_info()
                    total += getattr(info, "pss", info.rss)
            totals[group] = total / 2**20
        return totals


@dataclass
class StepResult:
    rate: float
    achieved: float
    sent: int
    latencies_ms: list[float]
    never_offered: int
    unresolved: Counter[str]
    http_errors: Counter[str]
    cpu_cores: dict[str, float]
    memory_mb: dict[str, float]
    per_request: dict[str, float]  # the service's CPU (idle polling included), PostgreSQL transactions
    statements: list[tuple[float, float, str]]  # per request: calls, ms, the statement (with --statements)

    @property
    def p99(self) -> float:
        return percentile(self.latencies_ms, 0.99) if self.latencies_ms else float("inf")

    def line(self) -> str:
        lat = self.latencies_ms
        cpu = " ".join(f"{k}={v:.2f}" for k, v in self.cpu_cores.items())
        mem = " ".join(f"{k}={v:.0f}" for k, v in self.memory_mb.items())
        return (
            f"rate={self.rate:g}/s achieved={self.achieved:.1f}/s sent={self.sent} offered={len(lat)} "
            f"p50_ms={percentile(lat, 0.5):.1f} p90_ms={percentile(lat, 0.9):.1f} p99_ms={self.p99:.1f} "
            f"max_ms={max(lat, default=float('nan')):.1f} never_offered={self.never_offered} "
            f"unresolved={dict(self.unresolved)} http_errors={dict(self.http_errors)}\n"
            f"    cpu_cores[{cpu}] memory_mb[{mem}] "
            f"per_request[{' '.join(f'{k}={v:.1f}' for k, v in self.per_request.items())}]"
            + "".join(f"\n    statement calls={c:.2f} ms={ms:.2f} {q[:160]}" for c, ms, q in self.statements)
        )


class LoadRun:
    def __init__(self, args: argparse.Namespace, base: str, receiver_url: str, processes: Processes) -> None:
        self.args, self.base, self.receiver_url, self.processes = args, base, receiver_url, processes
        self.receiver = Receiver(base, args.key)
        self.random = random.Random(args.seed)
        department = [c for c in communes().values() if c.department == args.department and c.current == c.insee]
        if not department:
            sys.exit(f"no commune in département {args.department!r}")
        self.communes = [c.insee for c in department]
        self.weights = [max(1, c.population) for c in department]
        self.run_id = uuid.uuid4().hex[:6]
        self.platform_booked: list[tuple[str, str]] = []
        self.counter = 0

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.args.key}"}

    async def load_directory(self, http: aiohttp.ClientSession) -> None:
        """A territory over the département, its GPs and their slots, through the public API."""
        cpts = f"BENCH{self.args.department}"
        await self._put(http, f"/v1/territories/{cpts}", {"name": "Bench", "communes": self.communes, "radius_km": 30})
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        gate = asyncio.Semaphore(16)
        webhook = f"{self.receiver_url}/booking"
        self.rpps: list[str] = []

        async def professional(i: int) -> None:
            rpps = f"8{int(self.run_id, 16) % 100_000:05d}{i:05d}"  # 11 digits, new on each run
            self.rpps.append(rpps)
            overflow = i % 5 == 0
            async with gate:
                await self._put(
                    http,
                    f"/v1/professionals/{rpps}",
                    {
                        "name": f"Dr Bench {i}",
                        "profession": "general_practitioner",
                        "cpts_id": cpts,
                        "sas_participation": "individual",
                        "accepts_overflow": overflow,
                        "overflow_daily_cap": 10 if overflow else 0,
                        "email": f"{rpps}@bench.example.org",
                        "channels": [{"type": "webhook", "url": f"{webhook}/{rpps}"}],
                        "sites": [
                            {
                                "site_id": "main",
                                "name": "Cabinet",
                                "commune_insee": self.random.choices(self.communes, self.weights)[0],
                                "opening_hours": ALWAYS_OPEN,
                            }
                        ],
                    },
                )
            starts = sorted(self.random.sample(range(6, 46 * 3), self.args.slots))  # 20-minute steps
            for n, step in enumerate(starts):
                start = now + timedelta(minutes=20 * step)
                async with gate:
                    await self._put(
                        http,
                        f"/v1/slots/{rpps}-{n}",
                        {
                            "rpps": rpps,
                            "site_id": "main",
                            "start": start.isoformat(),
                            "end": (start + timedelta(minutes=20)).isoformat(),
                        },
                    )

        began = time.perf_counter()
        await asyncio.gather(*(professional(i) for i in range(self.args.gps)))
        print(
            f"directory: {self.args.gps} GPs and {self.args.gps * self.args.slots} slots over "
            f"{len(self.communes)} communes of {self.args.department}, loaded in {time.perf_counter() - began:.1f} s",
            flush=True,
        )

    async def _put(self, http: aiohttp.ClientSession, path: str, body: dict[str, Any]) -> None:
        """The directory is written with the admin key (a regulator's key writes none of it)."""
        admin = {"Authorization": f"Bearer {self.args.admin_key}"}
        for _ in range(10):  # a polite client waits out its rate limit (429 with Retry-After)
            async with http.put(f"{self.base}{path}", json=body, headers=admin) as response:
                if response.status == 429:
                    await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                    continue
                if response.status >= 300:
                    sys.exit(f"PUT {path}: HTTP {response.status} {await response.text()}")
                return
        sys.exit(f"PUT {path}: still rate-limited after 10 tries")

    async def _post_request(self, http: aiohttp.ClientSession, request_id: str, tracked: Tracked) -> None:
        body = {
            "request_id": request_id,
            "received_at": datetime.now(UTC).isoformat(),
            "urgency": "24h" if self.random.random() < 0.1 else "48h",
            "motive": "general",
            "callback_url": f"{self.receiver_url}/callback",
            "patient": {"commune_insee": self.random.choices(self.communes, self.weights)[0], "age": 40},
        }
        try:
            async with http.post(f"{self.base}/v1/requests", json=body, headers=self.auth) as response:
                await response.read()
                if response.status != 202:
                    tracked.http_error = f"HTTP {response.status}"
        except (aiohttp.ClientError, TimeoutError) as error:
            tracked.http_error = type(error).__name__

    async def step(self, http: aiohttp.ClientSession, rate: float) -> StepResult:
        count = max(1, int(rate * self.args.duration))
        ids: list[str] = []
        sends: set[asyncio.Task[None]] = set()
        cpu_before, wall_before = self.processes.cpu(), time.perf_counter()
        transactions_before = await self.processes.transactions()
        if self.args.statements:
            await self.processes.statements(0, reset=True)
        memory: dict[str, float] = {}
        sampling = asyncio.create_task(self._sample_memory(memory))
        first = time.perf_counter() + 0.05
        for i in range(count):
            scheduled = first + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            self.counter += 1
            request_id = f"LOAD-{self.run_id}-{self.counter:06d}"
            wall = datetime.now(UTC) + timedelta(seconds=scheduled - time.perf_counter())
            tracked = Tracked(scheduled, wall, self.random.random() < self.args.accept_share)
            self.receiver.requests[request_id] = tracked
            ids.append(request_id)
            task = asyncio.create_task(self._post_request(http, request_id, tracked))
            sends.add(task)
            task.add_done_callback(sends.discard)
        achieved = count / max(1e-9, time.perf_counter() - first)
        settle_until = time.perf_counter() + self.args.settle
        while time.perf_counter() < settle_until:
            pending = [r for r in ids if self.receiver.requests[r].final is None]
            if not pending and not sends:
                break
            await asyncio.sleep(0.1)
        cpu_after, wall_after = self.processes.cpu(), time.perf_counter()
        transactions_after = await self.processes.transactions()
        statements = await self.processes.statements(self.args.statements) if self.args.statements else []
        totals = await self.processes.statements(0) if self.args.statements else []
        total = totals[0] if totals and totals[0]["calls"] is not None else None
        sampling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampling
        tracked_all = [self.receiver.requests[r] for r in ids]
        latencies = [(t.statuses["offered"] - t.scheduled) * 1000 for t in tracked_all if "offered" in t.statuses]
        unresolved = Counter(
            str(t.final.get("reason")) for t in tracked_all if t.final and t.final["status"] == "unresolved"
        )
        errors = Counter(t.http_error for t in tracked_all if t.http_error)
        seconds = wall_after - wall_before
        cpu = {k: (cpu_after.get(k, 0.0) - cpu_before.get(k, 0.0)) / seconds for k in cpu_after}
        per_request = {  # CPU of each part, idle polling included
            f"{part}_cpu_ms": 1000 * (cpu_after.get(part, 0.0) - cpu_before.get(part, 0.0)) / count
            for part in ("service", "broker", "postgres")
        }
        if transactions_before is not None and transactions_after is not None:
            per_request["db_transactions"] = (transactions_after[0] - transactions_before[0]) / count
            per_request["db_rollbacks"] = (transactions_after[1] - transactions_before[1]) / count
        if total is not None:
            per_request["db_statements"] = float(total["calls"]) / count
            per_request["db_statement_ms"] = float(total["ms"]) / count
        return StepResult(
            rate,
            achieved,
            count,
            latencies,
            sum(1 for t in tracked_all if "offered" not in t.statuses and not t.http_error),
            unresolved,
            errors,
            cpu,
            memory,
            per_request,
            [(row["calls"] / count, row["total_exec_time"] / count, row["query"]) for row in statements],
        )

    async def _sample_memory(self, peak: dict[str, float]) -> None:
        while True:
            sample = await asyncio.to_thread(self.processes.memory_mb)
            for key, value in sample.items():
                peak[key] = max(peak.get(key, 0.0), value)
            await asyncio.sleep(2)

    async def explain_slowest(self, http: aiohttp.ClientSession, count: int) -> None:
        """Where the slowest requests spent their time: the service's own history of each."""
        offered = [
            (t.statuses["offered"] - t.scheduled, r, t)
            for r, t in self.receiver.requests.items()
            if "offered" in t.statuses
        ]
        for latency, request_id, tracked in sorted(offered, key=lambda x: x[0], reverse=True)[:count]:
            async with http.get(f"{self.base}/v1/requests/{request_id}", headers=self.auth) as response:
                history = (await response.json()).get("history", [])
            steps = ", ".join(
                f"{h['status']} +{(datetime.fromisoformat(h['at']) - tracked.wall).total_seconds() * 1000:.0f}"
                + (f" ({h['reason']})" if h.get("reason") else "")
                for h in history
            )
            print(f"slow {request_id}: offered callback +{latency * 1000:.0f} ms; history (ms after send): {steps}")

    def check_outcomes(self) -> tuple[int, int]:
        """Slots booked twice, and requests that never ended (neither confirmed, cancelled nor unresolved)."""
        booked: Counter[tuple[str, str]] = Counter()
        for tracked in self.receiver.requests.values():
            final = tracked.final
            if final and final["status"] == "confirmed" and final["appointment"]["kind"] == "slot":
                at = datetime.fromisoformat(final["appointment"]["start"])
                booked[(final["appointment"]["professional"]["rpps"], at)] += 1
        for rpps, start in self.platform_booked:  # the national platform's bookings (--platform)
            booked[(rpps, datetime.fromisoformat(start))] += 1
        doubles = sum(n - 1 for n in booked.values() if n > 1)
        lost = sum(1 for t in self.receiver.requests.values() if t.final is None and not t.http_error)
        return doubles, lost


async def wait_healthy(http: aiohttp.ClientSession, base: str, service: subprocess.Popen[bytes] | None) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if service is not None and service.poll() is not None:
            sys.exit(f"sas-run stopped (exit {service.returncode}); see its log")
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(f"{base}/healthz") as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.2)
    sys.exit(f"{base}/healthz did not answer 200 within 120 s")


def start_service(args: argparse.Namespace, folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = os.environ | {
        "PORT": str(port),
        "DATA_DIR": str(folder / "data"),
        "REGULATOR_API_KEYS": args.key,
        "ADMIN_API_KEYS": args.admin_key,
        "CALLBACK_SECRET": "whsec_YmVuY2gtY2FsbGJhY2s=",
        "WEBHOOK_SECRET": "whsec_YmVuY2gtd2ViaG9vaw==",
        "OUTBOUND_ALLOWED_NETWORKS": "127.0.0.0/8",  # the bench's receivers are on this machine
        "FHIR_API_KEYS": args.fhir_key,
        "SECRET_KEY": "bench",
        "DEMO_DATA": "0",
        "LOG_LEVEL": args.log_level,
        "LOG_FORMAT": "json",
    }
    for name in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS") if args.embedded else ():
        env.pop(name, None)
    executable = shutil.which("sas-run", path=str(Path(sys.executable).parent)) or "sas-run"
    log = (folder / "service.log").open("wb")
    # its own process group: the workers, the broker and PostgreSQL all go when the run ends
    service = subprocess.Popen(
        [executable, *args.service_arg], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    print(f"started sas-run (pid {service.pid}, log {folder / 'service.log'})", flush=True)
    return service, f"http://127.0.0.1:{port}"


async def track_statements(pgdata: Path) -> Any:
    """The embedded server the service will use, started first with pg_stat_statements loaded
    (every statement counted, those inside functions too): the service shares it."""
    from services.common.embedded import EmbeddedPostgres

    server = EmbeddedPostgres(pgdata).start()
    conf = Path(server._server.pgdata) / "postgresql.conf"  # type: ignore[attr-defined]
    conf.write_text(
        conf.read_text() + "\nshared_preload_libraries = 'pg_stat_statements'\npg_stat_statements.track = 'all'\n"
    )
    server.pause()
    server.resume()
    connection = await asyncpg.connect(host=str(pgdata), user="postgres")
    try:
        await connection.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    finally:
        await connection.close()
    return server


def stop_service(service: subprocess.Popen[bytes]) -> None:
    """SIGTERM (a clean stop), then anything left of its process group is killed: a worker or a
    broker left behind would load the machine and spoil every later measurement."""
    with contextlib.suppress(ProcessLookupError):
        service.send_signal(signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        service.wait(30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(service.pid, signal.SIGKILL)


async def main(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="sas-load-"))
    service: subprocess.Popen[bytes] | None = None
    if args.url:
        base = args.url.rstrip("/")
    else:
        tracking = await track_statements(folder / "data" / "postgres") if args.statements else None
        service, base = start_service(args, folder)
        atexit.register(stop_service, service)  # also when the run is interrupted
        if tracking is not None:
            atexit.register(tracking.stop)
    pid = service.pid if service else args.pid
    root = psutil.Process(pid) if pid else None
    processes = Processes(root, str(folder / "data") if service else args.data_dir)
    receiver_port = free_port()
    receiver_url = f"http://{args.receiver_host}:{receiver_port}"
    run = LoadRun(args, base, receiver_url, processes)
    runner = web.AppRunner(run.receiver.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0" if args.url else "127.0.0.1", receiver_port, backlog=1024).start()
    connector = aiohttp.TCPConnector(limit=256)
    idle: dict[str, float] = {}  # cores used with nothing happening, before the load
    try:
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as http:
            run.receiver.http = http
            await wait_healthy(http, base, service)
            await run.load_directory(http)
            await asyncio.sleep(args.quiet)  # the directory's own events settle
            idle_before = processes.cpu()
            await asyncio.sleep(args.idle)
            idle.update({k: (v - idle_before.get(k, 0.0)) / args.idle for k, v in processes.cpu().items()})
            print("idle cpu_cores[" + " ".join(f"{k}={v:.2f}" for k, v in idle.items()) + "]", flush=True)
            bench_process = psutil.Process()
            results: list[StepResult] = []
            own: Any = None
            if args.self_service:
                from self_service import SelfService  # bench/self_service.py, beside this script

                if service is None:
                    sys.exit("--self-service reads the service's mail folder: let the benchmark start the service")
                own = SelfService(base, folder / "data" / "mail", args.self_service_interval, random.Random(args.seed))
                await own.ask_links(http, run.rpps[: args.self_service])
                run.receiver.on_offer.append(own.offered)
            platform: Any = None
            if args.platform:
                from platform_bookings import PlatformBookings  # bench/platform_bookings.py

                platform = PlatformBookings(base, args.fhir_key, args.platform, random.Random(args.seed))
            for rate in RAMP if args.ramp else args.rate:
                bench_cpu = sum(bench_process.cpu_times()[:2])
                began = time.perf_counter()
                stop_acting = asyncio.Event()
                acting = asyncio.create_task(own.act_until(http, stop_acting)) if own else None
                booking = asyncio.create_task(platform.book_until(http, run.rpps, stop_acting)) if platform else None
                result = await run.step(http, rate)
                stop_acting.set()
                for task in (acting, booking):
                    if task is not None:
                        await task
                bench_cores = (sum(bench_process.cpu_times()[:2]) - bench_cpu) / (time.perf_counter() - began)
                results.append(result)
                print(result.line() + f" bench={bench_cores:.2f}", flush=True)
                if args.ramp and (result.p99 > 1000 or result.never_offered > 0.01 * result.sent):
                    break
            await asyncio.gather(*run.receiver.actions, return_exceptions=True)
            await run.explain_slowest(http, args.explain)
            if platform is not None:
                print(platform.line(), flush=True)
                run.platform_booked = platform.booked
            if own is not None:
                faults = await own.offers_while_paused(http, args.key)
                print(own.line(faults), *faults[:5], sep="\n", flush=True)
    finally:
        await runner.cleanup()
        if service is not None:
            stop_service(service)
    doubles, lost = run.check_outcomes()
    actions = dict(run.receiver.action_errors)
    tracked = run.receiver.requests.values()
    confirmed = sum(1 for t in tracked if t.final and t.final["status"] == "confirmed")
    unconfirmed = sum(1 for t in tracked if t.accepted and not (t.final and t.final["status"] == "confirmed"))
    print(
        f"confirmed={confirmed} acceptances_not_confirmed={unconfirmed} double_bookings={doubles} lost={lost} "
        f"receiver_action_errors={actions}"
    )
    good = [r for r in results if r.p99 <= 1000 and r.never_offered <= 0.01 * r.sent]
    knee = max((r.rate for r in good), default=0)
    at20 = next((r for r in results if r.rate == 20), None)
    p50 = percentile(at20.latencies_ms, 0.5) if at20 else float("nan")
    p99 = at20.p99 if at20 else float("nan")
    rss = max((sum(r.memory_mb.values()) for r in results), default=float("nan"))
    knee_text = f"{knee:g}" if args.ramp else f">={knee:g}(no ramp)"
    cpu_at_20 = (
        sum(at20.per_request.get(f"{p}_cpu_ms", 0.0) for p in ("service", "broker", "postgres")) if at20 else None
    )
    print(
        f"load knee_rps={knee_text} p50_ms_at_20={p50:.1f} p99_ms_at_20={p99:.1f} "
        f"cpu_ms_per_request_at_20={cpu_at_20 if cpu_at_20 is not None else float('nan'):.1f} "
        f"idle_cores={sum(idle.values()):.2f} rss_mb={rss:.0f}"
    )
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running service (default: start sas-run on embedded defaults)")
    parser.add_argument("--pid", type=int, help="with --url: the service's process, to measure its CPU and memory")
    parser.add_argument("--data-dir", help="with --url: the service's DATA_DIR, to find its embedded PostgreSQL")
    parser.add_argument("--key", default="bench-load-key", help="a regulator API key of that service")
    parser.add_argument("--admin-key", default="bench-admin-key", help="an admin key of that service (the directory)")
    parser.add_argument("--receiver-host", default="127.0.0.1", help="how the service reaches this machine")
    parser.add_argument("--embedded", action="store_true", help="ignore DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS")
    parser.add_argument("--service-arg", action="append", default=[], help="passed to sas-run (repeatable)")
    parser.add_argument("--rate", type=float, nargs="+", default=[20.0], help="requests per second (one step each)")
    parser.add_argument("--ramp", action="store_true", help="10, 20, 50, 100, 200, 400 … until p99 passes 1 s")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of sending per step")
    parser.add_argument("--settle", type=float, default=30.0, help="seconds to wait for the last answers of a step")
    parser.add_argument("--quiet", type=float, default=5.0, help="seconds for the directory's events to settle")
    parser.add_argument("--idle", type=float, default=60.0, help="seconds of nothing happening: the idle CPU")
    parser.add_argument("--gps", type=int, default=300)
    parser.add_argument("--slots", type=int, default=20, help="free slots per GP in the next 48 h")
    parser.add_argument("--department", default="79")
    parser.add_argument("--accept-share", type=float, default=0.1, help="offers accepted; the rest are cancelled")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--self-service", type=int, default=0, help="GPs using their own page during the load")
    parser.add_argument("--platform", type=float, default=0, help="FHIR bookings per second by the national platform")
    parser.add_argument("--fhir-key", default="bench-fhir-key", help="the platform's key (FHIR_API_KEYS)")
    parser.add_argument("--self-service-interval", type=float, default=0.5, help="seconds between their actions")
    parser.add_argument("--explain", type=int, default=3, help="print the history of the N slowest requests")
    parser.add_argument("--log-level", default="INFO", help="the service's (its log is in the data folder)")
    parser.add_argument("--keep", action="store_true", help="keep the data folder and the service's log")
    parser.add_argument(
        "--statements", type=int, default=0, help="print the N most called statements per request (pg_stat_statements)"
    )
    asyncio.run(main(parser.parse_args()))
