"""The one place that picks the real parts the tests run on.

Kafka: KAFKA_BOOTSTRAP_SERVERS when set, else Apache Kafka in a testcontainer when a Docker
engine answers, else the embedded Tansu broker. PostgreSQL: DATABASE_URL when set, else a
testcontainer, else the embedded server in a throwaway folder. Nothing is skipped for want
of a service. Each test that needs a database gets a fresh one.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from services.common.db import asyncpg_url
from services.common.embedded import EmbeddedKafka, EmbeddedPostgres
from services.common.logging import configure_logging

configure_logging("console", os.environ.get("TEST_LOG_LEVEL", "WARNING"))


def docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    elif docker_answers():
        from testcontainers.community.kafka import KafkaContainer  # type: ignore[import-not-found]

        with KafkaContainer().with_kraft() as kafka:
            yield kafka.get_bootstrap_server()
    else:
        broker = EmbeddedKafka().start()
        yield broker.bootstrap_servers
        broker.stop()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A URL to a server where the tests may create databases."""
    if os.environ.get("DATABASE_URL"):
        yield asyncpg_url(os.environ["DATABASE_URL"])
    elif docker_answers():
        from testcontainers.community.postgres import PostgresContainer  # type: ignore[import-not-found]

        with PostgresContainer("postgres:17-alpine", driver="asyncpg") as pg:
            yield pg.get_connection_url()
    else:
        folder = Path(tempfile.mkdtemp(prefix="sas-test-pg-"))
        server = EmbeddedPostgres(folder / "data").start()
        yield server.url()
        server.stop()


async def create_database(admin_url: str) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = make_url(admin_url)
    connect = url.set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(connect)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture
async def database_url(postgres_url: str) -> AsyncIterator[str]:
    yield await create_database(postgres_url)


class FakeClock:
    """The services' clock in tests: fixed, moved by hand, so that opening hours are known."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


# A Tuesday morning in Paris (09:00 CET), far from holidays and daylight-saving changes.
TUESDAY_MORNING = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(TUESDAY_MORNING)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test marked by its layer, from where it lives: `-m "not e2e and not integration"`
    keeps the fast ones (unit tests and the service layer on memory)."""
    for item in items:
        layer = item.path.parent.name
        if layer in ("e2e", "integration"):
            item.add_marker(getattr(pytest.mark, layer))
