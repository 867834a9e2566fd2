"""The national SAS platform over FHIR, on the running services: search, book, change a booking,
and a booking racing the cascade for the same slot."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.appointment import Appointment
from fhir.resources.R4B.operationoutcome import OperationOutcome

from services.matcher.entrypoints.fhir import codes
from tests.e2e.conftest import Stack, link_path
from tests.fhir_checks import check_searchset, references, valid

pytestmark = pytest.mark.e2e
FHIR_JSON = "application/fhir+json"
CPTS = "cpts-fhir"
FINESS = "540099999"
PLATFORM_SYSTEM = "urn:oid:1.2.250.1.213.3.6.99"  # the platform's own ids (made up for the test)


async def territory(stack: Stack, cpts_id: str, communes: list[str]) -> None:
    body = {"name": f"CPTS {cpts_id}", "communes": communes, "finess": FINESS}
    response = await stack.http.put(f"/v1/territories/{cpts_id}", json=body, headers=stack.admin)
    assert response.status_code in (200, 201), response.text


def search_params(stack: Stack, *rpps: str, days: int = 2) -> list[tuple[str, str]]:
    """The guide's query shape."""
    return [
        ("start", "ge" + stack.clock.now.isoformat()),
        ("start", "le" + (stack.clock.now + timedelta(days=days)).isoformat()),
        ("schedule.actor:Practitioner.identifier", ",".join(f"{codes.RPPS_SYSTEM}|8{r}" for r in rpps)),
        ("status", "free"),
        ("_include", "Slot:schedule"),
        ("_include:iterate", "Schedule:actor"),
        ("_include", "Slot:service-type-reference"),
        ("_include:iterate", "HealthcareService:organization"),
    ]


async def search(stack: Stack, *rpps: str) -> dict[str, Any]:
    response = await stack.http.get("/fhir/Slot", params=search_params(stack, *rpps), headers=stack.platform)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    return dict(response.json())


def booking_body(rpps: str, start: datetime, identifier: str, minutes: int = 20, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Appointment",
        "identifier": [{"system": PLATFORM_SYSTEM, "value": identifier}],
        "status": "booked",
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=minutes)).isoformat(),
        "participant": [
            {"actor": {"identifier": {"system": codes.RPPS_SYSTEM, "value": f"8{rpps}"}}, "status": "accepted"}
        ],
        "extension": [
            {
                "url": codes.OPERATOR_EXTENSION,
                "valueReference": {"identifier": {"system": codes.SAS_TECHNICAL_SYSTEM, "value": "regulateur-7"}},
            }
        ],
        **extra,
    }


async def book(stack: Stack, rpps: str, start: datetime, identifier: str, **extra: Any) -> httpx.Response:
    return await stack.http.post(
        "/fhir/Appointment",
        json=booking_body(rpps, start, identifier, **extra),
        headers={**stack.platform, "Content-Type": FHIR_JSON},
    )


async def set_status(stack: Stack, identifier: str, status: str) -> httpx.Response:
    return await stack.http.put(
        "/fhir/Appointment",
        params={"identifier": f"{PLATFORM_SYSTEM}|{identifier}"},
        json={"resourceType": "Appointment", "status": status, "participant": [{"status": "accepted"}]},
        headers={**stack.platform, "Content-Type": FHIR_JSON},
    )


def outcome_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    body = dict(response.json())
    OperationOutcome.model_validate(body)
    return body


async def slot_state(stack: Stack, slot_id: str) -> str:
    response = await stack.http.get(f"/v1/slots/{slot_id}", headers=stack.admin)
    assert response.status_code == 200, response.text
    return str(response.json()["state"])


async def figures(stack: Stack, until: dict[str, Any], timeout: float = 15) -> dict[str, Any]:
    period = {"cpts_id": CPTS, "from": "2026-12-01", "to": "2026-12-03"}
    deadline = time.monotonic() + timeout
    while True:
        found = dict((await stack.http.get("/v1/indicators", params=period, headers=stack.auth)).json())
        if all(found.get(k) == v for k, v in until.items()) or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.1)


async def test_metadata_says_what_the_server_supports(stack: Stack) -> None:
    response = await stack.http.get("/fhir/metadata")  # public, as FHIR servers do
    assert response.status_code == 200 and response.headers["content-type"].startswith(FHIR_JSON)
    statement = valid(response.json())
    assert statement["fhirVersion"] == "4.0.1" and statement["kind"] == "instance"
    kinds = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert {i["code"] for i in kinds["Slot"]["interaction"]} == {"search-type"}
    assert kinds["Appointment"]["conditionalUpdate"] is True


async def test_the_guides_search_returns_the_free_slots_with_everything_included(stack: Stack) -> None:
    await territory(stack, CPTS, ["54395"])
    address = {"line": "1 place Stanislas", "postal_code": "54000", "city": "Nancy"}
    site = {"site_id": "main", "name": "Cabinet Stanislas", "commune_insee": "54395", "address": address}
    slots = [stack.paris(0, 15), stack.paris(1, 9), stack.paris(5, 9)]  # the last one is outside the window
    await stack.professional("54000000001", "54395", cpts_id=CPTS, slots=slots, sites=[site])
    await stack.professional("54000000002", "54395", cpts_id=CPTS, slots=[stack.paris(0, 16)])
    await stack.professional("54000000003", "54395", cpts_id=CPTS, slots=[stack.paris(0, 17)])  # not asked
    body = await search(stack, "54000000001", "54000000002")
    found = check_searchset(body)
    assert body["total"] == 3
    assert sorted(k.split("/")[0] for k in found) == sorted(
        ["Slot"] * 3 + ["Schedule"] * 2 + ["Practitioner"] * 2 + ["PractitionerRole"] * 2
        + ["HealthcareService", "Organization"]
    )  # fmt: skip
    for resource in found.values():
        assert all(reference in found for reference in references(resource))
    (organization,) = [r for k, r in found.items() if k.startswith("Organization/")]
    assert organization["identifier"][0]["value"] == "1" + FINESS
    roles = [r for k, r in found.items() if k.startswith("PractitionerRole/")]
    assert {"line": [address["line"]], "postalCode": "54000", "city": "Nancy"} in [
        r["contained"][0].get("address") for r in roles
    ]
    nothing = await search(stack, "54999999999")
    assert nothing["total"] == 0 and "entry" not in nothing


async def test_a_search_or_call_the_server_cannot_honour_gets_an_operation_outcome(stack: Stack) -> None:
    params = search_params(stack, "54000000001")
    cases: list[tuple[list[tuple[str, str]], str]] = [
        ([p for p in params if not p[1].startswith("le")], "start"),
        ([*params, ("_sort", "start")], "_sort"),
        ([*params, ("_include", "Slot:*")], "_include"),
        ([*params[:2], ("schedule.actor:Practitioner.identifier", "urn:oid:9|810000000001"), *params[3:]],
         "schedule.actor:Practitioner.identifier"),
    ]  # fmt: skip
    for query, parameter in cases:
        response = await stack.http.get("/fhir/Slot", params=query, headers=stack.platform)
        assert outcome_of(response, 400)["issue"][0]["expression"] == [parameter]
    assert outcome_of(await stack.http.get("/fhir/Slot", params=params), 401)["issue"][0]["code"] == "security"
    regulators_key = await stack.http.get("/fhir/Slot", params=params, headers=stack.auth)
    assert outcome_of(regulators_key, 403)["issue"][0]["code"] == "forbidden"  # /fhir is the platform's
    platform_on_regulator_api = await stack.http.get("/v1/motives", headers=stack.platform)
    assert platform_on_regulator_api.status_code == 403
    not_json = await stack.http.post(
        "/fhir/Appointment", content=b"{", headers={**stack.platform, "Content-Type": FHIR_JSON}
    )
    outcome_of(not_json, 400)
    unknown = await stack.http.put(
        "/fhir/Appointment",
        params={"identifier": f"{PLATFORM_SYSTEM}|never-booked"},
        json={"resourceType": "Appointment", "status": "cancelled", "participant": [{"status": "accepted"}]},
        headers=stack.platform,
    )
    outcome_of(unknown, 404)
    # refused before any route runs (the input guard): in FHIR too
    control = await stack.http.get("/fhir/Slot", params=[*params, ("_count", "1\x00")], headers=stack.platform)
    assert outcome_of(control, 422)["issue"][0]["code"] == "invalid"
    huge = await stack.http.post(
        "/fhir/Appointment",
        content=b"{" + b" " * 2_000_000 + b"}",
        headers={**stack.platform, "Content-Type": FHIR_JSON},
    )
    assert outcome_of(huge, 413)["issue"][0]["code"] == "too-costly"
    problem = await stack.http.get("/v1/motives", params={"x": "\x00"}, headers=stack.auth)
    assert problem.status_code == 422 and problem.headers["content-type"].startswith("application/problem+json")


async def test_a_platform_booking_is_kept_told_and_counted_once(stack: Stack) -> None:
    await territory(stack, CPTS, ["54395"])
    gp = await stack.professional("54000000011", "54395", cpts_id=CPTS, slots=[stack.paris(0, 14), stack.paris(0, 15)])
    first = await book(stack, "54000000011", stack.paris(0, 14), "RDV-1")
    assert first.status_code == 201, first.text
    appointment = valid(first.json())
    Appointment.model_validate(appointment)
    location = first.headers["location"]
    assert location.endswith(f"/fhir/Appointment/{appointment['id']}")
    assert appointment["slot"] == [{"reference": "Slot/slot-54000000011-0"}]
    again = await book(stack, "54000000011", stack.paris(0, 14), "RDV-1")
    assert again.status_code == 200 and again.json()["id"] == appointment["id"]  # the same identifier: the same
    read = await stack.http.get(location.removeprefix(str(stack.http.base_url).rstrip("/")), headers=stack.platform)
    assert read.status_code == 200 and read.json()["status"] == "booked"
    assert await slot_state(stack, "54000000011-0") == "booked"
    taken = await book(stack, "54000000011", stack.paris(0, 14), "RDV-2")  # the same slot for another patient
    assert "no longer free" in outcome_of(taken, 422)["issue"][0]["diagnostics"]
    reused = await book(stack, "54000000011", stack.paris(0, 15), "RDV-1")  # the identifier of another booking
    assert "already used" in outcome_of(reused, 422)["issue"][0]["diagnostics"]
    nowhere = await book(stack, "54000000011", stack.paris(0, 14, 5), "RDV-3")  # no slot at that time
    outcome_of(nowhere, 422)
    assert [e["resource"]["start"] for e in (await search(stack, "54000000011"))["entry"]
            if e["resource"]["resourceType"] == "Slot"] == [stack.paris(0, 15).isoformat()]  # fmt: skip
    [told] = await stack.mail.wait_for(gp)
    assert "Rendez-vous SAS réservé" in str(told["subject"])
    assert (await set_status(stack, "RDV-1", "fulfilled")).json()["status"] == "fulfilled"
    assert (await set_status(stack, "RDV-1", "fulfilled")).status_code == 200  # the same again: nothing changes
    outcome_of(await set_status(stack, "RDV-1", "cancelled"), 422)  # it took place
    counted = await figures(stack, {"appointments_honoured": {"honoured": 1, "not_honoured": 0, "not_reported": 0}})
    assert counted["appointments_honoured"] == {"honoured": 1, "not_honoured": 0, "not_reported": 0}
    assert counted["sas_requests_with_appointment_by_channel"] == {"cascade": 0, "platform": 1}
    assert counted["sas_requests_with_appointment"] == 1
    assert counted["minutes_to_appointment"]["median"] is None  # a platform booking has no search time
    await asyncio.sleep(0.5)
    assert len(stack.mail.to(gp)) == 1  # told once, whatever the platform repeated


async def test_a_cancelled_booking_frees_the_slot_for_the_cascade(stack: Stack) -> None:
    await territory(stack, "cpts-fhir-cancel", ["21231"])
    gp = await stack.professional("21000000001", "21231", cpts_id="cpts-fhir-cancel", slots=[stack.paris(0, 16)])
    assert (await book(stack, "21000000001", stack.paris(0, 16), "RDV-C1")).status_code == 201
    before = await stack.submit("21231")
    await stack.wait_status(before, "unresolved")  # the only slot around is booked by the platform
    assert (await set_status(stack, "RDV-C1", "cancelled")).json()["status"] == "cancelled"
    assert await slot_state(stack, "21000000001-0") == "free"
    request_id = await stack.submit("21231")
    await stack.wait_status(request_id, "offered")  # the freed slot goes to the cascade
    assert await slot_state(stack, "21000000001-0") == "held"
    told = await stack.mail.wait_for(gp, 3)
    assert ["Rendez-vous SAS réservé" in str(m["subject"]) for m in told[:2]] == [True, False]
    assert "annulé" in str(told[1]["subject"])
    assert (await stack.http.post(f"{link_path(told[2])}/accept")).status_code == 200
    await stack.wait_status(request_id, "confirmed")
    outcome_of(await set_status(stack, "RDV-C1", "fulfilled"), 422)  # cancelled is final
    assert (await set_status(stack, "RDV-C1", "cancelled")).status_code == 200


async def test_a_booking_of_a_slot_the_cascade_holds_is_refused(stack: Stack) -> None:
    await territory(stack, "cpts-fhir-held", ["63113"])
    await stack.professional("63000000001", "63113", cpts_id="cpts-fhir-held", slots=[stack.paris(0, 16)])
    request_id = await stack.submit("63113")
    await stack.wait_status(request_id, "offered")
    assert (await search(stack, "63000000001"))["total"] == 0  # held by the cascade: not free
    held = await book(stack, "63000000001", stack.paris(0, 16), "RDV-H1")
    assert "no longer free" in outcome_of(held, 422)["issue"][0]["diagnostics"]


async def test_a_professional_on_pause_publishes_nothing_to_the_platform_before_its_end(stack: Stack) -> None:
    await territory(stack, "cpts-fhir-pause", ["63075"])
    await stack.professional(
        "63000000002", "63075", cpts_id="cpts-fhir-pause", slots=[stack.paris(0, 16), stack.paris(1, 10)]
    )
    assert (await search(stack, "63000000002"))["total"] == 2
    paused = await stack.http.put(
        "/v1/professionals/63000000002/pause",
        json={"until": stack.paris(0, 12).date().isoformat()},
        headers=stack.admin,
    )
    assert paused.status_code == 200 and paused.json()["paused_until"]
    found = await search(stack, "63000000002")
    starts = [e["resource"]["start"] for e in found["entry"] if e["resource"]["resourceType"] == "Slot"]
    assert found["total"] == 1 and [datetime.fromisoformat(s) for s in starts] == [stack.paris(1, 10)]
    refused = await book(stack, "63000000002", stack.paris(0, 16), "RDV-P1")
    assert "on pause" in outcome_of(refused, 422)["issue"][0]["diagnostics"]
    assert (await book(stack, "63000000002", stack.paris(1, 10), "RDV-P2")).status_code == 201


RACE_COMMUNES = ["75056", "69123", "13055", "31555", "33063", "67482", "59350", "44109", "35238", "29019"]


async def test_a_platform_booking_and_a_cascade_offer_racing_for_one_slot_never_both_win(stack: Stack) -> None:
    """Each round: one professional, one slot, a regulator's request and a platform booking sent
    together (the booking a little later each round, so that either side may come first)."""
    await territory(stack, "cpts-fhir-race", RACE_COMMUNES)
    rounds = []
    for n, commune in enumerate(RACE_COMMUNES):
        rpps = f"7{n:010d}"
        await stack.professional(rpps, commune, cpts_id="cpts-fhir-race", slots=[stack.paris(0, 17)])
        rounds.append((rpps, commune))

    async def race(n: int, rpps: str, commune: str) -> tuple[int, str, str]:
        async def platform() -> httpx.Response:
            await asyncio.sleep(0.06 * n)  # about when the cascade claims, on this stack: 0.3 s
            return await book(stack, rpps, stack.paris(0, 17), f"RACE-{uuid.uuid4().hex[:8]}")

        request_id, booked = await asyncio.gather(stack.submit(commune), platform())
        deadline = time.monotonic() + 15
        status = await stack.status(request_id)
        while status["status"] not in ("offered", "unresolved") and "waiting" not in status:
            assert time.monotonic() < deadline, status
            await asyncio.sleep(0.05)
            status = await stack.status(request_id)
        return booked.status_code, status["status"], await slot_state(stack, f"{rpps}-0")

    results = await asyncio.gather(*(race(n, rpps, commune) for n, (rpps, commune) in enumerate(rounds)))
    for platform_status, request_status, state in results:
        platform_won, cascade_won = platform_status == 201, request_status == "offered"
        assert platform_won != cascade_won, results  # exactly one side has the slot
        assert platform_status in (201, 422), results
        assert state == ("booked" if platform_won else "held"), results
