"""The directory API: territories, professionals with sites, slots, motives."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from tests.e2e.conftest import Stack, link_path
from tests.integration.rpps_file import TERRITORY, generate

pytestmark = pytest.mark.e2e


async def test_territory_is_created_then_replaced(stack: Stack) -> None:
    body = {"name": "CPTS test", "communes": ["79174", "79061"], "radius_km": 25}
    created = await stack.http.put("/v1/territories/cpts-test", json=body, headers=stack.admin)
    assert created.status_code == 201
    replaced = await stack.http.put("/v1/territories/cpts-test", json={**body, "radius_km": 40}, headers=stack.admin)
    assert replaced.status_code == 200 and replaced.json()["radius_km"] == 40
    assert (await stack.http.get("/v1/territories/cpts-test", headers=stack.admin)).json()["communes"] == [
        "79061",
        "79174",
    ]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/territories/t", {"name": "x", "communes": ["00000"]}, "communes"),
        ("/v1/territories/t", {"name": "x", "communes": ["79174"], "radius_km": -1}, "radius_km"),
        (
            "/v1/professionals/1",
            {"name": "x", "profession": "wizard", "sites": [{"site_id": "a", "name": "a", "commune_insee": "79174"}]},
            "profession",
        ),
        ("/v1/professionals/1", {"name": "x", "profession": "nurse", "sites": []}, "sites"),
        (
            "/v1/professionals/1",
            {
                "name": "Dr\x00X",
                "profession": "nurse",
                "sites": [{"site_id": "a", "name": "a", "commune_insee": "79174"}],
            },
            "name",
        ),
        (
            "/v1/professionals/1",
            {"name": "x", "profession": "nurse", "sites": [{"site_id": "a", "name": "a\tb", "commune_insee": "79174"}]},
            "sites.0.name",
        ),
        (
            "/v1/professionals/1",
            {
                "name": "x",
                "profession": "nurse",
                "cpts_id": "a b",
                "sites": [{"site_id": "a", "name": "a", "commune_insee": "79174"}],
            },
            "cpts_id",
        ),
        ("/v1/territories/t", {"name": "x" * 201, "communes": ["79174"]}, "name"),
        (
            "/v1/slots/s",
            {"rpps": "x\x00", "site_id": "a", "start": "2026-12-01T10:00:00+01:00", "end": "2026-12-01T10:20:00+01:00"},
            "rpps",
        ),
        (
            "/v1/professionals/1",
            {
                "name": "x",
                "profession": "nurse",
                "email": "not-an-email",
                "sites": [{"site_id": "a", "name": "a", "commune_insee": "79174"}],
            },
            "email",
        ),
        (
            "/v1/professionals/1",
            {
                "name": "x",
                "profession": "nurse",
                "sites": [
                    {
                        "site_id": "a",
                        "name": "a",
                        "commune_insee": "79174",
                        "opening_hours": {"mon": [["20:00", "08:00"]]},
                    }
                ],
            },
            "sites.0",
        ),
        (
            "/v1/slots/s",
            {
                "rpps": "nobody",
                "site_id": "a",
                "start": "2026-12-01T10:00:00+01:00",
                "end": "2026-12-01T10:20:00+01:00",
            },
            "rpps",
        ),
        (
            "/v1/slots/s",
            {"rpps": "x", "site_id": "a", "start": "2026-12-01T10:00:00+01:00", "end": "2026-12-01T09:00:00+01:00"},
            "body",
        ),
    ],
)
async def test_bad_directory_input_gets_422_naming_the_field(
    stack: Stack, path: str, body: dict[str, object], field: str
) -> None:
    response = await stack.http.put(path, json=body, headers=stack.admin)
    assert response.status_code == 422, response.text
    assert field in {e["field"] for e in response.json()["errors"]}


async def test_withdrawing_a_held_slot_voids_the_offer_and_the_search_goes_on(stack: Stack) -> None:
    first = await stack.professional("89000000001", "21231", slots=[stack.paris(0, 14, 0), stack.paris(0, 15, 0)])
    second = await stack.professional("89000000002", "21231", slots=[stack.paris(0, 16, 0)])  # Dijon too
    assert (await stack.http.delete("/v1/slots/89000000001-1", headers=stack.admin)).status_code == 204
    assert (await stack.http.get("/v1/slots/89000000001-1", headers=stack.admin)).json()["state"] == "withdrawn"
    request_id = await stack.submit("21231")
    [offer] = await stack.mail.wait_for(first)
    assert (await stack.http.delete("/v1/slots/89000000001-0", headers=stack.admin)).status_code == 204
    told = await stack.mail.wait_for(first, count=2)
    assert "retirée" in str(told[1]["Subject"])
    await stack.mail.wait_for(second)  # the cascade went on
    assert (await stack.status(request_id))["status"] == "offered"
    assert "retirée" in (await stack.http.get(link_path(offer))).text
    assert (await stack.http.delete("/v1/slots/unknown", headers=stack.admin)).status_code == 404


async def test_a_booked_slot_cannot_be_withdrawn(stack: Stack) -> None:
    gp = await stack.professional("89100000001", "87085", slots=[stack.paris(0, 14, 0)])  # Limoges
    request_id = await stack.submit("87085")
    [offer] = await stack.mail.wait_for(gp)
    await stack.http.post(f"{link_path(offer)}/accept")
    await stack.wait_status(request_id, "confirmed")
    busy = await stack.http.delete("/v1/slots/89100000001-0", headers=stack.admin)
    assert busy.status_code == 409 and "booked" in busy.json()["detail"]


async def test_motives_list_codes_and_professions(stack: Stack) -> None:
    response = await stack.http.get("/v1/motives", headers=stack.auth)
    motives = {m["code"]: m for m in response.json()["motives"]}
    assert motives["general"]["professions"] == ["general_practitioner"]
    assert "dentist" in motives["dental_pain"]["professions"]


async def test_a_practice_address_reaches_the_regulator_with_the_appointment(stack: Stack) -> None:
    address = {"line": "3 place du Marché", "postal_code": "28000", "city": "Chartres"}
    site = {"site_id": "main", "name": "Cabinet du Marché", "commune_insee": "28085", "address": address}
    gp = await stack.professional("28000000001", "28085", slots=[stack.paris(0, 16, 0)], sites=[site])
    shown = await stack.http.get("/v1/professionals/28000000001", headers=stack.admin)
    assert shown.json()["sites"][0]["address"] == address
    request_id = await stack.submit("28085")
    [offer] = await stack.mail.wait_for(gp)
    assert (await stack.http.post(f"{link_path(offer)}/accept")).status_code == 200
    confirmed = await stack.wait_status(request_id, "confirmed")
    assert confirmed["appointment"]["site"]["practice_address"] == address
    bad = await stack.http.put(
        "/v1/professionals/28000000002",
        json={"name": "x", "profession": "nurse", "sites": [{**site, "address": {"postal_code": "2800"}}]},
        headers=stack.admin,
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "sites.0.address.postal_code"


async def test_a_coordinator_lists_the_territory_s_professionals_and_their_slots(stack: Stack) -> None:
    for n, (commune, profession) in enumerate(
        [("61001", "general_practitioner"), ("61006", "nurse"), ("61001", "nurse")]
    ):
        await stack.professional(f"6100000000{n}", commune, profession=profession, cpts_id="cpts-orne")
    await stack.professional("61000000009", "61001", slots=[stack.paris(1, 9), stack.paris(1, 10), stack.paris(3, 9)])
    listed = await stack.http.get("/v1/professionals", params={"cpts_id": "cpts-orne"}, headers=stack.admin)
    assert listed.status_code == 200, listed.text
    assert listed.json()["total"] == 3 and len(listed.json()["items"]) == 3
    nurses = await stack.http.get(
        "/v1/professionals",
        params={"cpts_id": "cpts-orne", "profession": "nurse", "commune_insee": "61001", "limit": 1},
        headers=stack.admin,
    )
    assert nurses.json()["total"] == 1 and nurses.json()["items"][0]["rpps"] == "61000000002"
    window = {"rpps": "61000000009", "from": stack.paris(1, 0).isoformat(), "to": stack.paris(2, 0).isoformat()}
    slots = await stack.http.get("/v1/slots", params=window, headers=stack.admin)
    assert slots.status_code == 200, slots.text
    starts = [datetime.fromisoformat(s["start"]) for s in slots.json()["items"]]
    assert starts == [stack.paris(1, 9), stack.paris(1, 10)]
    backwards = await stack.http.get("/v1/slots", params={**window, "to": window["from"]}, headers=stack.admin)
    assert backwards.status_code == 422
    naive = await stack.http.get("/v1/slots", params={**window, "from": "2026-12-02T00:00:00"}, headers=stack.admin)
    assert naive.status_code == 422


async def test_a_directory_extraction_uploaded_is_imported_for_the_territory(stack: Stack, tmp_path: Path) -> None:
    await stack.http.put(
        "/v1/territories/cpts-rpps", json={"name": "CPTS RPPS", "communes": TERRITORY}, headers=stack.admin
    )
    path = tmp_path / "PS_LibreAcces_Personne_activite.txt"
    expected = generate(path, seed=11)
    url = "/v1/territories/cpts-rpps/rpps-import"
    headers = {**stack.admin, "content-type": "text/plain; charset=utf-8"}
    first = await stack.http.post(url, content=path.read_bytes(), headers=headers, timeout=120)
    assert first.status_code == 200, first.text
    assert first.json()["created"] == len(expected["professionals"])  # type: ignore[arg-type]
    assert first.json()["skipped"] == expected["skipped"] and first.json()["rows"] == expected["rows"]
    again = await stack.http.post(url, content=path.read_bytes(), headers=headers, timeout=120)
    assert again.json()["unchanged"] == len(expected["professionals"]) and again.json()["created"] == 0  # type: ignore[arg-type]
    listed = await stack.http.get("/v1/professionals", params={"cpts_id": "cpts-rpps", "limit": 1}, headers=stack.admin)
    assert listed.json()["total"] == len(expected["professionals"])  # type: ignore[arg-type]
    assert (await stack.http.post(url, content=b"name|phone\nx|y\n", headers=headers)).status_code == 422
    unknown = "/v1/territories/nowhere/rpps-import"
    assert (await stack.http.post(unknown, content=path.read_bytes(), headers=headers)).status_code == 404
    assert (await stack.http.post(url, content=path.read_bytes())).status_code == 401


async def test_weekly_availability_becomes_slots_and_posting_it_again_duplicates_nothing(stack: Stack) -> None:
    await stack.professional("53000000001", "53130")  # Laval
    template = {
        "site_id": "main",
        "weeks": 1,
        "rules": [{"days": ["tue", "thu"], "start": "17:00", "end": "18:00", "minutes": 20}],
    }
    url = "/v1/professionals/53000000001/availability"
    first = await stack.http.post(url, json=template, headers=stack.admin)
    assert first.status_code == 200, first.text
    assert first.json() == {"created": 6, "already_there": 0}  # Tuesday and Thursday, 3 slots each
    window = {"rpps": "53000000001", "from": stack.paris(0, 0).isoformat(), "to": stack.paris(7, 0).isoformat()}
    slots = (await stack.http.get("/v1/slots", params=window, headers=stack.admin)).json()["items"]
    assert len(slots) == 6 and datetime.fromisoformat(slots[0]["start"]) == stack.paris(0, 17)
    assert (await stack.http.delete(f"/v1/slots/{slots[0]['slot_id']}", headers=stack.admin)).status_code == 204
    again = await stack.http.post(url, json=template, headers=stack.admin)
    assert again.json() == {"created": 0, "already_there": 6}  # the withdrawn one is not brought back
    states = [
        s["state"] for s in (await stack.http.get("/v1/slots", params=window, headers=stack.admin)).json()["items"]
    ]
    assert states.count("withdrawn") == 1 and states.count("free") == 5
    bad = await stack.http.post(
        url, json={**template, "rules": [{"days": ["tue"], "start": "18:00", "end": "17:00"}]}, headers=stack.admin
    )
    assert bad.status_code == 422
    nowhere = await stack.http.post(url, json={**template, "site_id": "elsewhere"}, headers=stack.admin)
    assert nowhere.status_code == 422 and nowhere.json()["errors"][0]["field"] == "site_id"
