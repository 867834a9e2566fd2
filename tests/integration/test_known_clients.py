"""Verified keys kept per process, forgotten at any change of a client, in every process
(services/common/access/known.py): two registries on one database stand for two processes."""

from __future__ import annotations

import asyncio

import pytest

from services.common.access.registry import ClientRegistry, key_hash
from services.common.access.roles import Role
from services.common.db import Database, service_engine
from tests.integration.helpers import eventually


def _registry(database_url: str) -> ClientRegistry:
    return ClientRegistry(Database(service_engine(database_url, "access"), schema="access", source="/test"))


@pytest.fixture
async def two(database_url: str):  # type: ignore[no-untyped-def]
    first, second = _registry(database_url), _registry(database_url)
    await first.start()
    await second.start()
    yield first, second
    await first.dispose()
    await second.dispose()


async def test_a_key_revoked_in_one_process_is_refused_by_the_other(two) -> None:  # type: ignore[no-untyped-def]
    here, there = two
    created = await here.create("SAS 79", Role.REGULATOR, organisation="sas79")

    async def kept() -> bool:  # (the creation's own notification may empty it once, a little later)
        assert await there.authenticate(created.key) is not None
        return there.known.client(_hash(created.key), there.clock()) is not None  # not looked up again

    assert await eventually(kept, timeout=5)
    await here.revoke(created.client.client_id)
    assert await here.authenticate(created.key) is None  # at once where it was revoked

    async def refused() -> bool:
        return await there.authenticate(created.key) is None

    assert await eventually(refused, timeout=5)


async def test_without_its_listener_a_process_keeps_nothing(two) -> None:  # type: ignore[no-untyped-def]
    here, there = two
    created = await here.create("SAS 86", Role.REGULATOR, organisation="sas86")

    async def kept() -> bool:  # (the creation's own notification may empty it once, a little later)
        assert await there.authenticate(created.key) is not None
        return there.known.client(_hash(created.key), there.clock()) is not None

    assert await eventually(kept, timeout=5)
    listener = there.known.listener
    listener.retry_seconds = 3600.0  # it may not listen again during this test
    assert listener._connection is not None
    listener._connection.terminate()  # the connection lost (a database restart)
    await asyncio.sleep(0.05)  # (the loss is told soon after)
    assert not there.known.listening
    assert there.known.client(_hash(created.key), there.clock()) is None
    await here.revoke(created.client.client_id)
    assert await there.authenticate(created.key) is None  # looked up: refused at once
    assert there.known.client(_hash(created.key), there.clock()) is None  # and nothing kept meanwhile


async def test_rotating_a_signing_secret_is_seen_by_the_other_process(two) -> None:  # type: ignore[no-untyped-def]
    here, there = two
    created = await here.create("SAS 17", Role.REGULATOR, organisation="sas17")
    assert await there.signing_secrets(created.client.client_id) == [created.signing_secret]
    rotated = await here.rotate_signing_secret(created.client.client_id)

    async def both() -> bool:
        return await there.signing_secrets(created.client.client_id) == [rotated, created.signing_secret]

    assert await eventually(both, timeout=5)


def _hash(key: str) -> str:
    return key_hash(key)
