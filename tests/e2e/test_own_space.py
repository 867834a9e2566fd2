"""A professional's own page, as a GP meets it: from the link in an offer e-mail, in a real
browser on a phone and on a desktop screen; and the link itself (sent on request, revoked).

Screenshots go to test-artifacts/ (not in git).
"""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from email.message import Message

import pytest
from playwright.async_api import Browser, Page

from tests.e2e.conftest import Stack, body_of, link_path
from tests.e2e.test_browser import fits_the_screen, shot

pytestmark = pytest.mark.e2e
OWN_LINK = re.compile(r"https?://[^/\s]+(/p/[A-Za-z0-9_.\-]+)")
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 360, "height": 740}


def own_path(message: Message) -> str:
    found = OWN_LINK.search(body_of(message))
    assert found, "no personal link in the e-mail"
    return found.group(1)


async def open_page(browser: Browser, stack: Stack, path: str, viewport: dict[str, int]) -> Page:
    context = await browser.new_context(viewport=viewport, locale="fr-FR")
    page = await context.new_page()
    await page.goto(f"{stack.http.base_url}{path}")
    return page


async def refuse(stack: Stack, message: Message) -> None:
    refused = await stack.http.post(f"{link_path(message)}/refuse", data={"reason": "full"})
    assert refused.status_code == 200, refused.text


async def test_a_gp_publishes_a_slot_from_the_offer_email_and_the_next_request_is_offered_it(
    stack: Stack, browser: Browser
) -> None:
    email = await stack.professional("60000000001", "56260", slots=[stack.paris(0, 15, 0)])  # Vannes
    first = await stack.submit("56260")
    [offer] = await stack.mail.wait_for(email)
    accepted = await stack.http.post(f"{link_path(offer)}/accept")  # today's slot taken: they publish another
    assert accepted.status_code == 200, accepted.text
    await stack.wait_status(first, "confirmed")

    page = await open_page(browser, stack, own_path(offer), PHONE)
    assert await page.locator("h1").inner_text() == "Mon espace SAS"
    assert "Dr 60000000001" in await page.content()
    await page.select_option("#day", index=1)  # tomorrow
    await page.fill("#at", "10:40")
    await page.select_option("#minutes", "20")
    await page.get_by_role("button", name="Publier ce créneau").click()
    await page.wait_for_load_state()
    assert "Créneau publié" in await page.content()
    assert await page.locator("#slots").get_by_text("10:40–11:00").count() == 1
    assert await fits_the_screen(page)
    await shot(page, "own-space-phone")

    request_id = await stack.submit("56260")
    messages = await stack.mail.wait_for(email, count=2)  # the offer, then a second one
    assert "Créneau : mercredi 2 décembre à 10:40" in body_of(messages[-1])
    status = await stack.wait_status(request_id, "offered")
    assert status["ranking"][0]["rpps"] == "60000000001"

    await page.reload()  # the offer waiting for an answer shows, and the slot is held for it
    assert await page.locator("#pending").count() == 1
    assert await page.locator("#slots").get_by_text("proposé à un patient").count() == 1
    await page.set_viewport_size(DESKTOP)
    await shot(page, "own-space-desktop")
    await page.get_by_role("link", name="English").click()
    await page.wait_for_load_state()
    assert await page.locator("h1").inner_text() == "My SAS space"
    assert await page.get_by_role("button", name="Publish this slot").count() == 1
    await page.set_viewport_size(PHONE)
    await shot(page, "own-space-phone-en")
    await page.goto(f"{stack.http.base_url}/p")  # "send me my link"
    await shot(page, "own-link-ask")
    await page.context.close()


async def test_a_gp_on_pause_is_skipped_until_they_come_back(stack: Stack, browser: Browser) -> None:
    first = await stack.professional("60000000002", "29019", slots=[stack.paris(0, 15, 0)])  # Brest
    second = await stack.professional("60000000003", "29019", slots=[stack.paris(0, 17, 0), stack.paris(0, 17, 30)])
    before = await stack.submit("29019")
    [offer] = await stack.mail.wait_for(first)  # the earlier slot: asked first
    await refuse(stack, offer)
    [other] = await stack.mail.wait_for(second)
    assert (await stack.http.post(f"{link_path(other)}/accept")).status_code == 200
    await stack.wait_status(before, "confirmed")

    page = await open_page(browser, stack, own_path(offer), PHONE)
    until = (stack.clock.now + timedelta(days=3)).date().isoformat()
    await page.fill("#until", until)
    await page.get_by_role("button", name="Mettre en pause").click()
    await page.wait_for_load_state()
    assert "Pause enregistrée" in await page.content()
    assert "En pause" in await page.locator(".card.warn").first.inner_text()
    await shot(page, "own-space-paused")

    request_id = await stack.submit("29019")  # the first GP's 15:00 slot is free, but they are on pause
    await stack.mail.wait_for(second, count=2)
    offered = await stack.wait_status(request_id, "offered")
    assert [r["rpps"] for r in offered["ranking"]] == ["60000000003"]  # the one on pause is not even ranked
    assert len(stack.mail.to(first)) == 1  # nothing more for the one on pause

    await page.get_by_role("button", name="Reprendre dès maintenant").click()
    await page.wait_for_load_state()
    assert "Pause terminée" in await page.content()
    await page.context.close()


async def test_send_me_my_link_then_revoke_it(stack: Stack) -> None:
    email = await stack.professional("60000000004", "35238")  # Rennes
    asked = await stack.http.post("/p", data={"email": email.upper()})
    assert asked.status_code == 200 and "Vérifiez votre messagerie" in asked.text
    unknown = await stack.http.post("/p", data={"email": "nobody@example.org"})
    assert unknown.text.replace("nobody@example.org", "") == asked.text.replace(email.upper(), "")  # nothing told
    [message] = await stack.mail.wait_for(email)
    assert "Votre lien vers votre espace SAS" in message["Subject"]
    path = own_path(message)
    again = await stack.http.post("/p", data={"email": email})  # within five minutes: no second e-mail
    assert again.status_code == 200

    page = await stack.http.get(path)
    assert page.status_code == 200 and "Mon espace SAS" in page.text
    assert (await stack.http.get(path + "x")).status_code == 404  # altered: not valid
    revoked = await stack.http.post(f"{path}/revoke")
    assert "Lien révoqué" in revoked.text
    after = await stack.http.get(path)
    assert after.status_code == 410 and "Lien révoqué" in after.text
    assert len(stack.mail.to(email)) == 1

    stack.clock.advance(minutes=6)  # a new link after the quiet time, which works
    try:
        await stack.http.post("/p", data={"email": email})
        messages = await stack.mail.wait_for(email, count=2)
        assert (await stack.http.get(own_path(messages[-1]))).status_code == 200
    finally:
        stack.clock.advance(minutes=-6)


async def test_settings_from_the_page_reach_the_directory(stack: Stack) -> None:
    email = await stack.professional("60000000005", "22113")  # Lannion
    await stack.http.post("/p", data={"email": email})
    path = own_path((await stack.mail.wait_for(email))[0])

    saved = await stack.http.post(f"{path}/overflow", data={"accepts": "true", "cap": "3"})
    assert saved.status_code == 303 and "done=overflow" in saved.headers["location"]
    saved = await stack.http.post(f"{path}/channels", data={"by_sms": "true", "phone": "06 11 22 33 44"})
    assert saved.status_code == 303
    pro = (await stack.http.get("/v1/professionals/60000000005", headers=stack.admin)).json()
    assert (pro["accepts_overflow"], pro["overflow_daily_cap"]) == (True, 3)
    assert pro["channels"] == [{"type": "sms", "destination": "06 11 22 33 44"}]

    nothing = await stack.http.post(f"{path}/channels", data={"email": email})  # no channel ticked
    assert nothing.status_code == 422 and "Gardez au moins un moyen de vous joindre" in nothing.text
    past = await stack.http.post(
        f"{path}/slots",
        data={"day": stack.clock.now.date().isoformat(), "at": "07:00", "minutes": "20", "site_id": "main"},
    )
    assert past.status_code == 422 and "déjà passé" in past.text
    closed = await stack.http.post(
        f"{path}/slots",
        data={
            "day": (stack.clock.now + timedelta(days=1)).date().isoformat(),
            "at": "23:00",
            "minutes": "20",
            "site_id": "main",
        },
    )
    assert closed.status_code == 422 and "fermé" in closed.text
    english = await stack.http.get(f"{path}?lang=en")
    assert "My SAS space" in english.text


@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("/p/{link}/slots", {"day": "demain", "at": "10:00", "minutes": "20", "site_id": "main"}),
        ("/p/{link}/slots", {"day": "2026-12-02", "at": "25:99", "minutes": "20", "site_id": "main"}),
        ("/p/{link}/slots", {"day": "2026-12-02", "at": "10:00", "minutes": "99999", "site_id": "main"}),
        ("/p/{link}/slots", {"day": "2026-12-02", "at": "10:00", "minutes": "20", "site_id": "../../etc"}),
        ("/p/{link}/slots", {"day": "2026-12-02", "at": "10:00", "minutes": "20", "site_id": "elsewhere"}),
        ("/p/{link}/slots", {"day": "9999-12-31", "at": "10:00", "minutes": "20", "site_id": "main"}),
        ("/p/{link}/slots/not-mine/withdraw", {}),
        ("/p/{link}/slots/" + "x" * 300 + "/withdraw", {}),
        ("/p/{link}/overflow", {"accepts": "true", "cap": "-1"}),
        ("/p/{link}/overflow", {"accepts": "peut-être", "cap": "2"}),
        ("/p/{link}/pause", {"until": "1999-01-01"}),
        ("/p/{link}/pause", {"until": "9999-12-31"}),
        ("/p/{link}/channels", {"by_email": "true", "email": "pas-une-adresse"}),
        ("/p/{link}/channels", {"by_sms": "true", "phone": "06 <script>"}),
        ("/p/{link}/channels", {"by_email": "true", "email": "a@b.fr" + "x" * 5000}),
        ("/p", {"email": "x" * 5000 + "@b.fr"}),
        ("/p", {"email": ""}),
        ("/p/p1.60000000009.1796112000.forged/pause", {"until": "2026-12-02"}),
        ("/p/{link}x/revoke", {}),
    ],
)
async def test_hostile_input_on_the_own_page_gets_a_4xx_and_changes_nothing(
    stack: Stack, path: str, form: dict[str, str]
) -> None:
    email = await stack.professional("60000000009", "35047")  # Bruz
    if not stack.mail.to(email):
        await stack.http.post("/p", data={"email": email})
    link = own_path((await stack.mail.wait_for(email))[0]).removeprefix("/p/")
    before = (await stack.http.get("/v1/professionals/60000000009", headers=stack.admin)).json()
    answer = await stack.http.post(path.replace("{link}", link), data=form)
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:300])
    assert answer.headers["content-type"].startswith("text/html")  # a page that says so, not JSON
    after = (await stack.http.get("/v1/professionals/60000000009", headers=stack.admin)).json()
    assert after == before
    window = {"rpps": "60000000009", "from": "2026-11-30T00:00:00Z", "to": "2027-01-01T00:00:00Z"}
    slots = await stack.http.get("/v1/slots", params=window, headers=stack.admin)
    assert slots.json()["items"] == []  # no slot published by a refused form


async def test_overlapping_slots_published_at_once_from_two_phones_make_one(stack: Stack) -> None:
    email = await stack.professional("60000000008", "35051")  # Cesson-Sévigné
    await stack.http.post("/p", data={"email": email})
    path = own_path((await stack.mail.wait_for(email))[0])
    day = (stack.clock.now + timedelta(days=1)).date().isoformat()
    forms = [{"day": day, "at": f"10:{m:02d}", "minutes": "20", "site_id": "main"} for m in (0, 5, 10, 15, 5, 0)]
    answers = await asyncio.gather(*(stack.http.post(f"{path}/slots", data=form) for form in forms))
    published = [a for a in answers if a.status_code == 303]
    assert len(published) == 1 or {a.headers["location"] for a in published} == {published[0].headers["location"]}
    assert all(a.status_code in (303, 422) for a in answers)
    window = {"rpps": "60000000008", "from": "2026-11-30T00:00:00Z", "to": "2027-01-01T00:00:00Z"}
    slots = (await stack.http.get("/v1/slots", params=window, headers=stack.admin)).json()["items"]
    assert len(slots) == 1  # however the six requests interleaved
