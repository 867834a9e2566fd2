"""The matching rules seen from outside: protocols, directory changes during an offer, alternatives."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.e2e.conftest import Stack, body_of, link_path

pytestmark = pytest.mark.e2e
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")


async def test_dental_pain_goes_to_a_dentist_then_to_a_delegated_pharmacist(stack: Stack) -> None:
    dentist = await stack.professional(
        "91000000001",
        "86194",
        profession="dentist",  # Poitiers
        slots=[stack.paris(0, 15, 0)],
    )
    pharmacist = await stack.professional("91000000002", "86194", profession="pharmacist", overflow_cap=3)
    request_id = await stack.submit("86194", motive="dental_pain")
    [offer] = await stack.mail.wait_for(dentist)
    status = await stack.status(request_id)
    deadline = datetime.fromisoformat(status["deadline"]) - datetime.fromisoformat(status["received_at"])
    assert deadline == timedelta(hours=24)  # dental pain implies 24 h, whatever the regulator sent
    await stack.http.post(f"{link_path(offer)}/refuse", data={"reason": "full"})
    [delegated] = await stack.mail.wait_for(pharmacist)
    assert "Douleur dentaire" in body_of(delegated)
    await stack.http.post(f"{link_path(delegated)}/accept")
    confirmed = await stack.wait_status(request_id, "confirmed")
    assert confirmed["appointment"]["professional"]["profession"] == "pharmacist"


async def test_red_flags_send_the_patient_to_a_gp(stack: Stack) -> None:
    pharmacist = await stack.professional("92000000001", "37261", profession="pharmacist", overflow_cap=3)  # Tours
    gp = await stack.professional("92000000002", "37261", slots=[stack.paris(0, 15, 0)])
    body = stack.request_body("37261", motive="sore_throat")
    body["patient"] |= {"age": 30, "red_flags": ["fever"]}
    response = await stack.http.post("/v1/requests", json=body, headers=stack.auth)
    assert response.status_code == 202
    await stack.mail.wait_for(gp)
    assert stack.mail.to(pharmacist) == []


async def test_unknown_red_flags_are_refused(stack: Stack) -> None:
    body = stack.request_body("37261", motive="sore_throat")
    body["patient"] |= {"red_flags": ["dragon_bite"]}
    response = await stack.http.post("/v1/requests", json=body, headers=stack.auth)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "patient.red_flags"


async def test_changed_hours_void_a_pending_offer_and_the_next_candidate_is_asked(stack: Stack) -> None:
    first = await stack.professional("93000000001", "25056", slots=[stack.paris(0, 15, 0)])  # Besançon
    second = await stack.professional("93000000002", "25056", slots=[stack.paris(0, 16, 0)])
    request_id = await stack.submit("25056")
    await stack.mail.wait_for(first)
    mornings_only = {
        "name": "Dr 93000000001",
        "profession": "general_practitioner",
        "email": "93000000001@sante.example.org",
        "sites": [
            {
                "site_id": "main",
                "name": "Cabinet",
                "commune_insee": "25056",
                "opening_hours": {d: [["08:00", "12:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
            }
        ],
    }
    changed = await stack.http.put("/v1/professionals/93000000001", json=mornings_only, headers=stack.admin)
    assert changed.status_code == 200
    withdrawn = await stack.mail.wait_for(first, count=2)
    assert "retirée" in str(withdrawn[1]["Subject"])
    await stack.mail.wait_for(second)
    assert (await stack.status(request_id))["status"] == "offered"


async def test_a_professional_who_leaves_is_no_longer_asked(stack: Stack) -> None:
    leaving = await stack.professional("94000000001", "63113", slots=[stack.paris(0, 15, 0)])  # Clermont-Ferrand
    staying = await stack.professional("94000000002", "63113", slots=[stack.paris(0, 17, 0)])
    request_id = await stack.submit("63113")
    await stack.mail.wait_for(leaving)
    assert (await stack.http.delete("/v1/professionals/94000000001", headers=stack.admin)).status_code == 204
    await stack.mail.wait_for(staying)
    assert (await stack.status(request_id))["status"] == "offered"
    assert (await stack.http.get("/v1/slots/94000000001-0", headers=stack.admin)).json()["state"] in (
        "free",
        "withdrawn",
    )
    second = await stack.submit("63113")
    waiting = await stack.wait_waiting(second)  # the one left is busy with the first request: wait for them
    assert waiting["waiting"]["reason"] == "candidates_busy"


async def test_unresolved_requests_come_with_alternatives(stack: Stack) -> None:
    await stack.professional("95000000001", "29019", slots=[stack.paris(0, 15, 0)])  # Brest
    remote = await stack.professional("95000000002", "06088", slots=[])  # Nice, far away
    tele = {
        "rpps": "95000000002",
        "site_id": "main",
        "start": stack.paris(0, 16, 0).isoformat(),
        "end": stack.paris(0, 16, 20).isoformat(),
        "mode": "teleconsultation",
    }
    assert (await stack.http.put("/v1/slots/tele-95", json=tele, headers=stack.admin)).status_code == 201
    far = await stack.submit("29151")  # Morlaix, 50 km from Brest: outside the 30 km radius
    unresolved = await stack.wait_status(far, "unresolved")
    assert unresolved["reason"] == "no_candidate_in_radius"
    by_kind = {a["kind"]: a for a in unresolved["alternatives"]}
    assert by_kind["outside_radius"]["rpps"] == "95000000001"
    assert 30 < by_kind["outside_radius"]["distance_km"] < 60
    assert by_kind["teleconsultation"]["rpps"] == "95000000002"
    assert stack.mail.to(remote) == []  # alternatives are for the regulator; nobody was asked
