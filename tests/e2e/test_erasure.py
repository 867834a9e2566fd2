"""Erasing a patient's data (contract v2, "Patient data"): asked by the owning organisation, it
reaches every service's tables and makes every copy in the broker's topics unreadable, then a
rebuild of the read model from those topics still works and shows nothing erased."""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from services.common.db import asyncpg_url
from services.common.sealing import Vault
from services.intake.service import IntakeService
from services.ops import read_model
from tests.e2e.conftest import Stack, body_of, link_path

pytestmark = pytest.mark.e2e

SCHEMAS = ("intake", "matcher", "notifier", "ops", "access")
TOKEN = re.compile(rb"gAAAAA[A-Za-z0-9_\-]+=*")  # a Fernet token, wherever it is kept


@asynccontextmanager
async def owner(stack: Stack) -> AsyncIterator[AsyncConnection]:
    """A connection as the database's owner: the services' own roles see their schema only."""
    engine = create_async_engine(asyncpg_url(stack.database_url))
    try:
        async with engine.connect() as conn:
            yield conn
    finally:
        await engine.dispose()


def intake_of(stack: Stack) -> IntakeService:
    return next(p for part in stack.runtime.parts for p in part.provides if isinstance(p, IntakeService))


async def table_texts(stack: Stack) -> list[bytes]:
    """Every row of every table of every service, as text."""
    found: list[bytes] = []
    async with owner(stack) as conn:
        tables = await conn.execute(
            text("SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema = ANY(:s)"),
            {"s": list(SCHEMAS)},
        )
        for schema, table in tables.all():
            rows = await conn.execute(text(f'SELECT t::text FROM "{schema}"."{table}" t'))
            found.extend(row[0].encode() for row in rows)
    return found


async def topic_texts(stack: Stack) -> list[bytes]:
    """Every record of every topic, from the start."""
    consumer = AIOKafkaConsumer(
        *stack.runtime.topics.all(),
        bootstrap_servers=stack.runtime.bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[bytes] = []
    try:
        await consumer.seek_to_beginning()
        ends = await consumer.end_offsets(list(consumer.assignment()))
        deadline = time.monotonic() + 20

        async def behind() -> bool:
            return any([await consumer.position(tp) < end for tp, end in ends.items()])

        while await behind():
            assert time.monotonic() < deadline, "the topics were not read in time"
            for records in (await consumer.getmany(timeout_ms=200)).values():
                found.extend(r.value or b"" for r in records)
    finally:
        await consumer.stop()
    return found


async def request_keys(stack: Stack) -> list[bytes]:
    """The per-request keys the services hold now (unwrapped)."""
    vault = intake_of(stack).vault
    async with owner(stack) as conn:
        wrapped = (await conn.execute(text("SELECT wrapped_key FROM access.request_key"))).scalars().all()
    return [(vault.keys.decrypt(w) or "").encode() for w in wrapped]


def readable(texts: list[bytes], vault: Vault, keys: list[bytes]) -> bytes:
    """What someone holding the database, the topics and every key the services hold can read:
    the texts, and every encrypted value in them opened with the application's keys or a
    request's key."""
    from cryptography.fernet import Fernet, InvalidToken

    opened: list[bytes] = []
    ciphers = [Fernet(k) for k in keys]
    for token in {t for blob in texts for t in TOKEN.findall(blob)}:
        try:
            opened.append((vault.keys.decrypt(token.decode()) or "").encode())
            continue
        except InvalidToken:
            pass
        for cipher in ciphers:
            try:
                opened.append(cipher.decrypt(token))
                break
            except InvalidToken:
                continue
    return b"\n".join([*texts, *opened])


async def copies(stack: Stack, markers: list[str]) -> dict[str, dict[str, int]]:
    """How many readable copies of each marker the tables and the topics hold."""
    vault, keys = intake_of(stack).vault, await request_keys(stack)
    tables = readable(await table_texts(stack), vault, keys)
    topics = readable(await topic_texts(stack), vault, keys)
    return {m: {"tables": tables.count(m.encode()), "topics": topics.count(m.encode())} for m in markers}


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "not in time"
        await asyncio.sleep(0.1)


async def test_erasure_reaches_every_table_and_no_topic_can_be_read_back(stack: Stack) -> None:
    own = await stack.professional("22200000010", "79191")  # the patient's own doctor
    seen_by = await stack.professional("22200000011", "79191", slots=[stack.paris(0, 15, 0)])
    tag = f"{random.randrange(10**5):05d}7"  # no trailing 0: the coordinates are read back as floats
    name, phone = f"Erasable Patient {tag}", f"06 {tag[:2]} {tag[2:4]} {tag[4:]} 99"
    lat, lon = f"46.3{tag}", f"-0.4{tag}"
    body = stack.request_body("79191")
    body["patient"] |= {
        "lat": float(lat),
        "lon": float(lon),
        "age": 67,
        "sex": "F",
        "treating_rpps": "22200000010",
        "contact": {"name": name, "phone": phone},
    }
    assert (await stack.http.post("/v1/requests", json=body, headers=stack.auth)).status_code == 202
    request_id = body["request_id"]
    [offer] = await stack.mail.wait_for(seen_by)
    accepted = await stack.http.post(f"{link_path(offer)}/accept")
    assert name in accepted.text
    await stack.wait_status(request_id, "confirmed")
    [told] = await stack.mail.wait_for(own)  # the treating doctor was told
    assert name not in body_of(told)
    markers = [name, phone, lat, lon]

    before = await copies(stack, markers)
    assert all(found["tables"] > 0 for found in before.values()), before  # readable before: the test can fail
    assert before[lat]["topics"] > 0 and before[name]["topics"] == 0, before  # details sealed; no contact in events

    erased = await stack.http.delete(f"/v1/requests/{request_id}/patient", headers=stack.auth)
    assert erased.status_code == 200, erased.text
    view = erased.json()
    assert view["status"] == "confirmed" and view["patient_erased_at"] and view["appointment"]
    again = await stack.http.delete(f"/v1/requests/{request_id}/patient", headers=stack.auth)
    assert again.status_code == 200 and again.json()["patient_erased_at"] == view["patient_erased_at"]

    async def everywhere() -> bool:
        async with owner(stack) as conn:
            search = await conn.execute(
                text("SELECT patient_erased_at IS NOT NULL FROM matcher.search WHERE request_id = :id"),
                {"id": request_id},
            )
            told = await conn.execute(
                text(
                    "SELECT count(*) FROM notifier.notification n JOIN notifier.offer o USING (offer_id) "
                    "WHERE o.request_id = :id AND n.purpose = 'treating_doctor'"
                ),
                {"id": request_id},
            )
            return bool(search.scalar_one()) and told.scalar_one() == 0

    await until(everywhere)
    after = await copies(stack, markers)
    assert all(found == {"tables": 0, "topics": 0} for found in after.values()), after
    async with owner(stack) as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT age, sex, red_flags, treating_rpps, age_band, commune_insee FROM matcher.search "
                    "WHERE request_id = :id"
                ),
                {"id": request_id},
            )
        ).one()
    assert tuple(row) == (None, None, None, None, "60-69", "79191")

    # the professional's page shows no contact any more
    page = await stack.http.get(link_path(offer))
    assert page.status_code == 200 and name not in page.text and phone not in page.text
    # on record, for the organisation
    trail = await stack.http.get(
        "/v1/audit", params={"request_id": request_id, "action": "patient.erased"}, headers=stack.auth
    )
    assert [i["actor"]["kind"] for i in trail.json()["items"]] == ["client"]  # once, though asked twice

    # the read model rebuilt from the topics: it works, and holds nothing erased
    ops = next(part for part in stack.runtime.parts if part.name == "ops")
    assert await read_model.rebuild(ops.db, stack.runtime.bootstrap_servers, stack.runtime.topics) > 0
    async with ops.db.engine.connect() as conn:
        commune = await conn.execute(
            text("SELECT commune_insee FROM ops_request WHERE request_id = :id"), {"id": request_id}
        )
        assert commune.scalar_one() == "79191"
    assert all(found == {"tables": 0, "topics": 0} for found in (await copies(stack, markers)).values())


async def test_only_the_owning_organisation_or_an_admin_may_erase(stack: Stack) -> None:
    request_id = await stack.submit("79191")
    other = await stack.http.post("/v1/api-clients", json={"name": "SAS 16", "role": "regulator"}, headers=stack.admin)
    stranger = {"Authorization": f"Bearer {other.json()['key']}"}
    assert (await stack.http.delete(f"/v1/requests/{request_id}/patient", headers=stranger)).status_code == 404
    assert (await stack.http.delete(f"/v1/requests/{request_id}/patient")).status_code == 401
    assert "patient_erased_at" not in await stack.status(request_id)
    # an admin names the request by the id the services know (here the same)
    by_admin = await stack.http.delete(f"/v1/requests/{request_id}/patient", headers=stack.admin)
    assert by_admin.status_code == 200 and by_admin.json()["patient_erased_at"]
    assert (await stack.http.delete("/v1/requests/NO-SUCH/patient", headers=stack.auth)).status_code == 404
