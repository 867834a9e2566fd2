"""The directory API: territories, professionals with sites, slots, motives."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Stack, link_path

pytestmark = pytest.mark.e2e


async def test_territory_is_created_then_replaced(stack: Stack) -> None:
    body = {"name": "CPTS test", "communes": ["79174", "79061"], "radius_km": 25}
    created = await stack.http.put("/v1/territories/cpts-test", json=body, headers=stack.auth)
    assert created.status_code == 201
    replaced = await stack.http.put("/v1/territories/cpts-test", json={**body, "radius_km": 40}, headers=stack.auth)
    assert replaced.status_code == 200 and replaced.json()["radius_km"] == 40
    assert (await stack.http.get("/v1/territories/cpts-test", headers=stack.auth)).json()["communes"] == [
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
    response = await stack.http.put(path, json=body, headers=stack.auth)
    assert response.status_code == 422, response.text
    assert field in {e["field"] for e in response.json()["errors"]}


async def test_withdrawing_a_held_slot_voids_the_offer_and_the_search_goes_on(stack: Stack) -> None:
    first = await stack.professional("89000000001", "21231", slots=[stack.paris(0, 14, 0), stack.paris(0, 15, 0)])
    second = await stack.professional("89000000002", "21231", slots=[stack.paris(0, 16, 0)])  # Dijon too
    assert (await stack.http.delete("/v1/slots/89000000001-1", headers=stack.auth)).status_code == 204
    assert (await stack.http.get("/v1/slots/89000000001-1", headers=stack.auth)).json()["state"] == "withdrawn"
    request_id = await stack.submit("21231")
    [offer] = await stack.mail.wait_for(first)
    assert (await stack.http.delete("/v1/slots/89000000001-0", headers=stack.auth)).status_code == 204
    told = await stack.mail.wait_for(first, count=2)
    assert "retirée" in str(told[1]["Subject"])
    await stack.mail.wait_for(second)  # the cascade went on
    assert (await stack.status(request_id))["status"] == "offered"
    assert "retirée" in (await stack.http.get(link_path(offer))).text
    assert (await stack.http.delete("/v1/slots/unknown", headers=stack.auth)).status_code == 404


async def test_a_booked_slot_cannot_be_withdrawn(stack: Stack) -> None:
    gp = await stack.professional("89100000001", "87085", slots=[stack.paris(0, 14, 0)])  # Limoges
    request_id = await stack.submit("87085")
    [offer] = await stack.mail.wait_for(gp)
    await stack.http.post(f"{link_path(offer)}/accept")
    await stack.wait_status(request_id, "confirmed")
    busy = await stack.http.delete("/v1/slots/89100000001-0", headers=stack.auth)
    assert busy.status_code == 409 and "booked" in busy.json()["detail"]


async def test_motives_list_codes_and_professions(stack: Stack) -> None:
    response = await stack.http.get("/v1/motives", headers=stack.auth)
    motives = {m["code"]: m for m in response.json()["motives"]}
    assert motives["general"]["professions"] == ["general_practitioner"]
    assert "dentist" in motives["dental_pain"]["professions"]
