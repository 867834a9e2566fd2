"""A real browser on a 360-pixel-wide phone screen: headless Chromium (Debian's), driven by Playwright.

Screenshots go to test-artifacts/ (not in git).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page
from sqlalchemy import text

from tests.e2e.conftest import Stack, link_path

pytestmark = pytest.mark.e2e
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"
PHONE = {"width": 360, "height": 740}


async def phone_page(browser: Browser, stack: Stack, path: str) -> Page:
    context = await browser.new_context(viewport=PHONE, locale="fr-FR")
    page = await context.new_page()
    await page.goto(f"{stack.http.base_url}{path}")
    return page


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def fits_the_screen(page: Page) -> bool:
    return bool(await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


async def test_accepting_an_extra_patient_at_a_chosen_time_on_a_phone(stack: Stack, browser: Browser) -> None:
    email = await stack.professional("50000000001", "35288", overflow_cap=2)  # Saint-Malo
    request_id = await stack.submit("35288")
    [message] = await stack.mail.wait_for(email)
    page = await phone_page(browser, stack, link_path(message))
    await shot(page, "offer-overflow")
    assert await page.locator("h1").inner_text() == "Un patient a besoin d'un rendez-vous"
    assert await fits_the_screen(page)
    assert await page.get_by_text("Jeanne").count() == 0
    options = await page.locator("#start option").evaluate_all("options => options.map(o => o.value)")
    chosen = options[2]
    await page.select_option("#start", chosen)
    await page.get_by_role("button", name="Accepter").click()
    await page.wait_for_load_state()
    await shot(page, "offer-accepted")
    assert "Merci, vous avez accepté" in await page.content()
    assert await page.get_by_text("Jeanne Patiente").count() == 1
    confirmed = await stack.wait_status(request_id, "confirmed")
    assert datetime.fromisoformat(confirmed["appointment"]["start"]) == datetime.fromisoformat(chosen)
    await page.context.close()


async def test_refusing_with_a_reason_on_a_phone(stack: Stack, browser: Browser) -> None:
    first = await stack.professional("50000000002", "22278", slots=[stack.paris(0, 15, 0)])  # Saint-Brieuc
    second = await stack.professional("50000000003", "22278", slots=[stack.paris(0, 16, 0)])
    await stack.submit("22278")
    [message] = await stack.mail.wait_for(first)
    page = await phone_page(browser, stack, link_path(message))
    await page.select_option("#reason", "full")
    await page.get_by_role("button", name="Refuser").click()
    await page.wait_for_load_state()
    await shot(page, "offer-refused")
    assert "Refus enregistré" in await page.content()
    await stack.mail.wait_for(second)  # the next professional is asked
    notifier = next(p for p in stack.runtime.parts if p.name == "notifier")
    async with notifier.db.engine.connect() as conn:
        reason = await conn.execute(text("SELECT decision_reason FROM offer WHERE rpps = '50000000002'"))
        assert reason.scalar() == "full"
    await page.context.close()


async def test_an_expired_link_says_so_on_a_phone(stack: Stack, browser: Browser) -> None:
    email = await stack.professional("50000000004", "29103", slots=[stack.paris(1, 15, 0)])  # Landerneau
    await stack.submit("29103")
    [message] = await stack.mail.wait_for(email)
    stack.clock.advance(minutes=16)
    page = await phone_page(browser, stack, link_path(message))
    await shot(page, "offer-expired")
    assert await page.locator("h1").inner_text() == "Délai dépassé"
    assert await page.get_by_role("button").count() == 0
    assert await fits_the_screen(page)
    await page.context.close()
    stack.clock.advance(minutes=-16)
