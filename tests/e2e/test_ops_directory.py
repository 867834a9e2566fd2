"""A coordinator's directory page in a real browser: find a professional, see their slots and
participation, pause them (the next request skips them), end the pause; another CPTS's
coordinator cannot see them."""

from __future__ import annotations

import asyncio
import re

import pytest
from playwright.async_api import Browser

from tests.e2e.conftest import Stack, link_path, operator_client
from tests.e2e.test_browser import fits_the_screen, shot
from tests.e2e.test_ops_browser import logged_in

pytestmark = pytest.mark.e2e


async def test_a_coordinator_finds_and_pauses_a_professional(stack: Stack, browser: Browser) -> None:
    territory = {"name": "CPTS Pays de Morlaix", "communes": ["29151"], "radius_km": 30}
    assert (
        await stack.http.put("/v1/territories/cpts-morlaix", json=territory, headers=stack.admin)
    ).status_code == 201
    first = await stack.professional(
        "70000000001",
        "29151",
        slots=[stack.paris(0, 14, 0), stack.paris(1, 10, 0)],
        cpts_id="cpts-morlaix",
        name="Dr Anne Le Gall",
    )
    second = await stack.professional(
        "70000000002", "29151", slots=[stack.paris(0, 16, 0)], cpts_id="cpts-morlaix", name="Dr Yann Kerbrat"
    )
    before = await stack.submit("29151")
    [offer] = await stack.mail.wait_for(first)
    await stack.http.post(f"{link_path(offer)}/refuse", data={"reason": "absent"})
    [other] = await stack.mail.wait_for(second)
    await stack.http.post(f"{link_path(other)}/accept")
    await stack.wait_status(before, "confirmed")

    accounts = stack.accounts()
    await accounts.put("coord@morlaix.example.org", "mot de passe de Morlaix", "coordinator", "cpts-morlaix")
    page = await logged_in(browser, stack, "coord@morlaix.example.org", "mot de passe de Morlaix")
    await page.get_by_role("link", name="Annuaire").click()
    await page.fill("#q", "le gall")
    await page.get_by_role("button", name="Rechercher").click()
    rows = page.locator("tr[data-rpps]")
    assert await rows.count() == 1 and "Dr Anne Le Gall" in await rows.first.inner_text()
    assert "1 / 0" in await rows.first.inner_text()  # asked once in 30 days, accepted none
    await page.get_by_role("link", name="Dr Anne Le Gall").click()
    await page.wait_for_selector("h1")
    text = await page.locator("main").inner_text()
    assert "absent : 1" in text and "libre" in text  # the refusal's reason, the 14:00 slot still free

    # the read model keeps one version of a professional per instant: the fake clock moves on a little
    stack.clock.advance(seconds=1)
    await page.fill("#until", stack.clock.now.date().isoformat())  # until tonight
    await page.get_by_role("button", name="Mettre en pause").click()
    await page.wait_for_selector("[role=status]")
    pro = (await stack.http.get("/v1/professionals/70000000001", headers=stack.admin)).json()
    assert pro["paused_until"] is not None
    for _ in range(50):  # the read model hears of it from the matcher's announcement
        await page.reload()
        if await page.locator("#pause-state").count():
            break
        await asyncio.sleep(0.1)
    assert "En pause jusqu'au" in await page.locator("#pause-state").inner_text()
    await shot(page, "ops-directory-professional")
    await page.set_viewport_size({"width": 360, "height": 740})
    assert await fits_the_screen(page)
    await shot(page, "ops-directory-professional-phone")

    # the other has no slot left; the paused one's slot of tomorrow comes after the pause: the request waits
    request_id = await stack.submit("29151")
    waiting = await stack.wait_waiting(request_id)
    assert waiting["waiting"]["reason"] == "on_pause"
    assert len(stack.mail.to(first)) == 1

    stack.clock.advance(seconds=1)
    await page.get_by_role("button", name="Reprendre dès maintenant").click()
    await page.wait_for_selector("[role=status]")
    pro = (await stack.http.get("/v1/professionals/70000000001", headers=stack.admin)).json()
    assert pro["paused_until"] is None
    await stack.mail.wait_for(first, count=2)  # back: the waiting request is offered to them
    await stack.wait_status(request_id, "offered")

    await accounts.put("coord@brest.example.org", "mot de passe de Brest", "coordinator", "cpts-brest")
    foreign = await logged_in(browser, stack, "coord@brest.example.org", "mot de passe de Brest")
    response = await foreign.goto(f"{stack.http.base_url}/ops/directory/70000000001?cpts_id=cpts-morlaix")
    assert response is not None and response.status == 404
    await page.context.close()
    await foreign.context.close()


async def test_a_malformed_form_gets_a_page_not_json(stack: Stack) -> None:
    await stack.accounts().put("coord@lannion.example.org", "mot de passe de Lannion", "coordinator", "c-l")
    client = await operator_client(stack, "coord@lannion.example.org", "mot de passe de Lannion")
    try:
        page = await client.get("/ops/directory", params={"cpts_id": "c-l"})
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert page.status_code == 200 and csrf
        bad = await client.post(
            "/ops/directory/70000000009/pause", data={"csrf": csrf.group(1), "cpts_id": "c-l", "until": "demain"}
        )
        assert bad.status_code == 422 and bad.headers["content-type"].startswith("text/html")
        assert "n&#39;est pas valide" in bad.text and "Rien n&#39;a changé" in bad.text  # escaped apostrophes
    finally:
        await client.aclose()
