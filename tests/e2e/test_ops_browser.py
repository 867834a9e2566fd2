"""A coordinator watches the dashboard in a real browser: a request appears live, its outcome
follows, the CSV downloads; a coordinator of another CPTS sees none of it."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page

from tests.e2e.conftest import Stack, link_path
from tests.e2e.test_browser import ARTIFACTS, shot

pytestmark = pytest.mark.e2e
LIVE_WAIT_MS = 15_000  # the live view polls every 5 s


async def logged_in(browser: Browser, stack: Stack, email: str, password: str) -> Page:
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True, locale="fr-FR")
    page = await context.new_page()
    await page.goto(f"{stack.http.base_url}/ops/login")
    await page.fill("#email", email)
    await page.fill("#password", password)
    await page.get_by_role("button", name="Se connecter").click()
    await page.wait_for_url("**/ops")
    return page


async def test_a_coordinator_follows_a_request_live(stack: Stack, browser: Browser) -> None:
    territory = {"name": "CPTS Rouen", "communes": ["76540"], "radius_km": 30}
    assert (await stack.http.put("/v1/territories/cpts-rouen", json=territory, headers=stack.admin)).status_code == 201
    gp = await stack.professional("30000000001", "76540", slots=[stack.paris(0, 15, 0)], cpts_id="cpts-rouen")
    accounts = stack.accounts()
    await accounts.put("coord@rouen.example.org", "mot de passe de Rouen", "coordinator", "cpts-rouen")
    await accounts.put("coord@caen.example.org", "mot de passe de Caen", "coordinator", "cpts-caen")
    mine = await logged_in(browser, stack, "coord@rouen.example.org", "mot de passe de Rouen")
    other = await logged_in(browser, stack, "coord@caen.example.org", "mot de passe de Caen")

    request_id = await stack.submit("76540")
    await mine.wait_for_selector(f'[data-request="{request_id}"]', timeout=LIVE_WAIT_MS)  # appears, no reload
    await shot(mine, "ops-live-request")

    [offer] = await stack.mail.wait_for(gp)
    await stack.http.post(f"{link_path(offer)}/accept")
    outcome = await mine.wait_for_selector(f'[data-outcome="{request_id}"]', timeout=LIVE_WAIT_MS)
    assert outcome is not None
    said = await outcome.inner_text()  # with whom, and when
    assert "rendez-vous avec Dr 30000000001" in said and ("15:00" in said or "15 h" in said), said
    assert await mine.locator(f'[data-request="{request_id}"]').count() == 0  # no longer in progress
    await shot(mine, "ops-live-confirmed")

    async with mine.expect_download() as waiting:
        await mine.get_by_role("link", name="demandes").click()
    download = await waiting.value
    path = await download.path()
    assert request_id in path.read_text(encoding="utf-8")

    await other.reload()
    assert request_id not in await other.content()
    assert await other.locator("#indicator-2").inner_text() == "0"
    await mine.context.close()
    await other.context.close()


async def test_the_dashboard_fits_a_phone_and_speaks_french(stack: Stack, browser: Browser) -> None:
    territory = {"name": "CPTS Évreux", "communes": ["27229"], "radius_km": 30}
    assert (await stack.http.put("/v1/territories/cpts-evreux", json=territory, headers=stack.admin)).status_code == 201
    await stack.professional("27000000001", "27229", slots=[stack.paris(0, 16, 0)], cpts_id="cpts-evreux")
    await stack.accounts().put("coord@evreux.example.org", "mot de passe d'Évreux", "coordinator", "cpts-evreux")
    request_id = await stack.submit("27229")
    await stack.wait_status(request_id, "offered")
    context = await browser.new_context(viewport={"width": 360, "height": 780}, locale="fr-FR")
    page = await context.new_page()
    await page.goto(f"{stack.http.base_url}/ops/login")
    await page.fill("#email", "coord@evreux.example.org")
    await page.fill("#password", "mot de passe d'Évreux")
    await page.get_by_role("button", name="Se connecter").click()
    await page.wait_for_url("**/ops")
    await page.wait_for_selector(f'[data-request="{request_id}"]', timeout=LIVE_WAIT_MS)
    await shot(page, "ops-dashboard-360")
    wider = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert wider <= 0, f"the page is {wider} px wider than a 360 px screen"
    text = await page.inner_text("body")
    assert "coordinateur de CPTS" in text and "coordinator" not in text  # a role, in French
    assert "Dr 27000000001" in text  # the professional asked, by name
    await context.close()


async def test_a_sas_admin_picks_a_cpts_by_name_and_reads_labels_in_french_then_english(
    stack: Stack, browser: Browser
) -> None:
    territory = {"name": "CPTS Val de Rance", "communes": ["22050"], "radius_km": 30}  # Dinan
    assert (await stack.http.put("/v1/territories/cpts-rance", json=territory, headers=stack.admin)).status_code == 201
    gp = await stack.professional("22000000001", "22050", slots=[stack.paris(0, 16, 0)], cpts_id="cpts-rance")
    request_id = await stack.submit("22050")
    [offer] = await stack.mail.wait_for(gp)
    await stack.http.post(f"{link_path(offer)}/refuse", data={"reason": "too_far"})
    await stack.wait_status(request_id, "unresolved")
    await stack.accounts().put("admin@sas.example.org", "mot de passe du SAS", "sas_admin", None)

    for viewport in ({"width": 1280, "height": 900}, {"width": 360, "height": 780}):
        context = await browser.new_context(viewport=viewport, locale="fr-FR")
        page = await context.new_page()
        await page.goto(f"{stack.http.base_url}/ops/login")
        await page.fill("#email", "admin@sas.example.org")
        await page.fill("#password", "mot de passe du SAS")
        await page.get_by_role("button", name="Se connecter").click()
        await page.wait_for_selector("#cpts_id")  # the picker, not an error
        assert "Choisir une CPTS" in await page.inner_text("h1")
        await page.select_option("#cpts_id", label="CPTS Val de Rance (cpts-rance)")
        await page.get_by_role("button", name="Afficher").click()
        await page.wait_for_selector("#indicator-1")
        text = await page.inner_text("body")
        assert "Opérations SAS – CPTS Val de Rance" in text
        assert "trop loin : 1" in text and "too_far" not in text  # the refusal's motive as a label
        assert "administrateur SAS" in text and "sas_admin" not in text
        wide = viewport["width"]
        assert await page.evaluate("document.documentElement.scrollWidth") <= wide
        await shot(page, f"ops-admin-{wide}")
        await page.locator(".card.wide").screenshot(path=str(ARTIFACTS / f"ops-admin-per-day-{wide}.png"))

        await page.get_by_role("link", name="English").click()
        await page.wait_for_selector("#indicator-1")
        english = await page.inner_text("body")
        assert "SAS operations – CPTS Val de Rance" in english and "Refusals, by reason" in english
        assert "too far: 1" in english and "SAS administrator" in english
        await page.get_by_role("link", name="Directory").click()  # the language is remembered
        await page.wait_for_selector("h1")
        assert "Directory" in await page.inner_text("h1")
        await shot(page, f"ops-admin-directory-en-{wide}")
        await context.close()
