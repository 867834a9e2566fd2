"""Migrations, schema isolation between services, and slot holds under concurrency."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from services.common.clock import utcnow
from services.common.db import text_not_storable
from services.matcher.adapters import models, repository, slots
from tests.integration.helpers import MIGRATIONS, migrated


async def test_each_service_sees_only_its_own_tables_and_migrating_twice_is_harmless(database_url: str) -> None:
    dbs = {name: await migrated(database_url, name) for name in MIGRATIONS}
    await dbs["intake"].migrate(MIGRATIONS["intake"])  # again: nothing to do, no error
    try:
        async with dbs["intake"].engine.connect() as conn:
            assert (await conn.execute(text("SELECT to_regclass('orientation_request')"))).scalar()
            assert (await conn.execute(text("SELECT to_regclass('slot')"))).scalar() is None
            assert (await conn.execute(text("SELECT to_regclass('offer')"))).scalar() is None
        async with dbs["matcher"].engine.connect() as conn:
            assert (await conn.execute(text("SELECT to_regclass('slot')"))).scalar()
            assert (await conn.execute(text("SELECT to_regclass('patient_contact')"))).scalar() is None
        async with dbs["notifier"].engine.connect() as conn:
            old = await conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'notifier'"))
            assert not [t for t in old.scalars() if t.startswith("ops_")]  # the operations service's now
            await conn.execute(
                text(
                    "INSERT INTO audit_entry (at, offer_id, request_id, actor, action) "
                    "VALUES (now(), 'o', 'r', 'system', 'viewed')"
                )
            )
            with pytest.raises(Exception, match="append-only"):
                await conn.execute(text("UPDATE audit_entry SET action = 'accepted'"))
    finally:
        for db in dbs.values():
            await db.dispose()


async def test_concurrent_holds_on_one_slot_one_wins(database_url: str) -> None:
    db = await migrated(database_url, "matcher")
    now = utcnow()
    async with db.transaction() as tx:
        tx.session.add(models.ProfessionalRow(rpps="1", name="Dr A", profession="general_practitioner", updated_at=now))
        await tx.session.flush()
        tx.session.add(models.SiteRow(rpps="1", site_id="s", name="Cabinet", lat=46.0, lon=0.0))
        await tx.session.flush()
        tx.session.add(
            models.Slot(
                slot_id="last",
                rpps="1",
                site_id="s",
                start=now + timedelta(hours=2),
                end=now + timedelta(hours=2, minutes=20),
                mode="in_person",
                updated_at=now,
            )
        )

    async def try_hold(i: int) -> bool:
        async with db.transaction() as tx:
            won = await slots.hold_slot(tx.session, "last", f"REQ-{i}", f"offer-{i}", now)
            await asyncio.sleep(0.05)  # keep the transaction open so that others really overlap
            return won

    results = await asyncio.gather(*(try_hold(i) for i in range(10)))
    assert sum(results) == 1
    async with db.transaction() as tx:
        slot = await tx.session.get(models.Slot, "last")
        assert slot is not None and slot.state == models.SlotState.HELD
        assert slot.request_id == f"REQ-{results.index(True)}"
    await db.dispose()


async def test_a_database_error_never_carries_the_values_it_was_given(database_url: str) -> None:
    """A patient's name in a failed statement must not reach a log line through the error."""
    db = await migrated(database_url, "intake")
    try:
        with pytest.raises(DBAPIError) as caught:
            async with db.engine.begin() as conn:
                await conn.execute(
                    text("INSERT INTO patient_contact (request_id, name, phone) VALUES (:r, :n, :p)"),
                    {"r": "R-1", "n": "Jeanne\x00Patiente", "p": "0612345678"},
                )
        assert text_not_storable(caught.value)
        assert "Jeanne" not in str(caught.value) and "0612345678" not in str(caught.value)
    finally:
        await db.dispose()


async def test_offers_past_their_time_limit_are_found_by_their_own_column(database_url: str) -> None:
    db = await migrated(database_url, "matcher")
    now = utcnow()
    try:
        async with db.transaction() as tx:
            for offer_id, status, answer_by in (
                ("late", "pending", now - timedelta(minutes=20)),
                ("just-late", "pending", now - timedelta(minutes=10)),
                ("answered", "accepted", now - timedelta(minutes=30)),
            ):
                tx.session.add(
                    models.MatchOffer(
                        offer_id=offer_id,
                        request_id=f"r-{offer_id}",
                        rpps="10000000001",
                        site_id="main",
                        kind="slot",
                        mode="in_person",
                        start=now,
                        status=status,
                        answer_by=answer_by,
                        created_at=now - timedelta(hours=1),
                    )
                )
        async with db.transaction() as tx:
            late = await repository.offers_past_their_time(tx.session, grace=timedelta(minutes=15), now=now)
            assert late == [("r-late", "late")]
        async with db.engine.connect() as conn:  # the reconciler's query: 5 minutes past
            stuck = await conn.execute(text(repository.STUCK_OFFERS_SQL))
            assert sorted(stuck.scalars()) == ["r-just-late", "r-late"]
    finally:
        await db.dispose()
