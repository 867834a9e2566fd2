"""Accessibility measured: axe-core (axe-playwright-python) on every page the service draws, in
French and English, at 1280 px and 360 px, in a real browser (Debian's Chromium): no violation
of impact serious or critical. The stack runs as `make run`'s trial (the mailbox is a page)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page

from tests.e2e.conftest import Stack
from tests.e2e.test_browser import shot

pytestmark = pytest.mark.e2e
PASSWORD = "un mot de passe assez long"
WIDTHS = (1280, 360)
SERIOUS = ("serious", "critical")


async def log_in(page: Page, base: str, path: str, email: str) -> None:
    await page.goto(f"{base}{path}")
    await page.fill("#email", email)
    await page.fill("#password", PASSWORD)
    await page.keyboard.press("Enter")
    await page.wait_for_url(lambda url: urlsplit(url).path != path)  # signed in, sent on


async def every_page(stack: Stack) -> dict[str, str]:
    """A request confirmed (its offer page and e-mails on the mailbox), accounts to see the rest:
    the path of each page the service draws, by name."""
    await stack.http.put(
        "/v1/territories/cpts-axe",
        json={"name": "CPTS Axe", "communes": ["79191"], "radius_km": 30},
        headers=stack.admin,
    )
    gp = await stack.professional("79000000301", "79191", slots=[stack.paris(0, 15, 0)], cpts_id="cpts-axe")
    confirmed = await stack.submit("79191")
    await stack.wait_status(confirmed, "offered")
    mailbox = (await stack.http.get("/mailbox")).text
    offer = re.search(r'href="http://[^"]+(/o/[^"]+)"', mailbox)
    space = re.search(r'href="http://[^"]+(/p/[^"]+)"', mailbox)
    assert offer and space, "the offer's e-mail is on the trial mailbox"
    await stack.accounts().put("axe-reg@sas.example.org", PASSWORD, "regulator", organisation="sas-axe")
    await stack.accounts().put("axe-admin@sas.example.org", PASSWORD, "sas_admin")
    assert gp
    return {
        "front door": "/",
        "trial mailbox": "/mailbox",
        "offer": offer.group(1),
        "professional's space": space.group(1),
        "professional's sign-in": "/p",
        "console login": "/r/login",
        "operations login": "/ops/login",
        "console": "/r",
        "operations dashboard": "/ops?cpts_id=cpts-axe",
        "directory": "/ops/directory?cpts_id=cpts-axe",
        "directory's professional": "/ops/directory/79000000301?cpts_id=cpts-axe",
        "accounts": "/ops/accounts",
        "audit": "/ops/audit",
    }


def serious(results: dict) -> list[str]:  # type: ignore[type-arg]
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in results["violations"]
        if v["impact"] in SERIOUS
    ]


async def test_no_page_has_a_serious_accessibility_violation(trial_stack: Stack, browser: Browser) -> None:
    stack, axe = trial_stack, Axe()
    base = str(stack.http.base_url)
    pages = await every_page(stack)
    found: list[str] = []
    for width in WIDTHS:
        for lang in ("fr", "en"):
            context = await browser.new_context(viewport={"width": width, "height": 900}, locale=f"{lang}-FR")
            page = await context.new_page()
            await log_in(page, base, "/r/login", "axe-reg@sas.example.org")
            posted = await console_request(page, base)
            await log_in(page, base, "/ops/login", "axe-admin@sas.example.org")
            for name, path in {**pages, "console request": posted}.items():
                joiner = "&" if "?" in path else "?"
                await page.goto(f"{base}{path}{joiner}lang={lang}")
                assert urlsplit(page.url).path == urlsplit(f"{base}{path}").path, (name, page.url)  # not sent away
                assert await page.get_attribute("html", "lang") == lang, name  # drawn in that language
                problems = serious((await axe.run(page)).response)
                if problems:
                    await shot(page, f"axe-{name.replace(' ', '-').replace(chr(39), '')}-{lang}-{width}")
                found += [f"{name} [{lang}, {width} px]: {p}" for p in problems]
            await context.close()
    assert not found, "\n".join(found)


async def console_request(page: Page, base: str) -> str:
    """A request posted from the console: the path of its page."""
    await page.goto(f"{base}/r")
    await page.fill("#place", "Niort")
    await page.get_by_role("button", name=re.compile("Envoyer la demande|Send the request")).click()
    await page.wait_for_url(re.compile(r".*/r/requests/[^/]+$"))
    return urlsplit(page.url).path
