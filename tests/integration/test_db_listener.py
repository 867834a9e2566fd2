"""A process's one listening connection (services/common/db_listener.py): every channel on it,
nothing listening elsewhere, and listening again after the server ended it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from faststream.kafka import KafkaBroker
from sqlalchemy import text

from services.common.access.known import CHANNEL as CLIENTS_CHANNEL
from services.common.access.known import KnownClients
from services.common.clock import utcnow
from services.common.db import Database, service_engine
from services.common.db_listener import DatabaseListener
from services.common.relay import OutboxRelay
from services.matcher.adapters.index_sync import CHANNEL as DIRECTORY_CHANNEL
from services.matcher.adapters.index_sync import IndexSync
from services.matcher.domain.index import DirectoryIndex
from tests.integration.helpers import eventually, migrated


@pytest.fixture
async def access(database_url: str) -> AsyncIterator[Database]:
    db = Database(service_engine(database_url, "access"), schema="access", source="/test")
    yield db
    await db.dispose()


async def _notify(db: Database, channel: str, payload: str) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(text("SELECT pg_notify(:c, :p)"), {"c": channel, "p": payload})


async def _channels(connection: object) -> set[str]:
    rows = await connection.fetch("SELECT pg_listening_channels() AS channel")  # type: ignore[attr-defined]
    return {row["channel"] for row in rows}


async def test_one_connection_hears_every_channel(access: Database) -> None:
    listener = DatabaseListener(access)
    heard: list[tuple[str, str]] = []
    try:
        await listener.listen("test_one", lambda payload: heard.append(("one", payload)))
        await listener.listen("test_two", lambda payload: heard.append(("two", payload)))
        await listener.listen("test_two", lambda payload: heard.append(("two again", payload)))
        await _notify(access, "test_one", "a")
        await _notify(access, "test_two", "b")

        async def all_heard() -> bool:
            return sorted(heard) == [("one", "a"), ("two", "b"), ("two again", "b")]

        assert await eventually(all_heard, timeout=5)
        assert await _channels(listener._connection) == {"test_one", "test_two"}
    finally:
        await listener.close()


async def test_the_relay_the_index_and_the_key_cache_listen_on_the_process_connection(
    database_url: str, access: Database
) -> None:
    """Each of them used to listen on a connection of its own: PostgreSQL then woke all of them,
    a transaction each, at every notifying commit (issue 24)."""
    matcher = await migrated(database_url, "matcher")
    listener = DatabaseListener(access)
    relay = OutboxRelay(matcher, KafkaBroker("127.0.0.1:1"), listener=listener)  # never publishes here
    sync = IndexSync(matcher, DirectoryIndex(), utcnow, listener=listener)
    known = KnownClients(access, keep_for=timedelta(minutes=1), listener=listener)
    try:
        await known.listen()
        await sync.start()
        await relay.relay_once()  # takes the lead: an outbox with nothing to publish
        assert relay.leading
        assert await _channels(listener._connection) == {CLIENTS_CHANNEL, DIRECTORY_CHANNEL, "outbox_matcher"}
        assert await _channels(relay._connection) == set()  # it holds the lock and reads, no more
        assert await _channels(await sync._connection()) == set()
    finally:
        await relay.close()
        await sync.stop()
        await listener.close()
        await matcher.dispose()


async def test_listening_again_after_the_server_ended_the_connection(access: Database) -> None:
    listener = DatabaseListener(access, retry_seconds=0.05)
    heard: list[str] = []
    lost, back = [], []
    listener.when_lost(lambda: lost.append(1))
    listener.when_listening(lambda: back.append(1))
    try:
        await listener.listen("test_again", heard.append)
        assert listener._connection is not None
        pid = listener._connection.get_server_pid()
        async with access.engine.begin() as conn:  # what a restart or a failover does to it
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

        async def relistening() -> bool:
            return bool(lost) and bool(back) and listener.listening

        assert await eventually(relistening, timeout=10)
        assert (len(lost), len(back)) == (1, 1)
        await _notify(access, "test_again", "after")

        async def heard_after() -> bool:
            return heard == ["after"]

        assert await eventually(heard_after, timeout=5)
    finally:
        await listener.close()
