"""The regulators' console over HTTP, on the running services: a regulator posts a request from
the form, follows it to the appointment, reads it like the organisation's API key does; another
organisation's regulator sees none of it; cancel and erase go through the API's own functions,
audited as the account; forms without the session's token change nothing."""

from __future__ import annotations

import re

import httpx
import pytest

from services.common.access.registry import EnvironmentKey
from services.common.access.roles import Role
from tests.e2e.conftest import API_KEY, Stack, link_path

pytestmark = pytest.mark.e2e
PASSWORD = "un mot de passe de régulateur"


def organisation_of_the_test_key() -> str:
    """The stack's regulator key is a bare key: an organisation of its own, named by its client id."""
    return EnvironmentKey(API_KEY, Role.REGULATOR, None).client_id


async def regulator(stack: Stack, email: str, organisation: str) -> tuple[httpx.AsyncClient, str]:
    """A browser-like client logged in to the console, and its session's CSRF token."""
    await stack.accounts().put(email, PASSWORD, "regulator", organisation=organisation)
    client = httpx.AsyncClient(base_url=str(stack.http.base_url), timeout=10, limits=httpx.Limits(keepalive_expiry=2))
    form = await client.get("/r/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert form.status_code == 200 and csrf
    logged = await client.post("/r/login", data={"email": email, "password": PASSWORD, "csrf": csrf.group(1)})
    assert logged.status_code == 303 and logged.headers["location"] == "/r", logged.text
    cookie = logged.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    home = await client.get("/r")
    token = re.search(r'name="csrf" value="([^"]+)"', home.text)
    assert home.status_code == 200 and token
    return client, token.group(1)


def posted_id(answer: httpx.Response) -> str:
    assert answer.status_code == 303, answer.text
    return str(answer.headers["location"]).removeprefix("/r/requests/")


async def test_a_regulator_sends_and_follows_a_request_to_the_appointment(stack: Stack) -> None:
    gp = await stack.professional("79000000101", "79191", slots=[stack.paris(0, 14, 30)])
    mine, csrf = await regulator(stack, "reg@sas79.example.org", organisation_of_the_test_key())
    other, other_csrf = await regulator(stack, "reg@sas86.example.org", "sas-86")
    try:
        form = {"csrf": csrf, "place": "79000", "motive": "general", "urgency": "48h", "age": "67"}
        ambiguous = await mine.post("/r/requests", data=form)  # Niort, Bessines, Sciecq share 79000
        assert ambiguous.status_code == 422 and 'value="79191"' in ambiguous.text
        form |= {"commune": "79191", "contact_name": "Jeanne Patiente", "contact_phone": "06 12 34 56 78"}
        request_id = posted_id(await mine.post("/r/requests", data=form))

        status = await stack.wait_status(request_id, "offered")  # the organisation's key reads it too
        assert status["motive"] == "general"
        page = await mine.get(f"/r/requests/{request_id}")
        assert page.status_code == 200 and "Dr 79000000101" in page.text  # who is asked
        listed = await mine.get("/r/list")
        assert f'data-request="{request_id}"' in listed.text and "Niort" in listed.text
        assert "Jeanne" not in listed.text  # no patient identity in the console's list

        [offer] = await stack.mail.wait_for(gp)
        assert (await stack.http.post(f"{link_path(offer)}/accept")).status_code == 200
        await stack.wait_status(request_id, "confirmed")
        page = await mine.get(f"/r/requests/{request_id}")
        assert 'data-status="confirmed"' in page.text and "Cabinet 79000000101" in page.text
        assert "Vous avez rendez-vous avec Dr 79000000101" in page.text and "14:30" in page.text

        # another organisation: not in its list, its page answers as if there were no such request
        assert request_id not in (await other.get("/r/list")).text
        assert (await other.get(f"/r/requests/{request_id}")).status_code == 404
        refused = await other.post(f"/r/requests/{request_id}/erase", data={"csrf": other_csrf, "confirm": "on"})
        assert refused.status_code == 404

        audit = await stack.http.get("/v1/audit", params={"request_id": request_id}, headers=stack.auth)
        actors = {(e["actor"]["kind"], e["actor"]["id"], e["action"]) for e in audit.json()["items"]}
        assert ("account", "reg@sas79.example.org", "request.posted") in actors
        assert ("account", "reg@sas79.example.org", "request.read") in actors
    finally:
        await mine.aclose()
        await other.aclose()


async def test_a_cancel_from_the_console_withdraws_the_offer_and_erase_reaches_the_request(stack: Stack) -> None:
    gp = await stack.professional("79000000102", "79174", slots=[stack.paris(0, 15, 30)])
    mine, csrf = await regulator(stack, "reg2@sas79.example.org", organisation_of_the_test_key())
    try:
        form = {"csrf": csrf, "place": "79174", "motive": "general", "urgency": "24h"}
        request_id = posted_id(await mine.post("/r/requests", data=form))
        await stack.wait_status(request_id, "offered")
        await stack.mail.wait_for(gp)

        forged = await mine.post(f"/r/requests/{request_id}/cancel", data={"csrf": "not-the-token"})
        assert forged.status_code == 403
        assert (await stack.status(request_id))["status"] == "offered"  # nothing changed

        cancelled = await mine.post(f"/r/requests/{request_id}/cancel", data={"csrf": csrf})
        assert cancelled.status_code == 303 and cancelled.headers["location"].endswith("done=cancelled")
        await stack.wait_status(request_id, "cancelled")
        [_, withdrawn] = await stack.mail.wait_for(gp, count=2)  # the GP is told the offer is withdrawn
        assert withdrawn["Subject"]

        unconfirmed = await mine.post(f"/r/requests/{request_id}/erase", data={"csrf": csrf})
        assert unconfirmed.status_code == 422 and "patient_erased_at" not in await stack.status(request_id)
        erased = await mine.post(f"/r/requests/{request_id}/erase", data={"csrf": csrf, "confirm": "on"})
        assert erased.status_code == 303
        assert "patient_erased_at" in await stack.status(request_id)
    finally:
        await mine.aclose()


async def test_the_console_lets_in_regulators_only_and_refuses_bad_forms(stack: Stack) -> None:
    await stack.accounts().put("coord@cpts.example.org", PASSWORD, "coordinator", "cpts-x")
    client = httpx.AsyncClient(base_url=str(stack.http.base_url), timeout=10)
    try:
        assert (await client.get("/r")).headers["location"] == "/r/login"
        assert (await client.get("/r/list")).status_code == 401
        form = await client.get("/r/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf
        wrong_door = await client.post(
            "/r/login", data={"email": "coord@cpts.example.org", "password": PASSWORD, "csrf": csrf.group(1)}
        )
        assert wrong_door.status_code == 403 and "/ops" in wrong_door.text
        assert "sas_console=" not in str(wrong_door.headers.get("set-cookie", ""))  # no session
        no_cookie = await httpx.AsyncClient(base_url=str(stack.http.base_url)).post(
            "/r/login", data={"email": "x@y.fr", "password": "p", "csrf": "forged"}
        )
        assert no_cookie.status_code == 403
    finally:
        await client.aclose()
    mine, csrf_token = await regulator(stack, "reg3@sas79.example.org", "sas-79")
    try:
        nowhere = await mine.post("/r/requests", data={"csrf": csrf_token, "place": "Zzyzx-sur-Mer"})
        assert nowhere.status_code == 422 and "introuvable" in nowhere.text
        bad_age = await mine.post("/r/requests", data={"csrf": csrf_token, "place": "Niort", "age": "soixante"})
        assert bad_age.status_code == 422 and 'aria-invalid="true"' in bad_age.text
        unknown_motive = await mine.post(
            "/r/requests", data={"csrf": csrf_token, "place": "Niort", "motive": "<script>"}
        )
        assert unknown_motive.status_code == 422 and "unknown motive &#39;&lt;script&gt;&#39;" in unknown_motive.text
        too_long = await mine.post("/r/requests", data={"csrf": csrf_token, "place": "N" * 5000})
        assert too_long.status_code == 422 and too_long.headers["content-type"].startswith("text/html")
        assert (await mine.get("/r/requests/..%2F..%2Fetc")).status_code in (404, 422)
        english = await mine.get("/r", params={"lang": "en"})
        assert "New request" in english.text and 'lang="en"' in english.text
    finally:
        await mine.aclose()
