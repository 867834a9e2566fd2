"""Busy days on the real services: requests wait for busy or closed professionals instead of
failing, are served urgent first, and parallel offers give the patient to the first who accepts.

The tests run in file order on one stack and one fake clock: the last two move the clock on
(to the next morning, then past a deadline), so they come last. Each works in its own town.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.e2e.conftest import Stack, body_of, link_path, operator_client
from tests.integration.helpers import eventually

pytestmark = pytest.mark.e2e


async def accept_every_offer(stack: Stack, emails: list[str], request_ids: list[str], timeout: float = 60) -> None:
    """Play the professionals who keep accepting: every new offer link is accepted, until every
    request is confirmed. Fails at once if a request ends any other way."""
    used: set[str] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for address in emails:
            for message in stack.mail.to(address):
                if "surnuméraire" not in body_of(message) and "Créneau" not in body_of(message):
                    continue  # not an offer (a withdrawal, a reminder)
                path = link_path(message)
                if path not in used:
                    used.add(path)
                    await stack.http.post(f"{path}/accept")
        statuses = [(await stack.status(r))["status"] for r in request_ids]
        assert "unresolved" not in statuses, statuses
        if all(s == "confirmed" for s in statuses):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not all confirmed: {statuses}")


async def test_twenty_requests_for_five_busy_gps_all_get_an_appointment(stack: Stack) -> None:
    emails = [await stack.professional(f"8700000000{i}", "33063", overflow_cap=10) for i in range(5)]  # Bordeaux
    request_ids = await asyncio.gather(*(stack.submit("33063") for _ in range(20)))

    # five are offered at once (one offer per professional), the fifteen others wait for them
    async def settled() -> list[dict[str, Any]]:
        statuses = [await stack.status(r) for r in request_ids]
        offered = sum(s["status"] == "offered" for s in statuses)
        waiting = [s for s in statuses if s["status"] == "searching" and "waiting" in s]
        return statuses if offered + len(waiting) == 20 else []

    statuses = await eventually(settled, timeout=10)
    assert sum(s["status"] == "offered" for s in statuses) == 5
    waiting = [s for s in statuses if s["status"] == "searching"]
    assert len(waiting) == 15
    assert all(s["waiting"]["reason"] == "candidates_busy" for s in waiting)

    await accept_every_offer(stack, emails, list(request_ids))
    for request_id in request_ids:
        history = [h["status"] for h in (await stack.status(request_id))["history"]]
        assert "unresolved" not in history
    per_gp = [len([m for m in stack.mail.to(e) if "surnuméraire" in body_of(m)]) for e in emails]
    assert sum(per_gp) == 20 and min(per_gp) >= 1


async def test_waiting_requests_are_served_urgent_first_then_by_deadline(stack: Stack) -> None:
    gp = await stack.professional("88000000001", "44109", overflow_cap=10)  # Nantes
    first = await stack.submit("44109")
    await stack.wait_status(first, "offered")
    now = stack.clock.now
    later = await stack.submit("44109", received_at=now.isoformat())
    earlier = await stack.submit(
        "44109", received_at=(now - timedelta(hours=30)).isoformat()
    )  # due before the urgent one
    urgent = await stack.submit("44109", urgency="24h", received_at=now.isoformat())
    for request_id in (later, earlier, urgent):
        await stack.wait_waiting(request_id)

    order: list[str] = []
    used: set[str] = set()
    for _ in range(4):
        for message in await stack.mail.wait_for(gp, count=len(used) + 1):
            path = link_path(message)
            if path not in used and "surnuméraire" in body_of(message):
                used.add(path)
                await stack.http.post(f"{path}/accept")
        for request_id in (first, urgent, earlier, later):
            if request_id not in order and (await stack.status(request_id))["status"] == "confirmed":
                order.append(request_id)
        await asyncio.sleep(0.3)
    await stack.wait_status(later, "confirmed")
    if later not in order:
        order.append(later)
    assert order == [first, urgent, earlier, later]


async def test_parallel_offers_the_first_to_accept_takes_the_patient(stack: Stack) -> None:
    territory = {"name": "CPTS Montpellier", "communes": ["34172"], "radius_km": 30, "parallel_offers": 2}
    put = await stack.http.put("/v1/territories/CPTS-34", json=territory, headers=stack.admin)
    assert put.status_code in (200, 201) and put.json()["parallel_offers"] == 2
    one = await stack.professional("89000000001", "34172", slots=[stack.paris(0, 15, 0)])  # Montpellier
    two = await stack.professional("89000000002", "34172", slots=[stack.paris(0, 16, 0)])
    request_id = await stack.submit("34172")
    [offer_one] = await stack.mail.wait_for(one)
    [offer_two] = await stack.mail.wait_for(two)  # both asked at once

    accepted = await stack.http.post(f"{link_path(offer_two)}/accept")
    assert "Jeanne Patiente" in accepted.text
    confirmed = await stack.wait_status(request_id, "confirmed")
    assert confirmed["appointment"]["professional"]["rpps"] == "89000000002"

    page = await stack.http.get(link_path(offer_one))  # the other's link says it is taken
    assert "déjà pris en charge" in page.text and "Jeanne" not in page.text
    late = await stack.http.post(f"{link_path(offer_one)}/accept")
    assert "déjà pris en charge" in late.text and "Jeanne" not in late.text
    withdrawn = await stack.mail.wait_for(one, count=2)
    assert "un autre professionnel" in body_of(withdrawn[1])
    assert (await stack.status(request_id))["appointment"]["professional"]["rpps"] == "89000000002"
    slot_one = await stack.http.get("/v1/slots/89000000001-0", headers=stack.admin)
    assert slot_one.json()["state"] == "free"  # offered to other patients again


async def test_parallel_offers_accepted_at_the_same_instant_give_one_appointment(stack: Stack) -> None:
    territory = {"name": "CPTS Nîmes", "communes": ["30189"], "radius_km": 30, "parallel_offers": 3}
    assert (await stack.http.put("/v1/territories/CPTS-30", json=territory, headers=stack.admin)).status_code == 201
    emails = [
        await stack.professional(f"8900000010{i}", "30189", slots=[stack.paris(0, 14 + i, 0)])  # Nîmes
        for i in range(3)
    ]
    request_id = await stack.submit("30189")
    links = [link_path((await stack.mail.wait_for(e))[0]) for e in emails]
    pages = await asyncio.gather(*(stack.http.post(f"{path}/accept") for path in links))

    winners = [p for p in pages if "Jeanne Patiente" in p.text]
    assert len(winners) == 1
    assert sum("déjà pris en charge" in p.text for p in pages) == 2
    confirmed = await stack.wait_status(request_id, "confirmed")
    winner = links[[p.text for p in pages].index(winners[0].text)]
    rpps = confirmed["appointment"]["professional"]["rpps"]
    assert rpps == f"8900000010{links.index(winner)}"
    await asyncio.sleep(0.5)  # time for a second booking to show up, if there were one
    states = [
        (await stack.http.get(f"/v1/slots/8900000010{i}-0", headers=stack.admin)).json()["state"] for i in range(3)
    ]
    assert sorted(states) == ["booked", "free", "free"]


async def test_a_waiting_request_can_be_cancelled_and_is_then_never_offered(stack: Stack) -> None:
    gp = await stack.professional("92000000001", "87085", overflow_cap=5)  # Limoges
    first = await stack.submit("87085")
    [offer] = await stack.mail.wait_for(gp)
    second = await stack.submit("87085")
    await stack.wait_waiting(second)
    cancelled = await stack.http.post(f"/v1/requests/{second}/cancel", headers=stack.auth)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"

    await stack.http.post(f"{link_path(offer)}/refuse")  # the professional is free again
    await stack.wait_status(first, "unresolved")  # nobody else for the first one
    await asyncio.sleep(0.5)
    assert len([m for m in stack.mail.to(gp) if "surnuméraire" in body_of(m)]) == 1  # the cancelled one was not offered
    assert (await stack.status(second))["status"] == "cancelled"


async def test_coordinators_see_which_requests_wait_and_why(stack: Stack) -> None:
    territory = {"name": "CPTS Poitiers", "communes": ["86194"], "radius_km": 30}
    assert (await stack.http.put("/v1/territories/CPTS-86", json=territory, headers=stack.admin)).status_code == 201
    await stack.professional("93000000001", "86194", overflow_cap=5, cpts_id="CPTS-86")  # Poitiers
    offered = await stack.submit("86194")
    await stack.wait_status(offered, "offered")
    waiting = await stack.submit("86194")
    await stack.wait_waiting(waiting)

    await stack.accounts().put("coord@cpts-86.example.org", "un mot de passe long", "coordinator", "CPTS-86")
    coordinator = await operator_client(stack, "coord@cpts-86.example.org", "un mot de passe long")
    try:

        async def live() -> str:
            page = (await coordinator.get("/ops/live")).text
            return page if f'data-request="{waiting}"' in page and "professionnels occupés" in page else ""

        page = await eventually(live)
        assert page, "the waiting request is not shown as waiting"
        row = page.split(f'data-request="{offered}"')[1].split("</tr>")[0]
        assert "proposée" in row
    finally:
        await coordinator.aclose()


async def test_a_request_whose_only_candidate_opens_tomorrow_is_offered_at_opening(stack: Stack) -> None:
    wednesday_only = {"wed": [["08:00", "19:00"]]}
    gp = await stack.professional(
        "90000000001",
        "76540",  # Rouen
        overflow_cap=3,
        sites=[{"site_id": "main", "name": "Cabinet", "commune_insee": "76540", "opening_hours": wednesday_only}],
    )
    request_id = await stack.submit("76540", callback_url=stack.receiver.url("rouen"), correlation_id="C-76")
    waiting = await stack.wait_waiting(request_id)
    assert waiting["waiting"]["reason"] == "not_yet_open"
    opening = stack.paris(1, 8, 0)
    assert datetime.fromisoformat(waiting["waiting"]["look_again_at"]) == opening
    told = await stack.receiver.wait_for("rouen", count=2)  # the regulator is told it waits, and why
    assert [c["status"] for c in told] == ["searching", "searching"]
    assert told[1]["waiting"]["reason"] == "not_yet_open" and "waiting" not in told[0]
    await asyncio.sleep(0.5)
    assert stack.mail.to(gp) == []  # nobody is woken at night, nor asked before their practice opens

    stack.clock.now = opening
    offered = await stack.wait_status(request_id, "offered")
    assert "waiting" not in offered
    assert [c["status"] for c in await stack.receiver.wait_for("rouen", count=3)][2] == "offered"
    [message] = await stack.mail.wait_for(gp)
    await stack.http.post(f"{link_path(message)}/accept")
    confirmed = await stack.wait_status(request_id, "confirmed")
    assert datetime.fromisoformat(confirmed["appointment"]["start"]) >= opening


async def test_a_waiting_request_past_its_deadline_ends_deadline_cannot_be_met(stack: Stack) -> None:
    gp = await stack.professional("91000000001", "21231", overflow_cap=5)  # Dijon
    busy_with = await stack.submit("21231")
    await stack.mail.wait_for(gp)
    request_id = await stack.submit("21231")
    waiting: dict[str, Any] = await stack.wait_waiting(request_id)
    deadline = datetime.fromisoformat(waiting["deadline"])
    assert datetime.fromisoformat(waiting["waiting"]["look_again_at"]) <= deadline  # never past the deadline

    stack.clock.now = deadline + timedelta(minutes=1)
    unresolved = await stack.wait_status(request_id, "unresolved")
    assert unresolved["reason"] == "deadline_cannot_be_met"
    assert "waiting" not in unresolved
    # the request the professional was busy with: its offer lapsed at the deadline, and so did it
    assert (await stack.wait_status(busy_with, "unresolved"))["reason"] == "deadline_cannot_be_met"
