"""The professionals' side: channels, retries and fallback, reminders, the page, callbacks, the own doctor."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from schemas.topics import Topics
from tests.e2e.conftest import SECRET, Stack, body_of, link_path
from tests.integration.helpers import publish_raw, read_topic

pytestmark = pytest.mark.e2e


async def attempts(stack: Stack) -> list[tuple[str, bool]]:
    notifier = next(p for p in stack.runtime.parts if p.name == "notifier")
    async with notifier.db.engine.connect() as conn:
        rows = await conn.execute(text("SELECT channel, ok FROM delivery_attempt ORDER BY id"))
        return [(r.channel, r.ok) for r in rows]


async def test_an_offer_goes_by_email_and_sms_without_patient_identity(stack: Stack) -> None:
    email = await stack.professional(
        "60000000001",
        "64445",
        phone="06 11 22 33 44",  # Pau
        slots=[stack.paris(0, 15, 0)],
    )
    await stack.submit("64445")
    [message] = await stack.mail.wait_for(email)
    [sms] = await stack.receiver.wait_for("sms")
    assert sms["to"] == "06 11 22 33 44"
    assert link_path(message) in sms["text"]  # one link, both channels
    for content in (body_of(message), sms["text"]):
        assert "Jeanne" not in content and "06 12 34 56 78" not in content


async def test_a_booking_software_gets_a_webhook_signed_with_its_own_secret_and_a_rotation(stack: Stack) -> None:
    url = stack.receiver.url("booking/60000000002")
    card = {
        "name": "Dr 60000000002",
        "profession": "general_practitioner",
        "cpts_id": None,
        "sas_participation": "individual",
        "email": "60000000002@sante.example.org",
        "channels": [{"type": "webhook", "url": url}],
        "sites": [{"site_id": "main", "name": "Cabinet", "commune_insee": "17300"}],  # La Rochelle
    }
    put = await stack.http.put("/v1/professionals/60000000002", json=card, headers=stack.admin)
    [webhook] = put.json()["channels"]
    secret = webhook["signing_secret"]  # shown this once
    assert secret.startswith("whsec_") and secret != SECRET
    assert "signing_secret" not in str(
        (await stack.http.get("/v1/professionals/60000000002", headers=stack.admin)).json()
    )
    again = await stack.http.put("/v1/professionals/60000000002", json=card, headers=stack.admin)
    assert "signing_secret" not in str(again.json())  # the same webhook: the same secret, not shown again
    slot = {"rpps": "60000000002", "site_id": "main", "mode": "in_person"}
    for n, hour in ((0, 15), (1, 16)):
        start = stack.paris(0, hour, 0)
        times = {"start": start.isoformat(), "end": (start + timedelta(minutes=20)).isoformat()}
        assert (await stack.http.put(f"/v1/slots/wh-{n}", json=slot | times, headers=stack.admin)).status_code == 201
    request_id = await stack.submit("17300")
    [call] = await stack.receiver.wait_for("booking/60000000002", secret=secret)  # verified as the receiver does
    assert call["event"] == "offer" and call["request_id"] == request_id
    assert call["kind"] == "slot"
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/o/[A-Za-z0-9_-]{40,}", call["link"])
    assert (await stack.http.get(urlsplit(call["link"]).path)).status_code == 200  # the link works
    assert "Jeanne" not in str(call)
    with pytest.raises(WebhookVerificationError):  # not the deployment's WEBHOOK_SECRET itself
        stack.receiver.bodies("booking/60000000002")
    # a rotation: the new secret shown once; both sign for a day
    rotated = await stack.http.post("/v1/professionals/60000000002/webhook-secret", headers=stack.admin)
    [fresh] = rotated.json()["webhooks"]
    assert fresh["url"] == url and fresh["signing_secret"] not in (secret, SECRET)
    await stack.http.post(f"{urlsplit(call['link']).path}/refuse", data={"reason": "unavailable"})
    await stack.submit("17300")  # a new request: offered to them again (the other slot)
    for _ in range(200):  # the next push to this receiver (the withdrawal, or the next offer)
        pushes = [(h, b) for path, h, b in stack.receiver.received if path == "booking/60000000002"]
        if len(pushes) >= 2:
            break
        await asyncio.sleep(0.05)
    headers, body = pushes[1]
    assert Webhook(fresh["signing_secret"]).verify(body, headers)["event"] in ("offer", "withdrawn")
    assert Webhook(secret).verify(body, headers)  # a receiver still on the old secret verifies it too
    nowebhook = await stack.http.post("/v1/professionals/60000000001/webhook-secret", headers=stack.admin)
    assert nowebhook.status_code in (404, 409)


async def test_a_failing_channel_is_retried_then_the_next_one_is_used(stack: Stack) -> None:
    stack.receiver.failures["booking/60000000003"] = 100  # down for good
    email = await stack.professional(
        "60000000003",
        "56260",
        slots=[stack.paris(0, 15, 0)],  # Vannes
        channels=[{"type": "webhook", "url": stack.receiver.url("booking/60000000003")}, {"type": "email"}],
    )
    await stack.submit("56260")
    for _ in range(12):  # the retries wait 2, 4, 8 s on the services' clock: move it on
        await asyncio.sleep(0.3)
        stack.clock.advance(seconds=20)
        if stack.mail.to(email):
            break
    await stack.mail.wait_for(email)
    tried = [a for a in await attempts(stack) if a[0] == "webhook" and not a[1]]
    assert len(tried) >= 4  # every attempt is recorded
    stack.receiver.failures.pop("booking/60000000003")


async def test_a_redelivered_offer_event_sends_nothing_twice(stack: Stack) -> None:
    email = await stack.professional("60000000004", "86066", slots=[stack.paris(0, 15, 0)])  # Châtellerault
    request_id = await stack.submit("86066")
    await stack.mail.wait_for(email)
    topics = Topics(stack.runtime.topics.prefix)
    proposed = await read_topic(
        stack.runtime.bootstrap_servers,
        topics.matching,
        expected=1,
        wanted=lambda r: r.key == request_id.encode() and b"offer.proposed" in (r.value or b""),
    )
    await publish_raw(stack.runtime.bootstrap_servers, topics.matching, [(request_id, proposed[0].value or b"")])
    await asyncio.sleep(1.0)
    assert len(stack.mail.to(email)) == 1


async def test_a_reminder_comes_before_the_offer_lapses(stack: Stack) -> None:
    email = await stack.professional("60000000005", "16015", slots=[stack.paris(1, 15, 0)])  # Angoulême
    await stack.submit("16015")
    [offer] = await stack.mail.wait_for(email)
    stack.clock.advance(minutes=11)  # 4 minutes left of 15
    [_, reminder] = await stack.mail.wait_for(email, count=2)
    assert "Rappel" in str(reminder["Subject"]) and link_path(reminder) == link_path(offer)
    stack.clock.advance(minutes=-11)


async def test_an_extra_patient_at_the_time_the_professional_picks(stack: Stack) -> None:
    email = await stack.professional("60000000006", "87085", overflow_cap=2)  # Limoges
    request_id = await stack.submit("87085")
    [message] = await stack.mail.wait_for(email)
    page = await stack.http.get(link_path(message))
    times = re.findall(r'<option value="([^"]+)"', page.text)
    assert len(times) > 4 and "Heure du rendez-vous" in page.text
    chosen = times[3]  # 45 minutes after the earliest
    await stack.http.post(f"{link_path(message)}/accept", data={"start": chosen})
    confirmed = await stack.wait_status(request_id, "confirmed")
    assert datetime.fromisoformat(confirmed["appointment"]["start"]) == datetime.fromisoformat(chosen)


async def test_a_time_outside_the_window_is_refused_and_changes_nothing(stack: Stack) -> None:
    email = await stack.professional("60000000007", "72181", overflow_cap=2)  # Le Mans
    request_id = await stack.submit("72181")
    [message] = await stack.mail.wait_for(email)
    refused = await stack.http.post(f"{link_path(message)}/accept", data={"start": "2030-01-01T10:00:00+01:00"})
    assert refused.status_code == 422
    assert (await stack.status(request_id))["status"] == "offered"


async def test_the_page_in_english_with_the_time_left(stack: Stack) -> None:
    email = await stack.professional("60000000008", "49007", slots=[stack.paris(0, 15, 0)])  # Angers
    await stack.submit("49007")
    [message] = await stack.mail.wait_for(email)
    english = await stack.http.get(f"{link_path(message)}?lang=en")
    assert "A patient needs an appointment" in english.text and "Accept" in english.text
    assert re.search(r"1[45] min left to answer", english.text)
    browser_english = await stack.http.get(link_path(message), headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert "Refuse" in browser_english.text
    assert "Il vous reste" in (await stack.http.get(link_path(message))).text


async def test_the_regulator_is_called_back_in_order_even_after_failures(stack: Stack) -> None:
    email = await stack.professional("60000000009", "45234", slots=[stack.paris(0, 15, 0)])  # Orléans
    stack.receiver.failures["regulator"] = 2
    body = stack.request_body("45234", callback_url=stack.receiver.url("regulator"), correlation_id="corr-42")
    assert (await stack.http.post("/v1/requests", json=body, headers=stack.auth)).status_code == 202
    [offer] = await stack.mail.wait_for(email)
    await stack.http.post(f"{link_path(offer)}/accept")
    for _ in range(20):
        await asyncio.sleep(0.2)
        stack.clock.advance(seconds=10)  # past the retry delays
        if any(c["status"] == "confirmed" for c in stack.receiver.bodies("regulator")):
            break
    calls = stack.receiver.bodies("regulator")
    assert [c["status"] for c in calls] == ["searching", "offered", "confirmed"]
    assert {c["correlation_id"] for c in calls} == {"corr-42"}
    assert len({c["event_id"] for c in calls}) == 3
    assert calls[-1]["appointment"]["professional"]["rpps"] == "60000000009"
    headers = [h for path, h, _ in stack.receiver.received if path == "regulator"]
    assert headers[0]["x-request-id"] == body["request_id"] and headers[0]["x-correlation-id"] == "corr-42"


async def test_the_patients_own_doctor_is_told_after_the_appointment(stack: Stack) -> None:
    own = await stack.professional("60000000010", "24322")  # Périgueux: the treating doctor, no slot
    seen_by = await stack.professional("60000000011", "24322", slots=[stack.paris(0, 15, 0)])
    body = stack.request_body("24322")
    body["patient"]["treating_rpps"] = "60000000010"
    assert (await stack.http.post("/v1/requests", json=body, headers=stack.auth)).status_code == 202
    [offer] = await stack.mail.wait_for(seen_by)
    await stack.http.post(f"{link_path(offer)}/accept")
    [told] = await stack.mail.wait_for(own)
    assert "orienté" in str(told["Subject"])
    assert "Dr 60000000011" in body_of(told) and "Jeanne" not in body_of(told)
