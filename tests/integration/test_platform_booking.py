"""The national platform's booking and the cascade's hold meet at the slot row: run both at once
on many slots, in concurrent transactions, and each slot goes to exactly one side."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from schemas.topics import Topics
from services.common.db import Database
from services.matcher.adapters import models, slots
from services.matcher.directory import Directory
from services.matcher.entrypoints.fhir.appointment import BookingAsked, Identifier
from services.matcher.platform import BookingRefused, PlatformBookings
from tests.integration.helpers import MELLE_SITE, migrated

NOW = datetime(2026, 12, 1, 8, tzinfo=UTC)
SLOTS = 40
RPPS = "79000000001"


async def one_gp(database_url: str, prefix: str) -> tuple[Database, Directory, PlatformBookings]:
    """A CPTS with one GP (no slots yet), and the platform's side of the matcher."""
    db = await migrated(database_url, "matcher")

    async def nothing(_: list[str]) -> None:
        return None

    topics = Topics(prefix=prefix)
    directory = Directory.build(db, lambda: NOW, topics, nothing)
    await directory.territories.put("cpts-79", "CPTS Melle", ["79174"], 30.0)
    await directory.professionals.put(
        RPPS, {"name": "Dr A", "profession": "general_practitioner", "cpts_id": "cpts-79"}, [MELLE_SITE]
    )
    return db, directory, PlatformBookings(db, lambda: NOW, topics)


async def test_each_slot_goes_to_the_platform_or_to_the_cascade_never_both(database_url: str) -> None:
    db, directory, bookings = await one_gp(database_url, "race.")
    try:
        starts = [NOW + timedelta(hours=2, minutes=20 * n) for n in range(SLOTS)]
        for n, start in enumerate(starts):
            await directory.slots.put(f"s{n}", RPPS, "main", start, start + timedelta(minutes=20), "in_person")

        # the platform reads a few rows before it takes the slot: the cascade's hold starts up to
        # 6 ms late, so that either may come first
        delays = random.Random(11)
        pauses = [delays.uniform(0, 0.006) for _ in range(SLOTS)]

        async def cascade(n: int) -> bool:
            await asyncio.sleep(pauses[n])
            async with db.transaction() as tx:
                return await slots.hold_slot(tx.session, f"s{n}", f"req-{n}", f"offer-{n}", NOW)

        async def platform(n: int) -> bool:
            asked = BookingAsked(
                Identifier("urn:test", f"rdv-{n}"), starts[n], starts[n] + timedelta(minutes=20), RPPS,
                None, None,
            )  # fmt: skip
            try:
                await bookings.book(asked)
                return True
            except BookingRefused:
                return False

        # one pair at a time, both sides at once
        by_side = [tuple(await asyncio.gather(platform(n), cascade(n))) for n in range(SLOTS)]  # (platform, cascade)
        assert all(platform_won != cascade_won for platform_won, cascade_won in by_side), by_side

        async with db.engine.connect() as conn:
            rows = {r.slot_id: r for r in (await conn.execute(text("SELECT * FROM slot"))).all()}
            booked = {r.slot_id for r in (await conn.execute(text("SELECT slot_id FROM platform_appointment"))).all()}
            announced = await conn.scalar(
                text("SELECT count(*) FROM outbox_message WHERE value->>'type' LIKE '%platform.appointment.booked%'")
            )
        for n, (platform_won, _) in enumerate(by_side):
            slot = rows[f"s{n}"]
            if platform_won:
                assert (
                    slot.state == models.SlotState.BOOKED
                    and slot.request_id.startswith("platform:")
                    and f"s{n}" in booked
                )
            else:
                assert slot.state == models.SlotState.HELD and slot.request_id == f"req-{n}" and f"s{n}" not in booked
        assert announced == len(booked) == sum(p for p, _ in by_side)
    finally:
        await db.engine.dispose()


async def test_the_same_identifier_sent_twice_at_once_books_one_appointment(database_url: str) -> None:
    db, directory, bookings = await one_gp(database_url, "twice.")
    try:
        start = NOW + timedelta(hours=3)
        for n in range(2):  # two free slots at the same time: a second booking would find one
            await directory.slots.put(f"t{n}", RPPS, "main", start, start + timedelta(minutes=20), "in_person")
        asked = BookingAsked(Identifier("urn:test", "rdv-once"), start, start + timedelta(minutes=20), RPPS,
                             None, None)  # fmt: skip
        results = await asyncio.gather(*(bookings.book(asked) for _ in range(6)))
        assert len({booked.appointment_id for booked, _ in results}) == 1
        assert sum(created for _, created in results) == 1
        async with db.engine.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM slot WHERE state = 'booked'")) == 1
    finally:
        await db.engine.dispose()
