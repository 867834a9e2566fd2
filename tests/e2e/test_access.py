"""Who may do what, tried on the running services with one legitimate key of each kind
(contract v2, "Clients, roles and scopes").

Two SAS (`sas79` for Deux-Sèvres, `sas86` for Vienne), two CPTS each with its directory
client, the national platform, an admin; each route family called with each key. The table
below is the rule; tests/unit/test_route_rules.py makes sure no route is left without one."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import WebhookVerificationError

from tests.e2e.conftest import Stack
from tests.e2e.test_fhir import search_params

pytestmark = pytest.mark.e2e

CPTS_A, CPTS_B = "cpts-acc-79", "cpts-acc-86"
PRO_A, PRO_B, PRO_C = "11100000001", "11100000002", "11100000003"  # C: in CPTS_A, moved by the admin
OK = "2xx"
PERIOD = {"from": "2026-12-01", "to": "2026-12-01"}


@dataclass
class Keys:
    """One header per caller: admin, two regulators, two directory clients, the platform."""

    by_name: dict[str, dict[str, str]]
    ids: dict[str, str]

    def __getitem__(self, name: str) -> dict[str, str]:
        return self.by_name[name]


async def new_client(stack: Stack, **body: Any) -> tuple[str, dict[str, str]]:
    created = await stack.http.post("/v1/api-clients", json=body, headers=stack.admin)
    assert created.status_code == 201, created.text
    found = created.json()
    assert found["key"].startswith("sask_") and len(found["key"]) >= 5 + 32  # ≥ 128 random bits
    assert found["signing_secret"].startswith("whsec_")
    return found["client_id"], {"Authorization": f"Bearer {found['key']}"}


@pytest.fixture(scope="module")
async def keys(stack: Stack) -> Keys:
    headers, ids = {"admin": stack.admin, "none": {}}, {}
    for name, body in {
        "sas79": {"name": "SAS 79", "role": "regulator", "organisation": "sas79", "departments": ["79"]},
        "sas86": {"name": "SAS 86", "role": "regulator", "organisation": "sas86", "departments": ["86"]},
        "dir79": {"name": "CPTS 79 agenda", "role": "directory", "cpts_ids": [CPTS_A]},
        "dir86": {"name": "CPTS 86 agenda", "role": "directory", "cpts_ids": [CPTS_B]},
        "platform": {"name": "Plateforme numérique SAS", "role": "platform"},
    }.items():
        ids[name], headers[name] = await new_client(stack, **body)
    for cpts, commune in ((CPTS_A, "79191"), (CPTS_B, "86194")):
        territory = {"name": cpts, "communes": [commune], "radius_km": 30}
        assert (await stack.http.put(f"/v1/territories/{cpts}", json=territory, headers=stack.admin)).status_code in (
            200,
            201,
        )
    for rpps, cpts, commune in ((PRO_A, CPTS_A, "79191"), (PRO_B, CPTS_B, "86194"), (PRO_C, CPTS_A, "79191")):
        await stack.professional(rpps, commune, cpts_id=cpts, phone="0549000000")
        slot = {
            "rpps": rpps,
            "site_id": "main",
            "start": stack.paris(2, 10).isoformat(),
            "end": (stack.paris(2, 10) + timedelta(minutes=20)).isoformat(),
            "mode": "in_person",
        }
        assert (await stack.http.put(f"/v1/slots/acc-{rpps}", json=slot, headers=stack.admin)).status_code in (200, 201)
    # the operations service learns the territories from the matcher's events
    for _ in range(150):
        figures = await stack.http.get("/v1/indicators", params={"cpts_id": CPTS_B, **PERIOD}, headers=headers["sas86"])
        if figures.status_code == 200:
            break
        await asyncio.sleep(0.1)
    return Keys(headers, ids)


def professional(cpts: str | None, rpps: str = PRO_A) -> dict[str, Any]:
    commune = "79191" if cpts == CPTS_A else "86194"
    return {
        "name": f"Dr {rpps}",
        "profession": "general_practitioner",
        "cpts_id": cpts,
        "sas_participation": "individual",
        "accepts_overflow": False,
        "overflow_daily_cap": 0,
        "email": f"{rpps}@sante.example.org",
        "phone": "0549000000",
        "sites": [{"site_id": "main", "name": f"Cabinet {rpps}", "commune_insee": commune}],
    }


def slot_of(stack: Stack, rpps: str) -> dict[str, Any]:
    start = stack.paris(2, 11)
    return {
        "rpps": rpps,
        "site_id": "main",
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=20)).isoformat(),
        "mode": "in_person",
    }


# (what, method, path, body) → the answer for each caller; a caller not named gets 403.
# `none` (no key) always gets 401.
TABLE: list[tuple[str, str, str, Any, dict[str, int | str]]] = [
    ("motives", "GET", "/v1/motives", None, {c: OK for c in ("admin", "sas79", "sas86", "dir79", "dir86")}),
    ("own territory", "GET", f"/v1/territories/{CPTS_A}", None, {"admin": OK, "dir79": OK, "sas79": OK, "sas86": OK}),
    (
        "write a territory",
        "PUT",
        f"/v1/territories/{CPTS_A}",
        {"name": CPTS_A, "communes": ["79191"]},
        {"admin": OK, "dir79": OK},
    ),
    ("write a card", "PUT", f"/v1/professionals/{PRO_A}", professional(CPTS_A), {"admin": OK, "dir79": OK}),
    ("move a card out of its CPTS", "PUT", f"/v1/professionals/{PRO_C}", professional(CPTS_B, PRO_C), {"admin": OK}),
    ("a card with no CPTS", "PUT", "/v1/professionals/11100000009", professional(None), {"admin": OK}),
    ("read a card", "GET", f"/v1/professionals/{PRO_B}", None, {"admin": OK, "dir86": OK, "sas79": OK, "sas86": OK}),
    (
        "list a CPTS",
        "GET",
        "/v1/professionals",
        {"cpts_id": CPTS_B},
        {"admin": OK, "dir86": OK, "sas79": OK, "sas86": OK},
    ),
    (
        "pause a professional",
        "PUT",
        f"/v1/professionals/{PRO_B}/pause",
        {"until": "2026-12-01"},
        {"admin": OK, "dir86": OK},
    ),
    ("revoke their links", "DELETE", f"/v1/professionals/{PRO_B}/links", None, {"admin": OK, "dir86": OK}),
    ("publish a slot", "PUT", "/v1/slots/acc-new", "slot-of-B", {"admin": OK, "dir86": OK}),
    ("withdraw a slot", "DELETE", f"/v1/slots/acc-{PRO_B}", None, {"admin": OK, "dir86": OK}),
    ("read a slot", "GET", f"/v1/slots/acc-{PRO_A}", None, {"admin": OK, "dir79": OK, "sas79": OK, "sas86": OK}),
    (
        "indicators of 79",
        "GET",
        "/v1/indicators",
        {"cpts_id": CPTS_A, **PERIOD},
        {"admin": OK, "sas79": OK, "dir79": OK},
    ),
    (
        "export of 86",
        "GET",
        "/v1/indicators/export.csv",
        {"cpts_id": CPTS_B, "rows": "requests", **PERIOD},
        {"admin": OK, "sas86": OK, "dir86": OK},
    ),
    (
        "an operations account",
        "PUT",
        "/v1/ops/accounts/x@acc.example.org",
        {"password": "a long enough password", "role": "sas_admin"},
        {"admin": OK},
    ),
    ("list clients", "GET", "/v1/api-clients", None, {"admin": OK}),
    ("create a client", "POST", "/v1/api-clients", {"name": "x", "role": "admin"}, {"admin": OK}),
    ("FHIR search", "GET", "/fhir/Slot", "fhir-search", {"admin": OK, "platform": OK}),
    (
        "FHIR metadata",
        "GET",
        "/fhir/metadata",
        None,
        {c: OK for c in ("admin", "sas79", "sas86", "dir79", "dir86", "platform", "none")},
    ),
]
CALLERS = ("sas79", "sas86", "dir79", "dir86", "platform", "none", "admin")  # the admin's writes last


async def call(stack: Stack, headers: dict[str, str], method: str, path: str, body: Any) -> httpx.Response:
    if body == "slot-of-B":
        body = slot_of(stack, PRO_B)
    if body == "fhir-search":
        body = search_params(stack, PRO_A)
    if method == "GET":
        return await stack.http.get(path, params=body, headers=headers)
    return await stack.http.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize(("what", "method", "path", "body", "expected"), TABLE, ids=[row[0] for row in TABLE])
async def test_each_caller_on_each_route_family(
    stack: Stack, keys: Keys, what: str, method: str, path: str, body: Any, expected: dict[str, int | str]
) -> None:
    seen = {}
    for caller in CALLERS:
        answer = await call(stack, keys[caller], method, path, body)
        want = expected.get(caller, 401 if caller == "none" else 403)
        got: int | str = OK if want == OK and 200 <= answer.status_code < 300 else answer.status_code
        seen[caller] = got
        if got == 403:
            said = answer.json()
            assert said.get("detail") or said["issue"][0]["diagnostics"], "a 403 says what is missing"
    assert seen == {c: expected.get(c, 401 if c == "none" else 403) for c in CALLERS}, what


async def test_a_regulator_never_sees_a_professional_s_e_mail_or_phone(stack: Stack, keys: Keys) -> None:
    for caller in ("sas79", "sas86"):
        card = (await stack.http.get(f"/v1/professionals/{PRO_A}", headers=keys[caller])).json()
        listed = (await stack.http.get("/v1/professionals", params={"cpts_id": CPTS_A}, headers=keys[caller])).json()
        for shown in (card, *listed["items"]):
            assert "email" not in shown and "phone" not in shown and "channels" not in shown
    full = (await stack.http.get(f"/v1/professionals/{PRO_A}", headers=keys["dir79"])).json()
    assert full["email"] == f"{PRO_A}@sante.example.org" and full["phone"] == "0549000000"


async def test_a_directory_client_is_told_which_cpts_it_lacks(stack: Stack, keys: Keys) -> None:
    answer = await stack.http.put(f"/v1/professionals/{PRO_B}", json=professional(CPTS_B, PRO_B), headers=keys["dir79"])
    assert answer.status_code == 403 and CPTS_B in answer.json()["detail"]
    unchanged = (await stack.http.get(f"/v1/professionals/{PRO_B}", headers=stack.admin)).json()
    assert unchanged["cpts_id"] == CPTS_B


async def test_requests_belong_to_the_organisation_that_posted_them(stack: Stack, keys: Keys) -> None:
    body = stack.request_body("79191")
    request_id = body["request_id"]
    assert (await stack.http.post("/v1/requests", json=body, headers=keys["sas79"])).status_code == 202
    # another SAS: as if it did not exist, for reading and cancelling
    assert (await stack.http.get(f"/v1/requests/{request_id}", headers=keys["sas86"])).status_code == 404
    assert (await stack.http.post(f"/v1/requests/{request_id}/cancel", headers=keys["sas86"])).status_code == 404
    # the same id from the other SAS is its own request: accepted, not a conflict, nothing revealed
    theirs = {**stack.request_body("86194"), "request_id": request_id}
    posted = await stack.http.post("/v1/requests", json=theirs, headers=keys["sas86"])
    assert posted.status_code == 202 and posted.json()["request_id"] == request_id
    cancelled = await stack.http.post(f"/v1/requests/{request_id}/cancel", headers=keys["sas86"])
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    mine = (await stack.http.get(f"/v1/requests/{request_id}", headers=keys["sas79"])).json()
    assert mine["request_id"] == request_id and mine["status"] != "cancelled"
    # the same body again from the owner: the same answer (idempotent), still its own
    again = await stack.http.post("/v1/requests", json=body, headers=keys["sas79"])
    assert again.status_code == 202
    # a directory client or the platform posts no request
    assert (await stack.http.post("/v1/requests", json=body, headers=keys["dir79"])).status_code == 403
    assert (await stack.http.post("/v1/requests", json=body, headers=keys["platform"])).status_code == 403


async def test_a_revoked_key_is_refused_at_once_and_clients_show_their_last_use(stack: Stack, keys: Keys) -> None:
    client_id, key = await new_client(stack, name="SAS short-lived", role="regulator")
    assert (await stack.http.get("/v1/motives", headers=key)).status_code == 200
    listed = (await stack.http.get("/v1/api-clients", headers=stack.admin)).json()["items"]
    mine = next(c for c in listed if c["client_id"] == client_id)
    assert mine["last_used_at"] and "key" not in mine and "signing_secret" not in mine
    assert mine["organisation"] == "SAS short-lived"  # defaults to its name
    revoked = await stack.http.delete(f"/v1/api-clients/{client_id}", headers=stack.admin)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    refused = await stack.http.get("/v1/motives", headers=key)
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    assert (await stack.http.delete("/v1/api-clients/nobody", headers=stack.admin)).status_code == 404


async def test_a_client_is_created_with_a_scope_that_fits_its_role(stack: Stack) -> None:
    for body, field in (
        ({"name": "x", "role": "directory"}, "cpts_ids"),
        ({"name": "x", "role": "platform", "departments": ["79"]}, "departments"),
        ({"name": "x", "role": "regulator", "departments": ["7"]}, "departments"),
        ({"name": "x", "role": "root"}, "role"),
    ):
        answer = await stack.http.post("/v1/api-clients", json=body, headers=stack.admin)
        assert answer.status_code == 422, (body, answer.text)
        assert field in answer.text


async def test_callbacks_are_signed_with_the_client_s_own_secret_and_both_during_a_rotation(stack: Stack) -> None:
    created = await stack.http.post(
        "/v1/api-clients", json={"name": "SAS signed", "role": "regulator"}, headers=stack.admin
    )
    client = created.json()
    key = {"Authorization": f"Bearer {client['key']}"}
    await stack.professional("11100000021", "79191", slots=[stack.paris(1, 10)])
    first = stack.request_body("79191", callback_url=stack.receiver.url("signed-1"))
    assert (await stack.http.post("/v1/requests", json=first, headers=key)).status_code == 202
    pushed = await stack.receiver.wait_for("signed-1", secret=client["signing_secret"])
    assert pushed[0]["request_id"] == first["request_id"]
    with pytest.raises(WebhookVerificationError):  # not the environment's shared secret
        stack.receiver.bodies("signed-1")
    rotated = await stack.http.post(f"/v1/api-clients/{client['client_id']}/signing-secret", headers=stack.admin)
    new_secret = rotated.json()["signing_secret"]
    assert new_secret != client["signing_secret"]
    second = stack.request_body("79191", callback_url=stack.receiver.url("signed-2"))
    assert (await stack.http.post("/v1/requests", json=second, headers=key)).status_code == 202
    # during the overlap, a receiver on either secret verifies the push
    await stack.receiver.wait_for("signed-2", secret=new_secret)
    assert stack.receiver.bodies("signed-2", secret=client["signing_secret"])


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:5432/x",  # loopback is allowed in these tests' OUTBOUND_ALLOWED_NETWORKS, but …
        "https://10.0.0.1/callback",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fd00::1]/callback",
        "http://193.51.24.1/callback",  # public, but http
    ],
)
async def test_a_callback_url_the_service_must_not_reach_is_refused(stack: Stack, url: str) -> None:
    body = stack.request_body("79191", callback_url=url)
    answer = await stack.http.post("/v1/requests", json=body, headers=stack.auth)
    if url.startswith("http://127."):
        assert answer.status_code == 202  # … inside OUTBOUND_ALLOWED_NETWORKS (127.0.0.0/8 here)
        return
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == "callback_url"
    assert (await stack.http.get(f"/v1/requests/{body['request_id']}", headers=stack.auth)).status_code == 404


async def test_a_booking_software_webhook_the_service_must_not_reach_is_refused(stack: Stack) -> None:
    card = professional(CPTS_A, "11100000031") | {"channels": [{"type": "webhook", "url": "https://10.1.1.1/hook"}]}
    answer = await stack.http.put("/v1/professionals/11100000031", json=card, headers=stack.admin)
    assert answer.status_code == 422 and "not a public address" in answer.text


async def test_a_regulator_is_refused_a_directory_write_before_its_body_is_read(stack: Stack, keys: Keys) -> None:
    for method, path in (("PUT", f"/v1/professionals/{PRO_A}"), ("PUT", "/v1/slots/x"), ("DELETE", "/v1/slots/x")):
        answer = await stack.http.request(method, path, json={}, headers=keys["sas79"])
        assert answer.status_code == 403, (method, path, answer.text)


@contextlib.contextmanager
def lowered(stack: Stack, **limits: str) -> Iterator[None]:
    """Lower rate limits for one test (the stack's settings object is the running app's)."""
    settings = stack.runtime.settings
    before = {name: getattr(settings, name) for name in limits}
    for name, value in limits.items():
        setattr(settings, name, value)
    try:
        yield
    finally:
        for name, value in before.items():
            setattr(settings, name, value)


async def test_an_api_client_over_its_rate_limit_gets_429_with_retry_after(stack: Stack, keys: Keys) -> None:
    _, key = await new_client(stack, name="SAS in a hurry", role="regulator")
    with lowered(stack, api_rate_limit="5/minute"):
        answers = [(await stack.http.get("/v1/motives", headers=key)) for _ in range(7)]
        others = await stack.http.get("/v1/motives", headers=keys["sas79"])  # counted apart
    assert [a.status_code for a in answers] == [200] * 5 + [429] * 2
    refused = answers[-1]
    assert refused.headers["content-type"] == "application/problem+json"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert others.status_code == 200


async def test_logins_links_and_pages_are_limited_per_client_address(stack: Stack) -> None:
    await stack.runtime.limits.storage.reset()
    with lowered(stack, login_rate_limit="3/minute", link_request_rate_limit="2/hour", page_rate_limit="4/minute"):
        logins = [
            (await stack.http.post("/ops/login", data={"email": "x@y.fr", "password": "p", "csrf": "c"})).status_code
            for _ in range(4)
        ]
        links = [(await stack.http.post("/p", data={"email": f"n{i}@sante.example.org"})).status_code for i in range(3)]
        await stack.runtime.limits.storage.reset()  # "send me my link" is a page too: counted afresh
        pages = [(await stack.http.get("/o/not-a-real-token")).status_code for _ in range(5)]
    assert logins[-1] == 429 and 429 not in logins[:3]
    assert links[-1] == 429 and 429 not in links[:2]
    assert pages[-1] == 429 and 429 not in pages[:4]


async def test_answers_carry_the_security_headers(stack: Stack) -> None:
    page = await stack.http.get("/ops/login")
    policy = page.headers["content-security-policy"]
    assert (
        "frame-ancestors 'none'" in policy
        and "default-src 'self'" in policy
        and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    )
    api = await stack.http.get("/v1/motives", headers=stack.auth)
    assert api.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    for answer in (page, api, await stack.http.get("/docs")):
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert answer.headers["x-frame-options"] == "DENY"
    assert "strict-transport-security" not in page.headers  # http here; HSTS behind https (PUBLIC_BASE_URL)
