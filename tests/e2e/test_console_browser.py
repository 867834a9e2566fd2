"""A regulator in a real browser (Debian's Chromium through Playwright), on a stack in `make
run`'s trial mode (no SMTP relay: the e-mails are on the trial mailbox page): logs in, posts a
request with the keyboard only, watches it become offered, the GP accepts from the mailbox's
link, the console shows the appointment; another organisation's regulator never sees it; a
cancel from the console withdraws the offer. Screenshots in test-artifacts/."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, Page, expect

from tests.e2e.conftest import Stack
from tests.e2e.test_browser import shot

pytestmark = pytest.mark.e2e
PASSWORD = "un mot de passe de régulateur"
LIVE_MS = 15_000  # the console polls every 3 s


async def console_page(browser: Browser, stack: Stack, email: str, organisation: str, width: int = 1280) -> Page:
    """Logged in to the console with the keyboard only."""
    await stack.accounts().put(email, PASSWORD, "regulator", organisation=organisation)
    context = await browser.new_context(viewport={"width": width, "height": 900}, locale="fr-FR")
    page = await context.new_page()
    await page.goto(f"{stack.http.base_url}/r")
    await page.wait_for_url("**/r/login")
    await expect(page.locator("#email")).to_be_focused()  # the address field has the focus
    await page.keyboard.type(email)
    await page.keyboard.press("Tab")
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    await page.wait_for_url(re.compile(r".*/r$"))
    return page


async def keyboard_request(page: Page, place: str) -> str:
    """The new-request form filled and sent with the keyboard alone; the request's id."""
    await expect(page.locator("#place")).to_be_focused()  # the form starts where the regulator types
    await page.keyboard.type(place)
    await page.keyboard.press("Tab")  # motive: general, as it is
    await page.keyboard.press("Tab")  # the protocols' criteria (folded)
    await page.keyboard.press("Tab")  # urgency: within 48 h …
    await page.keyboard.press("ArrowRight")  # … within 24 h
    await page.keyboard.press("Tab")
    await page.keyboard.type("67")  # age
    await page.keyboard.press("Tab")
    await page.keyboard.type("f")  # sex: female
    for _ in range(3):  # teleconsultation, the signs (folded), the contact's name
        await page.keyboard.press("Tab")
    await page.keyboard.type("Jeanne Patiente")
    await page.keyboard.press("Tab")
    await page.keyboard.type("06 12 34 56 78")
    await page.keyboard.press("Enter")
    await page.wait_for_url(re.compile(r".*/r/requests/[^/]+$"))
    return page.url.rsplit("/", 1)[1]


async def accept_from_the_mailbox(page: Page, stack: Stack) -> None:
    mailbox = await page.context.new_page()
    await mailbox.goto(f"{stack.http.base_url}/mailbox")
    await shot(mailbox, "trial-mailbox")
    await mailbox.locator("a[href*='/o/']").first.click()
    await mailbox.get_by_role("button", name="Accepter").click()
    await expect(mailbox.locator("body")).to_contain_text("Jeanne Patiente")  # the contact, once accepted
    await mailbox.close()


async def test_a_regulator_follows_a_request_from_the_console_to_the_appointment(
    trial_stack: Stack, browser: Browser
) -> None:
    stack = trial_stack
    await stack.professional("79000000201", "79191", slots=[stack.paris(0, 16, 30)])
    page = await console_page(browser, stack, "reg@sas-79.example.org", "sas-79")
    other = await console_page(browser, stack, "reg@sas-86.example.org", "sas-86")
    await shot(page, "console-form")

    request_id = await keyboard_request(page, "Niort")
    status = page.locator("#live [data-status]").first
    await expect(status).to_have_attribute("data-status", "offered", timeout=LIVE_MS)  # no reload
    await expect(status).to_contain_text("Dr 79000000201")  # who is asked
    await expect(page.locator("#live")).to_contain_text("60–69 ans")
    await expect(page.locator("#live")).to_contain_text("sous 24 heures")
    await shot(page, "console-offered")

    await accept_from_the_mailbox(page, stack)
    await expect(status).to_have_attribute("data-status", "confirmed", timeout=LIVE_MS)
    summary = page.locator("#summary")
    await expect(summary).to_contain_text("Vous avez rendez-vous avec Dr 79000000201")
    await expect(summary).to_contain_text("16:30")
    await shot(page, "console-confirmed")

    await page.goto(f"{stack.http.base_url}/r")
    await expect(page.locator(f'[data-request="{request_id}"]')).to_contain_text("Rendez-vous")
    await shot(page, "console-list")
    await other.goto(f"{stack.http.base_url}/r")
    assert request_id not in await other.content()
    answer = await other.goto(f"{stack.http.base_url}/r/requests/{request_id}")
    assert answer is not None and answer.status == 404
    await page.context.close()
    await other.context.close()


async def test_a_cancel_from_the_console_withdraws_the_offer(trial_stack: Stack, browser: Browser) -> None:
    stack = trial_stack
    await stack.professional("79000000202", "79174", slots=[stack.paris(0, 17, 0)])
    page = await console_page(browser, stack, "reg2@sas-79.example.org", "sas-79-bis", width=360)
    await keyboard_request(page, "79174")
    status = page.locator("#live [data-status]").first
    await expect(status).to_have_attribute("data-status", "offered", timeout=LIVE_MS)
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # fits a phone
    await page.get_by_role("button", name="Annuler la demande").click()
    await expect(page.locator("[role=status]")).to_contain_text("proposition en cours est retirée")
    await expect(status).to_have_attribute("data-status", "cancelled", timeout=LIVE_MS)
    mailbox = await page.context.new_page()
    await mailbox.goto(f"{stack.http.base_url}/mailbox")
    await expect(mailbox.locator("article").first).to_contain_text("79000000202")
    await expect(mailbox.locator("body")).to_contain_text("retir")  # the GP is told it is withdrawn
    await shot(page, "console-cancelled-phone")
    await page.context.close()
