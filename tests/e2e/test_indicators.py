"""Indicators from the read model the topics feed; rebuilding it from the topics changes nothing."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import time
from datetime import datetime
from typing import Any

import httpx
import pytest

from services.ops import read_model
from tests.e2e.conftest import Stack, link_path, operator_client

pytestmark = pytest.mark.e2e
PERIOD = {"cpts_id": "cpts-e2e", "from": "2026-12-01", "to": "2026-12-01"}


async def figures(stack: Stack, until: dict[str, Any] | None = None, timeout: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = await stack.http.get("/v1/indicators", params=PERIOD, headers=stack.auth)
        assert response.status_code == 200, response.text
        found = dict(response.json())
        if until is None or all(found.get(k) == v for k, v in until.items()) or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.1)


async def test_indicators_follow_what_happened_and_survive_a_rebuild(stack: Stack) -> None:
    territory = {"name": "CPTS e2e", "communes": ["54395", "54547"], "radius_km": 30}  # Nancy, Vandœuvre
    assert (await stack.http.put("/v1/territories/cpts-e2e", json=territory, headers=stack.admin)).status_code == 201
    a = await stack.professional("40000000001", "54395", slots=[stack.paris(0, 14, 0)], cpts_id="cpts-e2e")
    b = await stack.professional(
        "40000000002", "54547", slots=[stack.paris(0, 15, 0)], cpts_id="cpts-e2e", sas_participation="via_cpts"
    )
    await stack.professional("40000000003", "54395", cpts_id="cpts-e2e", sas_participation="none")

    first = await stack.submit("54395")  # A accepts
    [offer_a] = await stack.mail.wait_for(a)
    await stack.http.post(f"{link_path(offer_a)}/accept")
    await stack.wait_status(first, "confirmed")

    second = await stack.submit("54395")  # B refuses ("full"): nobody else is free → unresolved
    [offer_b] = await stack.mail.wait_for(b)
    await stack.http.post(f"{link_path(offer_b)}/refuse", data={"reason": "full"})
    await stack.wait_status(second, "unresolved")

    third = await stack.submit("54395")  # cancelled by the regulator while B's slot is offered again
    await stack.wait_status(third, "offered")
    await stack.http.post(f"/v1/requests/{third}/cancel", headers=stack.auth)

    everything = {  # the read model has seen every event, the offer withdrawn by the cancellation too
        "sas_requests_with_appointment": 1,
        "requests_cancelled": 1,
        "offers": {"accepted": 1, "refused": {"full": 1}, "expired": 0, "withdrawn": 1},
    }
    live = await figures(stack, until=everything)
    assert live["definition_version"]
    assert live["doctors_participating_in_sas"] == 2  # A (individual) and B (via the CPTS); C declared none
    assert live["sas_requests_with_appointment"] == 1
    assert live["requests_received"] == 3
    assert live["requests_unresolved"] == {"all_declined": 1}
    assert live["requests_cancelled"] == 1
    assert live["offers"]["accepted"] == 1 and live["offers"]["refused"] == {"full": 1}
    assert live["slot_utilisation"]["booked"] == 1 and live["slot_utilisation"]["published"] == 2
    assert live["minutes_to_appointment"]["median"] == 0.0  # the services' clock stood still

    ops = next(p for p in stack.runtime.parts if p.name == "ops")
    replayed = await read_model.rebuild(ops.db, stack.runtime.bootstrap_servers, stack.runtime.topics)
    assert replayed > 10
    assert await figures(stack) == live  # the same figures from the topics alone


async def test_the_rows_behind_the_figures_as_csv(stack: Stack) -> None:
    response = await stack.http.get(
        "/v1/indicators/export.csv", params={**PERIOD, "rows": "requests"}, headers=stack.auth
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    french = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=";"))
    assert len(french) >= 3 and {"request_id", "received_at", "patient_cpts", "reason"} <= french[0].keys()
    assert "/2026 " in french[0]["received_at"]  # a French date, Paris time
    assert "Jeanne" not in response.text  # no patient identity in the read model
    plain = await stack.http.get(
        "/v1/indicators/export.csv",
        params={**PERIOD, "rows": "requests", "format": "csv-rfc4180"},
        headers=stack.auth,
    )
    rows = list(csv.DictReader(io.StringIO(plain.text)))
    assert [r["request_id"] for r in rows] == [r["request_id"] for r in french]
    assert datetime.fromisoformat(rows[0]["received_at"]).tzinfo is not None
    bad = await stack.http.get("/v1/indicators", params={**PERIOD, "from": "2026-12-02"}, headers=stack.auth)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "to"
    assert (await stack.http.get("/v1/indicators", params=PERIOD)).status_code == 401


async def test_prometheus_metrics_show_what_happened(stack: Stack) -> None:
    response = await stack.http.get("/metrics")
    assert response.status_code == 200
    samples = {}
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    assert samples['sas_request_status_total{status="confirmed"}'] >= 1
    assert samples['sas_offers_total{outcome="accepted"}'] >= 1
    assert samples['sas_offers_total{outcome="refused"}'] >= 1
    assert samples["sas_match_seconds_count"] >= 3
    assert samples['sas_messages_total{channel="email",result="sent"}'] >= 2
    assert 'sas_outbox_backlog{service="intake"}' in samples
    assert samples["sas_broker_whole"] == 1
    assert samples['sas_consumer_healthy{consumer="intake"}'] == 1
    assert any(name.startswith("sas_consumer_lag{") for name in samples)


async def test_coordinators_see_their_own_cpts_only(stack: Stack) -> None:
    accounts = stack.accounts()
    await accounts.put("coord@cpts-e2e.example.org", "un mot de passe long", "coordinator", "cpts-e2e")
    await accounts.put("coord@elsewhere.example.org", "un autre mot de passe", "coordinator", "elsewhere")
    mine = await operator_client(stack, "coord@cpts-e2e.example.org", "un mot de passe long")
    other = await operator_client(stack, "coord@elsewhere.example.org", "un autre mot de passe")
    try:
        page = await mine.get("/ops")
        assert page.status_code == 200 and 'id="indicator-2">1<' in page.text
        assert "Dernières issues" in page.text and "export.csv?rows=requests" in page.text
        assert (await mine.get("/v1/indicators", params=PERIOD)).json()["sas_requests_with_appointment"] == 1
        assert (await mine.get("/ops/live")).status_code == 200

        assert (await other.get("/ops", params={"cpts_id": "cpts-e2e"})).status_code == 403
        assert (await other.get("/v1/indicators", params=PERIOD)).status_code == 403
        assert (await other.get("/v1/indicators/export.csv", params={**PERIOD, "rows": "requests"})).status_code == 403
        assert 'id="indicator-2">0<' in (await other.get("/ops")).text  # their own CPTS: nothing happened there

        assert (await mine.post("/ops/logout", data={"csrf": "forged"})).status_code == 403
        assert (await mine.get("/ops")).status_code == 200  # a forged logout did nothing
        csrf = re.search(r'name="csrf" value="([^"]+)"', (await mine.get("/ops")).text)
        assert csrf
        await mine.post("/ops/logout", data={"csrf": csrf.group(1)})
        assert (await mine.get("/ops")).status_code == 303
    finally:
        await mine.aclose()
        await other.aclose()


async def test_logins_need_the_form_token_and_are_rate_limited(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=str(stack.http.base_url), timeout=10) as client:
        no_token = await client.post("/ops/login", data={"email": "x@y.org", "password": "p", "csrf": "made-up"})
        assert no_token.status_code == 403
        statuses = []
        for _ in range(7):
            form = await client.get("/ops/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert csrf
            answer = await client.post(
                "/ops/login", data={"email": "intruder@y.org", "password": "guess", "csrf": csrf.group(1)}
            )
            statuses.append(answer.status_code)
        assert statuses[:5] == [401] * 5 and statuses[5:] == [429, 429]


async def test_a_login_with_control_characters_is_refused_like_a_wrong_password(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=str(stack.http.base_url), timeout=10) as client:
        form = await client.get("/ops/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf
        answer = await client.post(
            "/ops/login", data={"email": "a\x00b@y.org", "password": "guess", "csrf": csrf.group(1)}
        )
        assert answer.status_code == 401 and "incorrect" in answer.text
        long = await client.post("/ops/login", data={"email": "a" * 300, "password": "g", "csrf": csrf.group(1)})
        assert long.status_code == 422


async def test_accounts_are_managed_by_the_sas(stack: Stack) -> None:
    body = {"password": "a long enough password", "role": "coordinator", "cpts_id": "cpts-e2e"}
    created = await stack.http.put("/v1/ops/accounts/new@cpts-e2e.example.org", json=body, headers=stack.admin)
    assert created.status_code == 204
    client = await operator_client(stack, "new@cpts-e2e.example.org", "a long enough password")
    try:
        forbidden = await client.put("/v1/ops/accounts/mine@x.org", json=body)  # a coordinator cannot
        assert forbidden.status_code == 403
    finally:
        await client.aclose()
    short = await stack.http.put("/v1/ops/accounts/a@b.org", json={**body, "password": "short"}, headers=stack.admin)
    assert short.status_code == 422 and short.json()["errors"][0]["field"] == "password"
    no_cpts = await stack.http.put("/v1/ops/accounts/a@b.org", json={**body, "cpts_id": None}, headers=stack.admin)
    assert no_cpts.status_code == 422
    assert (await stack.http.put("/v1/ops/accounts/a@b.org", json=body)).status_code == 401
    # a regulator's key is no master key: it creates no account (it made sas_admins before)
    admin_body = {**body, "role": "sas_admin", "cpts_id": None}
    refused = await stack.http.put("/v1/ops/accounts/a@b.org", json=admin_body, headers=stack.auth)
    assert refused.status_code == 403 and "admin" in refused.json()["detail"]


async def test_a_sas_admin_first_chooses_a_cpts(stack: Stack) -> None:
    await stack.accounts().put("admin@sas.example.org", "a long enough password", "sas_admin", None)
    client = await operator_client(stack, "admin@sas.example.org", "a long enough password")
    try:
        first = await client.get("/ops")
        assert first.status_code == 200 and first.headers["content-type"].startswith("text/html")
        assert "Choisir une CPTS" in first.text
        assert '<option value="cpts-e2e">CPTS e2e (cpts-e2e)</option>' in first.text  # by its name
        chosen = await client.get("/ops", params={"cpts_id": "cpts-e2e"})
        assert chosen.status_code == 200 and "Changer de CPTS" in chosen.text
        assert "Opérations SAS – CPTS e2e" in chosen.text
        assert chosen.text.count('r="1.6" fill="#8c959f"') == 2  # its two communes drawn on the map
    finally:
        await client.aclose()


def form_token(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found
    return found.group(1)


async def test_a_sas_admin_manages_accounts_from_a_page(stack: Stack) -> None:
    await stack.accounts().put("chief@sas.example.org", "a long enough password", "sas_admin", None)
    admin = await operator_client(stack, "chief@sas.example.org", "a long enough password")
    try:
        page = await admin.get("/ops/accounts")
        assert page.status_code == 200 and "administrateur SAS" in page.text
        csrf = form_token(page.text)
        new = {"csrf": csrf, "email": "coord@lille.example.org", "password": "mot de passe de Lille",
               "role": "coordinator", "cpts_id": "cpts-lille"}  # fmt: skip
        saved = await admin.post("/ops/accounts", data=new)
        assert saved.status_code == 303 and saved.headers["location"] == "/ops/accounts?done=saved"
        listed = await admin.get("/ops/accounts")
        assert 'data-account="coord@lille.example.org"' in listed.text and "coordinateur de CPTS" in listed.text
        short = await admin.post("/ops/accounts", data={**new, "password": "court"})
        assert short.status_code == 422 and "12 à 200 caractères" in short.text
        forged = await admin.post("/ops/accounts", data={**new, "csrf": "forged"})
        assert forged.status_code == 403

        coordinator = await operator_client(stack, "coord@lille.example.org", "mot de passe de Lille")
        try:
            assert (await coordinator.get("/ops/accounts")).status_code == 403  # not for coordinators
            assert (await coordinator.get("/ops")).status_code == 200
            gone = await admin.post("/ops/accounts/disable", data={"csrf": csrf, "email": "coord@lille.example.org"})
            assert gone.status_code == 303
            assert (await coordinator.get("/ops")).status_code == 303  # the session ended: back to the login
        finally:
            await coordinator.aclose()
        async with httpx.AsyncClient(base_url=str(stack.http.base_url), timeout=10) as client:
            form = await client.get("/ops/login")
            refused = await client.post(
                "/ops/login",
                data={"email": "coord@lille.example.org", "password": "mot de passe de Lille",
                      "csrf": form_token(form.text)},
            )  # fmt: skip
            assert refused.status_code == 401  # a disabled account cannot log in
        again = await admin.post("/ops/accounts", data=new)  # a new password enables it again
        assert again.status_code == 303
        back = await operator_client(stack, "coord@lille.example.org", "mot de passe de Lille")
        await back.aclose()
    finally:
        await admin.aclose()
