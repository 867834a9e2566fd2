"""The directory API: territories, professionals with sites, slots, motives."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Stack

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


async def test_slots_can_be_withdrawn_while_free_but_not_while_held(stack: Stack) -> None:
    gp = await stack.professional("89000000001", "21231", slots=[stack.paris(0, 14, 0), stack.paris(0, 15, 0)])
    assert (await stack.http.delete("/v1/slots/89000000001-1", headers=stack.auth)).status_code == 204
    assert (await stack.http.get("/v1/slots/89000000001-1", headers=stack.auth)).json()["state"] == "withdrawn"
    await stack.submit("21231")  # Dijon: holds the remaining slot for an offer
    await stack.mail.wait_for(gp)
    busy = await stack.http.delete("/v1/slots/89000000001-0", headers=stack.auth)
    assert busy.status_code == 409 and "held" in busy.json()["detail"]
    assert (await stack.http.delete("/v1/slots/unknown", headers=stack.auth)).status_code == 404


async def test_motives_list_codes_and_professions(stack: Stack) -> None:
    response = await stack.http.get("/v1/motives", headers=stack.auth)
    motives = {m["code"]: m for m in response.json()["motives"]}
    assert motives["general"]["professions"] == ["general_practitioner"]
    assert "dentist" in motives["dental_pain"]["professions"]
