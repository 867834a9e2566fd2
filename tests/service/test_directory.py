"""The directory's writes, on memory and on PostgreSQL alike (see conftest.py): what each keeps,
refuses, withdraws and voids, and what it tells the other services and the index."""

from __future__ import annotations

from datetime import time, timedelta

import pytest

from schemas.events import (
    OfferInvalidated,
    ProfessionalChanged,
    ProfessionalLinkRequested,
    SlotChanged,
    TerritoryChanged,
)
from services.matcher.adapters import models
from services.matcher.directory.errors import NotFound, SlotBusy, SlotOverlap, UnknownReference
from services.matcher.directory.professionals import SiteInput
from services.matcher.domain.availability import Recurring
from services.matcher.domain.rpps import Listed, Practice
from tests.service.conftest import ALWAYS_OPEN, Supplying

MAIN = SiteInput("main", "Cabinet", "79174", "79", 46.21, -0.14, ALWAYS_OPEN)
ANNEX = SiteInput("annex", "Annexe", "79191", "79", 46.32, -0.46, ALWAYS_OPEN)
GP = {"name": "Dr Martin", "profession": "general_practitioner", "cpts_id": "T", "email": "martin@example.org"}


async def gp_with_slot(world: Supplying, rpps: str = "10000000001", site: str = "main") -> str:
    await world.directory.professionals.put(rpps, GP, [MAIN, ANNEX])
    start = world.clock() + timedelta(hours=3)
    await world.directory.slots.put(f"{rpps}-{site}", rpps, site, start, start + timedelta(minutes=20), "in_person")
    return f"{rpps}-{site}"


async def offer_holding(world: Supplying, slot_id: str) -> None:
    """A pending offer of the cascade holding the slot (as a claim leaves it)."""
    slot = await world.row(models.Slot, slot_id)
    offer = models.MatchOffer(
        offer_id="O1", request_id="R1", rpps=slot.rpps, site_id=slot.site_id, slot_id=slot_id, kind="slot",
        mode="in_person", start=slot.start, status="pending", explanation=[], answer_by=slot.start,
        created_at=world.clock(),
    )  # fmt: skip
    async with world.storage.transaction() as tx:
        store = world.storage.store(tx)
        store.upsert(None, models.MatchOffer, offer.model_dump())
        held = await store.get(models.Slot, slot_id)
        held.state, held.request_id, held.offer_id = models.SlotState.HELD, "R1", "O1"


async def test_a_territory_is_created_then_replaced_and_announced(supplying: Supplying) -> None:
    territories = supplying.directory.territories
    assert await territories.none_yet()
    assert (await territories.put("T", "CPTS T", ["79174"], 25.0))[1] is True
    assert (await territories.put("T", "CPTS T2", ["79174", "79191"], 30.0))[1] is False
    found = await territories.get("T")
    assert (found.name, found.communes, found.radius_km) == ("CPTS T2", ["79174", "79191"], 30.0)
    assert [e.name for e in supplying.events(TerritoryChanged)] == ["CPTS T", "CPTS T2"]
    assert not await territories.none_yet() and supplying.changed == ["territory:T", "territory:T"]
    with pytest.raises(NotFound):
        await territories.get("NONE")


async def test_a_site_left_out_closes_and_its_free_slots_are_withdrawn(supplying: Supplying) -> None:
    slot_id = await gp_with_slot(supplying, site="annex")
    await supplying.directory.professionals.put("10000000001", GP, [MAIN])
    pro, sites = await supplying.directory.professionals.get("10000000001")
    assert pro.active and [s.site_id for s in sites] == ["main"]
    assert (await supplying.row(models.Slot, slot_id)).state == models.SlotState.WITHDRAWN
    assert [e.state for e in supplying.events(SlotChanged)] == ["free", "withdrawn"]
    assert len(supplying.events(ProfessionalChanged)) == 2


async def test_a_slot_is_refused_when_it_overlaps_names_no_site_or_is_held(supplying: Supplying) -> None:
    slot_id = await gp_with_slot(supplying)
    slots, start = supplying.directory.slots, supplying.clock() + timedelta(hours=3, minutes=10)
    with pytest.raises(SlotOverlap):
        await slots.put("other", "10000000001", "main", start, start + timedelta(minutes=20), "in_person", alone=True)
    with pytest.raises(UnknownReference) as unknown:
        await slots.put("other", "10000000001", "nowhere", start, start + timedelta(minutes=20), "in_person")
    assert unknown.value.field == "site_id"
    await offer_holding(supplying, slot_id)
    with pytest.raises(SlotBusy):
        await slots.put(slot_id, "10000000001", "main", start, start + timedelta(minutes=20), "in_person")


async def test_withdrawing_a_held_slot_voids_its_offer(supplying: Supplying) -> None:
    slot_id = await gp_with_slot(supplying)
    await offer_holding(supplying, slot_id)
    await supplying.directory.slots.withdraw(slot_id)
    [voided] = supplying.events(OfferInvalidated)
    assert (voided.offer_id, voided.request_id) == ("O1", "R1")
    assert (await supplying.row(models.Slot, slot_id)).state == models.SlotState.WITHDRAWN
    with pytest.raises(NotFound):
        await supplying.directory.slots.withdraw("nothing")


async def test_a_deactivated_professional_loses_free_slots_and_pending_offers(supplying: Supplying) -> None:
    slot_id = await gp_with_slot(supplying)
    start = supplying.clock() + timedelta(hours=5)
    await supplying.directory.slots.put(
        "free", "10000000001", "main", start, start + timedelta(minutes=20), "in_person"
    )
    await offer_holding(supplying, slot_id)
    await supplying.directory.professionals.deactivate("10000000001")
    assert (await supplying.row(models.Slot, "free")).state == models.SlotState.WITHDRAWN
    assert (await supplying.row(models.Slot, slot_id)).state == models.SlotState.HELD  # its offer ends it
    assert [v.offer_id for v in supplying.events(OfferInvalidated)] == ["O1"]
    assert supplying.events(ProfessionalChanged)[-1].active is False


async def test_a_weekly_template_fills_the_weeks_ahead_once(supplying: Supplying) -> None:
    await supplying.directory.professionals.put("10000000001", GP, [MAIN])
    rules = [Recurring(("mon", "tue", "wed", "thu", "fri"), time(8, 0), time(9, 0), 20)]
    created, there = await supplying.directory.availability.keep("10000000001", "main", rules, 2)
    assert created >= 27 and there == 0  # three slots a weekday for two weeks, today's past ones left out
    assert await supplying.directory.availability.expand_templates() == 0  # nothing twice
    supplying.clock.advance(days=7)
    # the week that came into reach: Tuesday 22 to Monday 28 December, Christmas (Friday) left out
    assert await supplying.directory.availability.expand_templates() == 12


async def test_send_me_my_link_once_per_quiet_period(supplying: Supplying) -> None:
    await supplying.directory.professionals.put("10000000001", GP, [MAIN])
    professionals = supplying.directory.professionals
    assert await professionals.request_link(" Martin@Example.org ", timedelta(minutes=10)) == 1
    assert await professionals.request_link("martin@example.org", timedelta(minutes=10)) == 0
    assert await professionals.request_link("nobody@example.org", timedelta(minutes=10)) == 0
    [asked] = supplying.events(ProfessionalLinkRequested)
    assert asked.rpps == "10000000001"


async def test_a_territory_s_professionals_a_page_at_a_time(supplying: Supplying) -> None:
    for n, name in enumerate(["Dr Blanc", "Dr Amar", "Dr Caron"]):
        sites = [MAIN] if n < 2 else [ANNEX]
        await supplying.directory.professionals.put(f"1000000000{n}", {**GP, "name": name}, sites)
    await supplying.directory.professionals.put("20000000000", {**GP, "cpts_id": "OTHER"}, [MAIN])
    total, page = await supplying.directory.professionals.page("T", None, None, 2, 0)
    assert total == 3 and [p.name for p, _ in page] == ["Dr Amar", "Dr Blanc"]
    total, page = await supplying.directory.professionals.page("T", "general_practitioner", "79191", 10, 0)
    assert total == 1 and [(p.name, [s.site_id for s in sites]) for p, sites in page] == [("Dr Caron", ["annex"])]


async def test_the_national_directory_creates_updates_and_closes_practices(supplying: Supplying) -> None:
    practice = Practice("rpps-1", "Cabinet Lenoir", "79174", {"line": "1 rue", "postal_code": "79500"}, None, "l@x.org")
    listed = Listed("10000000007", "Dr Lenoir", "general_practitioner", [practice])
    merge = supplying.directory.listed.merge
    assert await merge(listed, "T") == "created"
    assert await merge(listed, "T") == "unchanged"
    moved = Listed("10000000007", "Dr Lenoir", "general_practitioner", [])
    assert await merge(moved, "T") == "updated"
    pro, sites = await supplying.directory.professionals.get("10000000007")
    assert pro.email == "l@x.org" and pro.sas_participation == "none" and sites == []
