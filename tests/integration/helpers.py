"""Small tools for tests on the real broker and database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from schemas.events import CloudEvent, EventData
from schemas.topics import Topics
from services.common.access.registry import MIGRATIONS as ACCESS_MIGRATIONS
from services.common.clock import PARIS, utcnow
from services.common.db import Database, service_engine
from services.common.embedded import free_port
from services.common.holidays import is_public_holiday
from services.common.sealing import DataKeys, Vault
from services.matcher.directory import Directory
from services.matcher.directory.professionals import SiteInput
from services.matcher.domain.opening_hours import WeeklyHours, first_open_time

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = {name: ROOT / "services" / name / "migrations" for name in ("intake", "matcher", "notifier", "ops")}


TEST_DATA_KEY = "dGVzdC1kYXRhLWtleS10ZXN0LWRhdGEta2V5LTAwMDA="  # a Fernet key for tests only


def vault_for_tests() -> Vault:
    return Vault(DataKeys([TEST_DATA_KEY]))


def fresh_topics() -> Topics:
    return Topics(prefix=f"it{uuid.uuid4().hex[:8]}.")


async def migrated(database_url: str, schema: str) -> Database:
    """A service's schema, and the shared one every service writes its audit entries to."""
    shared = Database(service_engine(database_url, "access"), schema="access", source="/test/access")
    await shared.migrate(ACCESS_MIGRATIONS)
    await shared.dispose()
    db = Database(service_engine(database_url, schema), schema=schema, source=f"/test/{schema}")
    await db.migrate(MIGRATIONS[schema])
    return db


async def accounts_database(database_url: str) -> Database:
    """The shared schema where people's accounts live, with the operations schema migrated (its
    migration moves its old accounts there)."""
    await (await migrated(database_url, "ops")).dispose()
    return Database(service_engine(database_url, "access"), schema="access", source="/test/accounts")


async def read_topic(
    bootstrap: str,
    topic: str,
    expected: int,
    timeout: float = 20.0,
    wanted: Callable[[ConsumerRecord[bytes, bytes]], bool] = lambda _: True,
) -> list[ConsumerRecord[bytes, bytes]]:
    """The records of `topic` from the start that are `wanted`, once at least `expected` of them arrived."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=20,
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        deadline = time.monotonic() + timeout
        while len(records) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for part in batch.values():
                records.extend(r for r in part if wanted(r))
    finally:
        await consumer.stop()
    return records


async def publish_raw(bootstrap: str, topic: str, values: list[tuple[str | None, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for key, value in values:
            await producer.send_and_wait(topic, value, key=key.encode() if key else None)
    finally:
        await producer.stop()


def event_bytes(data: EventData, source: str = "/test") -> tuple[CloudEvent, bytes]:
    event = CloudEvent.wrap(data, source=source, time=utcnow())
    return event, event.model_dump_json().encode()


async def equals(value: Awaitable[object], wanted: object) -> bool:
    """For `eventually(lambda: equals(status_of(...), "offered"))`."""
    return await value == wanted


async def eventually(check, timeout: float = 20.0, every: float = 0.05):  # type: ignore[no-untyped-def]
    """Wait until the async `check()` returns something truthy; return it."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(every)


def start_service(
    service: str, database_url: str, bootstrap: str, prefix: str, log: Path, **extra_env: str
) -> tuple[subprocess.Popen[bytes], int]:
    """One service (`intake`, `matcher`, `notifier`) as its own OS process, logging JSON to `log`."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "TOPIC_PREFIX": prefix,
        "PORT": str(port),
        "SECRET_KEY": "s",
        "REGULATOR_API_KEYS": "k",
        "ADMIN_API_KEYS": "ak",
        "CALLBACK_SECRET": "whsec_dGVzdC1jYWxsYmFjaw==",
        "DATA_KEYS": TEST_DATA_KEY,
        "WEBHOOK_SECRET": "whsec_dGVzdC13ZWJob29r",
        "INTERNAL_API_KEY": "ik",
        "DEMO_DATA": "0",
        "DATA_DIR": tempfile.mkdtemp(),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "KAFKA_SESSION_TIMEOUT_MS": "3000",
        "KAFKA_HEARTBEAT_INTERVAL_MS": "500",
        "KAFKA_FETCH_MAX_WAIT_MS": "10",
        "WORKERS": "1",  # one process per start: the tests count and kill processes
        **extra_env,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "services.main", "--service", service],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
    )
    return process, port


@contextlib.asynccontextmanager
async def matcher_processes(database_url: str, bootstrap: str, prefix: str, count: int) -> AsyncIterator[list[Path]]:
    """`count` healthy `sas-matcher` processes in one consumer group; yields their log files."""
    logs = [Path(tempfile.mkstemp(suffix=".log")[1]) for _ in range(count)]
    processes = [start_matcher(database_url, bootstrap, prefix, log) for log in logs]
    try:
        for process, port in processes:
            wait_healthy(port, process)
        yield logs
        await asyncio.sleep(0.3)  # let the last log lines reach the files
    finally:
        for process, _ in processes:
            process.terminate()
            process.wait(timeout=20)


def start_matcher(database_url: str, bootstrap: str, prefix: str, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    return start_service("matcher", database_url, bootstrap, prefix, log)


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


ALWAYS_OPEN = {day: [["00:00", "23:59"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
MELLE_SITE = SiteInput("main", "Cabinet", "79174", "79", 46.208, -0.144, ALWAYS_OPEN)


def skip_when_every_practice_is_closed() -> None:
    """Matcher processes run on the real clock and ask only open practices: on a public holiday
    (or in the last minutes of a day) even an always-open practice is closed now."""
    today = utcnow().astimezone(PARIS)
    if is_public_holiday(today.date(), "79") or (today.hour == 23 and today.minute >= 58):
        pytest.skip("the matcher processes run on the real clock: every practice is closed now (a holiday)")


async def always_open_directory(db: Database, topics: Topics) -> tuple[Directory, datetime]:
    """A directory written from the test (the triggers tell the matcher processes), and the first
    open minute two hours from now, for slots."""

    async def nothing(_: list[str]) -> None:
        return None

    now = utcnow()
    start = first_open_time(WeeklyHours.parse(ALWAYS_OPEN), now + timedelta(hours=2), now + timedelta(hours=40), "79")
    assert start is not None
    local = start.astimezone(PARIS)
    if local.hour == 23 and local.minute > 30:  # the tests' 20-minute slots must end before 23:59
        local = (local + timedelta(days=1)).replace(hour=0, minute=5, second=0, microsecond=0)
        start = first_open_time(WeeklyHours.parse(ALWAYS_OPEN), local, local + timedelta(hours=40), "79")
        assert start is not None
    return Directory.build(db, utcnow, topics, nothing), start
