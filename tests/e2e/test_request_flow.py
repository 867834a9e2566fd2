"""One request from the gateway to its outcome, through all three services.

Each test works in its own part of France (communes far apart), so that the tests sharing
the running services never compete for the same professionals.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import text

from tests.e2e.conftest import Stack, body_of, link_path
from tests.integration.helpers import eventually

pytestmark = pytest.mark.e2e


async def test_healthz_is_ok_once_everything_runs(stack: Stack) -> None:
    response = await stack.http.get("/healthz")
    assert response.status_code == 200
    assert all(response.json()["checks"].values())


async def test_accept_confirms_the_appointment_and_books_the_slot(stack: Stack) -> None:
    start = stack.paris(0, 14, 0)
    gp = await stack.professional("81000000001", "35238", slots=[start])  # Rennes
    request_id = await stack.submit("35238")

    offered = await stack.wait_status(request_id, "offered")
    assert [h["status"] for h in offered["history"]] == ["received", "searching", "offered"]
    assert offered["ranking"][0]["rpps"] == "81000000001"

    [message] = await stack.mail.wait_for(gp)
    text = body_of(message)
    assert "Jeanne" not in text and "06 12 34 56 78" not in text  # no patient identity in e-mails
    path = link_path(message)

    page = await stack.http.get(path)
    assert page.status_code == 200
    assert "Accepter" in page.text and "Refuser" in page.text
    assert "Jeanne" not in page.text  # nor on the page before acceptance

    accepted = await stack.http.post(f"{path}/accept")
    assert accepted.status_code == 200
    assert "Jeanne Patiente" in accepted.text and "06 12 34 56 78" in accepted.text

    confirmed = await stack.wait_status(request_id, "confirmed")
    appointment = confirmed["appointment"]
    assert appointment["professional"] == {
        "rpps": "81000000001",
        "name": "Dr 81000000001",
        "profession": "general_practitioner",
    }
    assert appointment["site"]["name"] == "Cabinet 81000000001"
    assert appointment["site"]["commune_insee"] == "35238"
    assert {"lat", "lon"} <= appointment["site"].keys()
    assert appointment["kind"] == "slot" and appointment["mode"] == "in_person"
    assert datetime.fromisoformat(appointment["start"]) == start

    slot = await stack.http.get("/v1/slots/81000000001-0", headers=stack.admin)
    assert slot.json()["state"] == "booked"

    again = await stack.http.post(f"{path}/accept")  # a second click changes nothing
    assert again.status_code == 200 and "Jeanne Patiente" in again.text
    assert (await stack.status(request_id))["status"] == "confirmed"


async def test_refusal_moves_to_the_next_candidate(stack: Stack) -> None:
    nearer = await stack.professional("82000000001", "69123", slots=[stack.paris(0, 15, 0)])  # Lyon
    farther = await stack.professional("82000000002", "69266", slots=[stack.paris(0, 15, 0)])  # Villeurbanne
    request_id = await stack.submit("69123")

    [first] = await stack.mail.wait_for(nearer)
    refused = await stack.http.post(f"{link_path(first)}/refuse", data={"reason": "full"})
    assert refused.status_code == 200 and "Refus enregistré" in refused.text

    [second] = await stack.mail.wait_for(farther)
    await stack.wait_status(request_id, "offered")
    await stack.http.post(f"{link_path(second)}/accept")
    confirmed = await stack.wait_status(request_id, "confirmed")
    assert confirmed["appointment"]["professional"]["rpps"] == "82000000002"

    freed = await stack.http.get("/v1/slots/82000000001-0", headers=stack.admin)
    assert freed.json()["state"] == "free"  # the refused slot is offered to others again
    late = await stack.http.post(f"{link_path(first)}/accept")  # the refused link cannot accept now
    assert "Refus enregistré" in late.text and "Jeanne" not in late.text
    assert (await stack.status(request_id))["appointment"]["professional"]["rpps"] == "82000000002"


async def test_when_everyone_declines_the_request_is_unresolved(stack: Stack) -> None:
    gp = await stack.professional("83000000001", "13055", slots=[stack.paris(0, 16, 0)])  # Marseille
    request_id = await stack.submit("13055")
    [message] = await stack.mail.wait_for(gp)
    await stack.http.post(f"{link_path(message)}/refuse")
    unresolved = await stack.wait_status(request_id, "unresolved")
    assert unresolved["reason"] == "all_declined"
    assert unresolved["detail"]


async def test_no_candidate_in_radius_is_unresolved_with_the_reason(stack: Stack) -> None:
    request_id = await stack.submit("2A004")  # Ajaccio: nobody registered in Corsica
    unresolved = await stack.wait_status(request_id, "unresolved")
    assert unresolved["reason"] == "no_candidate_in_radius"
    assert "30 km" in unresolved["detail"]


async def test_overflow_gp_when_no_slot(stack: Stack) -> None:
    gp = await stack.professional("84000000001", "67482", overflow_cap=2)  # Strasbourg
    request_id = await stack.submit("67482")
    [message] = await stack.mail.wait_for(gp)
    assert "surnuméraire" in body_of(message)
    await stack.http.post(f"{link_path(message)}/accept")
    confirmed = await stack.wait_status(request_id, "confirmed")
    assert confirmed["appointment"]["kind"] == "overflow"


async def test_the_same_request_twice_is_one_request_and_one_offer(stack: Stack) -> None:
    gp = await stack.professional("85000000001", "31555", slots=[stack.paris(0, 17, 0)])  # Toulouse
    body = stack.request_body("31555")
    first = await stack.http.post("/v1/requests", json=body, headers=stack.auth)
    second = await stack.http.post("/v1/requests", json=body, headers=stack.auth)
    assert first.status_code == second.status_code == 202
    assert (
        first.json()
        == second.json()
        == {"request_id": body["request_id"], "status": "received", "status_url": f"/v1/requests/{body['request_id']}"}
    )
    await stack.wait_status(body["request_id"], "offered")
    await stack.mail.wait_for(gp)

    different = await stack.http.post("/v1/requests", json={**body, "urgency": "24h"}, headers=stack.auth)
    assert different.status_code == 409
    assert different.headers["content-type"].startswith("application/problem+json")
    await asyncio.sleep(0.5)  # time for a duplicate offer to show up, if there were one
    assert len(stack.mail.to(gp)) == 1


async def test_cancel_withdraws_the_offer_and_frees_the_slot(stack: Stack) -> None:
    gp = await stack.professional("86000000001", "59350", slots=[stack.paris(0, 11, 0)])  # Lille
    request_id = await stack.submit("59350")
    [offer] = await stack.mail.wait_for(gp)
    cancelled = await stack.http.post(f"/v1/requests/{request_id}/cancel", headers=stack.auth)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"

    withdrawn = await stack.mail.wait_for(gp, count=2)
    assert "retirée" in str(withdrawn[1]["Subject"])
    slot = await stack.http.get("/v1/slots/86000000001-0", headers=stack.admin)
    assert slot.json()["state"] == "free"
    page = await stack.http.get(link_path(offer))
    assert "retirée" in page.text
    late = await stack.http.post(f"{link_path(offer)}/accept")
    assert "Jeanne" not in late.text
    assert (await stack.status(request_id))["status"] == "cancelled"


async def test_an_unanswered_offer_expires_and_the_next_candidate_is_asked(stack: Stack) -> None:
    first = await stack.professional("87000000001", "33063", slots=[stack.paris(0, 18, 0)])  # Bordeaux
    second = await stack.professional("87000000002", "33281", slots=[stack.paris(0, 18, 0)])  # Mérignac
    request_id = await stack.submit("33063")
    [offer] = await stack.mail.wait_for(first)
    stack.clock.advance(minutes=16)  # past the 15-minute time limit
    await stack.mail.wait_for(second)
    page = await stack.http.get(link_path(offer))
    assert "Délai dépassé" in page.text
    status = await stack.status(request_id)
    assert status["status"] == "offered"


async def test_forged_link_shows_a_clear_page(stack: Stack) -> None:
    page = await stack.http.get("/o/not-a-real-token")
    assert page.status_code == 404 and "Lien non valide" in page.text
    post = await stack.http.post("/o/not-a-real-token/accept")
    assert post.status_code == 404


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        ({"received_at": None}, {"received_at"}),
        ({"received_at": "2026-12-01T10:00:00"}, {"received_at"}),  # no offset
        ({"urgency": "now"}, {"urgency"}),
        ({"motive": "headache-xyz"}, {"motive"}),
        ({"patient": {"commune_insee": "99999"}}, {"patient.commune_insee"}),
        ({"patient": {"lat": 46.2}}, {"patient"}),
        ({"patient": {"commune_insee": "79174", "age": -3}}, {"patient.age"}),
        ({"request_id": ""}, {"request_id"}),
        # hostile input: never a 500, never a silent accept
        ({"patient": {"commune_insee": "79174", "contact": {"name": "Je\x00anne"}}}, {"patient.contact.name"}),
        ({"patient": {"commune_insee": "79174", "contact": {"name": "x" * 9000}}}, {"patient.contact.name"}),
        ({"correlation_id": "a\x00b"}, {"correlation_id"}),
        ({"correlation_id": "line\nbreak"}, {"correlation_id"}),
        ({"motive": "x" * 9000}, {"motive"}),
        ({"patient": {"commune_insee": "79174", "age": 121}}, {"patient.age"}),
        ({"received_at": "9999-12-31T00:00:00+00:00"}, {"received_at"}),
        ({"callback_url": "ftp://regulator.example/status"}, {"callback_url"}),
        ({"callback_url": "https://regulator.example/" + "a" * 3000}, {"callback_url"}),
    ],
)
async def test_invalid_bodies_get_422_naming_the_fields(
    stack: Stack, change: dict[str, object], fields: set[str]
) -> None:
    body = stack.request_body("79174")
    body.update(change)
    response = await stack.http.post("/v1/requests", json=body, headers=stack.auth)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert {e["field"] for e in problem["errors"]} == fields
    assert all(f in problem["detail"] for f in fields)


@pytest.mark.parametrize(
    ("offset", "motive", "why"),
    [
        (timedelta(minutes=6), "general", "in the future"),  # beyond the 5 min clock skew
        (-timedelta(hours=48, minutes=1), "general", "the 48h deadline"),
        (-timedelta(hours=24, minutes=1), "dental_pain", "the 24h deadline"),  # the motive makes it urgent
    ],
)
async def test_received_at_out_of_range_gets_422_saying_why(
    stack: Stack, offset: timedelta, motive: str, why: str
) -> None:
    body = stack.request_body("79174", received_at=(stack.clock.now + offset).isoformat(), motive=motive)
    response = await stack.http.post("/v1/requests", json=body, headers=stack.auth)
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["field"] == "received_at" and why in error["message"]
    assert (await stack.http.get(f"/v1/requests/{body['request_id']}", headers=stack.auth)).status_code == 404


async def test_received_at_within_the_deadline_and_clock_skew_is_accepted(stack: Stack) -> None:
    for offset in (timedelta(minutes=4), -timedelta(hours=47)):
        body = stack.request_body("79174", received_at=(stack.clock.now + offset).isoformat())
        response = await stack.http.post("/v1/requests", json=body, headers=stack.auth)
        assert response.status_code == 202, response.text
        await stack.http.post(f"/v1/requests/{body['request_id']}/cancel", headers=stack.auth)


async def test_a_lone_surrogate_gets_422(stack: Stack) -> None:
    body = stack.request_body("79174")
    raw = json.dumps(body).replace("Jeanne Patiente", "Jeanne \\ud800").encode()  # valid JSON, no valid text
    response = await stack.http.post(
        "/v1/requests", content=raw, headers={**stack.auth, "content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "patient.contact.name"


async def test_bad_paths_and_oversized_bodies_are_refused_before_anything_runs(stack: Stack) -> None:
    for path in ("/v1/requests/a%00b", "/v1/requests/" + "x" * 5000, "/o/a%01b"):
        response = await stack.http.get(path, headers=stack.auth)
        assert response.status_code == 422, (path, response.text)
        assert response.json()["errors"][0]["field"] == "path"
    assert (await stack.http.get("/v1/requests/bad id!", headers=stack.auth)).status_code == 422
    big = b'{"request_id": "' + b"x" * 2_000_000 + b'"}'
    declared = await stack.http.post(
        "/v1/requests", content=big, headers={**stack.auth, "content-type": "application/json"}
    )
    assert declared.status_code == 413, declared.text

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(40):
            yield b" " * 65536

    streamed = await stack.http.post(
        "/v1/requests", content=chunks(), headers={**stack.auth, "content-type": "application/json"}
    )
    assert streamed.status_code == 413, streamed.text
    assert streamed.headers["content-type"].startswith("application/problem+json")


async def test_not_json_gets_422(stack: Stack) -> None:
    response = await stack.http.post(
        "/v1/requests", content=b"{not json", headers={**stack.auth, "content-type": "application/json"}
    )
    assert response.status_code == 422


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}])
async def test_without_a_valid_key_401(stack: Stack, headers: dict[str, str]) -> None:
    for method, path in [
        ("POST", "/v1/requests"),
        ("GET", "/v1/requests/x"),
        ("PUT", "/v1/slots/x"),
        ("GET", "/v1/motives"),
    ]:
        response = await stack.http.request(method, path, headers=headers, json={})
        assert response.status_code == 401, (method, path)
        assert response.json()["status"] == 401


async def test_unknown_request_is_404(stack: Stack) -> None:
    response = await stack.http.get("/v1/requests/nope", headers=stack.auth)
    assert response.status_code == 404
    assert response.json()["detail"] == "no request nope"


async def test_cancelling_a_confirmed_request_frees_the_booked_slot_and_tells_the_professional(stack: Stack) -> None:
    gp = await stack.professional("88000000001", "44109", slots=[stack.paris(0, 12, 0)])  # Nantes
    request_id = await stack.submit("44109")
    [offer] = await stack.mail.wait_for(gp)
    await stack.http.post(f"{link_path(offer)}/accept")
    await stack.wait_status(request_id, "confirmed")
    assert (await stack.http.get("/v1/slots/88000000001-0", headers=stack.admin)).json()["state"] == "booked"

    cancelled = await stack.http.post(f"/v1/requests/{request_id}/cancel", headers=stack.auth)
    assert cancelled.json()["status"] == "cancelled"
    await stack.mail.wait_for(gp, count=2)  # the professional is told
    assert (await stack.http.get("/v1/slots/88000000001-0", headers=stack.admin)).json()["state"] == "free"
    again = await stack.http.post(f"/v1/requests/{request_id}/cancel", headers=stack.auth)
    assert again.status_code == 200 and again.json()["status"] == "cancelled"


EFFECTS = {
    "intake": [
        "SELECT count(*) FROM request_history WHERE request_id = :r",
        "SELECT count(*) FROM callback_delivery WHERE request_id = :r",
        "SELECT count(*) FROM outbox_message WHERE key = :r",
    ],
    "matcher": [
        "SELECT count(*) FROM match_offer WHERE request_id = :r",
        "SELECT count(*) FROM outbox_message WHERE key = :r",
    ],
    "notifier": [
        "SELECT count(*) FROM notification n JOIN offer o USING (offer_id) WHERE o.request_id = :r",
        "SELECT count(*) FROM audit_entry WHERE request_id = :r",
        "SELECT count(*) FROM outbox_message WHERE key = :r",
    ],
}


async def test_the_same_facts_again_under_new_event_ids_change_nothing(stack: Stack) -> None:
    """A producer that re-created its events, a replay from elsewhere: idempotent by meaning, not only by id."""
    await stack.professional("51000000009", "51454")  # Reims: the patient's own doctor, told of the appointment
    gp = await stack.professional("51000000001", "51454", slots=[stack.paris(0, 15, 0)])
    body = stack.request_body("51454", callback_url=stack.receiver.url("callback"))
    body["patient"]["treating_rpps"] = "51000000009"
    assert (await stack.http.post("/v1/requests", json=body, headers=stack.auth)).status_code == 202
    request_id = str(body["request_id"])
    [offer] = await stack.mail.wait_for(gp)
    assert (await stack.http.post(f"{link_path(offer)}/accept")).status_code == 200
    await stack.wait_status(request_id, "confirmed")
    parts = {part.name: part for part in stack.runtime.parts}

    async def effects() -> dict[str, list[int]]:
        await asyncio.sleep(1.0)  # let the last messages and callbacks be written
        found = {}
        for name, queries in EFFECTS.items():
            async with parts[name].db.engine.connect() as conn:
                found[name] = [int((await conn.execute(text(q), {"r": request_id})).scalar() or 0) for q in queries]
        return found

    before = await effects()
    copied = 0
    for name in EFFECTS:  # every event about this request, again, each under a new id
        async with parts[name].db.engine.begin() as conn:
            result = await conn.execute(
                text(
                    "WITH copied AS (SELECT gen_random_uuid() AS id, * FROM outbox_message WHERE key = :r) "
                    "INSERT INTO outbox_message (event_id, topic, key, value, created_at) "
                    "SELECT id, topic, key, jsonb_set(value, '{id}', to_jsonb(id::text)), now() "
                    "FROM copied ORDER BY seq"
                ),
                {"r": request_id},
            )
            copied += result.rowcount
    assert copied >= 5  # received, searching, offered, accepted, confirmed
    relays = stack.runtime.relays.values()

    async def published() -> bool:
        return not any([await relay.backlog() for relay in relays])

    assert await eventually(published)  # then handled by every consumer (effects() waits a second)
    after = await effects()
    assert {name: after[name][:-1] for name in EFFECTS} == {name: before[name][:-1] for name in EFFECTS}
    new_events = sum(after[name][-1] - before[name][-1] for name in EFFECTS) - copied
    assert new_events == 0  # no handler wrote an event: nothing changed state
    assert (await stack.status(request_id))["status"] == "confirmed"
