"""Two matcher processes in one consumer group share the partitions; each request is handled once."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import func, select

from services.common.embedded import free_port
from services.matcher.models import SearchRecord
from tests.integration.helpers import ROOT, event_bytes, eventually, fresh_topics, migrated, publish_raw
from tests.integration.test_consumer import received

REQUESTS = 30


def start_matcher(database_url: str, bootstrap: str, prefix: str, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "TOPIC_PREFIX": prefix,
        "PORT": str(port),
        "SECRET_KEY": "s",
        "REGULATOR_API_KEYS": "k",
        "DEMO_DATA": "0",
        "DATA_DIR": tempfile.mkdtemp(),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "KAFKA_SESSION_TIMEOUT_MS": "3000",
        "KAFKA_HEARTBEAT_INTERVAL_MS": "500",
        "KAFKA_FETCH_MAX_WAIT_MS": "10",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "services.main", "--service", "matcher"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    return process, port


def wait_healthy(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the matcher process died"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("matcher never became healthy")


def handled_requests(log: Path) -> set[str]:
    found = set()
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("event") in ("request unresolved", "offer proposed"):
                found.add(entry["request_id"])
    return found


async def test_two_matcher_processes_split_the_partitions(database_url: str, kafka_bootstrap: str) -> None:
    topics = fresh_topics()
    db = await migrated(database_url, "matcher")  # both processes also migrate: that must be harmless
    logs = [Path(tempfile.mkstemp(suffix=".log")[1]) for _ in range(2)]
    processes = [start_matcher(database_url, kafka_bootstrap, topics.prefix, log) for log in logs]
    try:
        for process, port in processes:
            wait_healthy(port, process)
        ids = [f"GRP-{i:03d}" for i in range(REQUESTS)]
        await publish_raw(kafka_bootstrap, topics.requests, [(i, event_bytes(received(i))[1]) for i in ids])

        async def all_searched() -> bool:
            async with db.transaction() as tx:
                count = await tx.session.execute(select(func.count()).select_from(SearchRecord))
                return int(count.scalar_one()) >= REQUESTS

        assert await eventually(all_searched, timeout=30)
        await asyncio.sleep(0.3)  # let the last log lines reach the files
    finally:
        for process, _ in processes:
            process.terminate()
            process.wait(timeout=20)
        await db.dispose()
    first, second = (handled_requests(log) for log in logs)
    assert first and second, f"one process got every partition: {len(first)} / {len(second)}"
    assert not first & second, "a request was handled by both processes"
    assert first | second == set(ids)
