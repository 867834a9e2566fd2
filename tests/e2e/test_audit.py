"""The audit trail of patient data (contract v2): who posted, read, cancelled a request and to
whom the patient's contact was shown, readable by the owning organisation only, append-only."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from services.common.access.registry import key_hash
from services.common.db import asyncpg_url
from tests.e2e.conftest import ADMIN_KEY, API_KEY, Stack, link_path, operator_client

pytestmark = pytest.mark.e2e


async def test_each_look_at_a_request_is_on_record_for_its_organisation_only(stack: Stack) -> None:
    gp = await stack.professional("12100000001", "79191", slots=[stack.paris(1, 10)])
    request_id = await stack.submit("79191")
    assert (await stack.status(request_id))["request_id"] == request_id  # a read
    [offer] = await stack.mail.wait_for(gp)
    page = await stack.http.post(f"{link_path(offer)}/accept")
    assert "Jeanne Patiente" in page.text  # the contact shown to the professional
    cancelled = await stack.http.post(f"/v1/requests/{request_id}/cancel", headers=stack.auth)
    assert cancelled.status_code == 200

    trail = await stack.http.get("/v1/audit", params={"request_id": request_id}, headers=stack.auth)
    assert trail.status_code == 200, trail.text
    items = trail.json()["items"]
    actions = [i["action"] for i in items]
    assert actions[0] == "request.posted" and "request.read" in actions
    assert actions.index("contact.shown") < actions.index("request.cancelled")
    regulator = f"env-regulator-{key_hash(API_KEY)[:12]}"
    assert items[0]["actor"] == {"kind": "client", "id": regulator}
    shown = next(i for i in items if i["action"] == "contact.shown")
    assert shown["actor"] == {"kind": "professional", "id": "12100000001"} and shown["ip"] == "127.0.0.1"
    assert all(i["request_id"] == request_id and i["ip"] == "127.0.0.1" for i in items)
    assert [i["at"] for i in items] == sorted(i["at"] for i in items)  # oldest first

    # another organisation: as if the request did not exist; a regulator must name a request
    other = await stack.http.post("/v1/api-clients", json={"name": "SAS 17", "role": "regulator"}, headers=stack.admin)
    stranger = {"Authorization": f"Bearer {other.json()['key']}"}
    assert (await stack.http.get("/v1/audit", params={"request_id": request_id}, headers=stranger)).status_code == 404
    assert (await stack.http.get("/v1/audit", headers=stack.auth)).status_code == 422
    # an admin reads any filter
    everything = await stack.http.get("/v1/audit", params={"action": "contact.shown"}, headers=stack.admin)
    assert everything.status_code == 200 and any(i["actor"]["id"] == "12100000001" for i in everything.json()["items"])


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE access.audit_entry SET actor_id = 'nobody'",
        "DELETE FROM access.audit_entry",
        "TRUNCATE access.audit_entry",
    ],
)
async def test_the_trail_cannot_be_changed_by_a_service_nor_by_the_owner(stack: Stack, statement: str) -> None:
    await stack.submit("79191")  # at least one entry
    for part in stack.runtime.parts:  # each service's own role: not granted
        with pytest.raises(Exception, match="permission denied for table audit_entry"):
            async with part.db.transaction() as tx:
                await tx.session.execute(text(statement))
    owner = create_async_engine(asyncpg_url(stack.database_url))
    try:
        with pytest.raises(Exception, match="append-only"):  # the owner: the triggers refuse
            async with owner.begin() as conn:
                await conn.execute(text(statement))
    finally:
        await owner.dispose()
    async with stack.runtime.parts[0].db.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM access.audit_entry"))).scalar_one() > 0


async def test_client_account_and_export_changes_are_on_record_for_an_admin(stack: Stack) -> None:
    made = await stack.http.post("/v1/api-clients", json={"name": "SAS 85", "role": "regulator"}, headers=stack.admin)
    client_id = made.json()["client_id"]
    assert (await stack.http.delete(f"/v1/api-clients/{client_id}", headers=stack.admin)).status_code == 200
    account = {"password": "a long enough password", "role": "coordinator", "cpts_id": "cpts-audit"}
    assert (
        await stack.http.put("/v1/ops/accounts/c@audit.example.org", json=account, headers=stack.admin)
    ).status_code == 204
    period = {"cpts_id": "cpts-audit", "rows": "requests", "from": "2026-12-01", "to": "2026-12-01"}
    assert (await stack.http.get("/v1/indicators/export.csv", params=period, headers=stack.admin)).status_code == 200
    admin = f"env-admin-{key_hash(ADMIN_KEY)[:12]}"
    for action, detail in (
        ("client.created", client_id),
        ("client.revoked", client_id),
        ("account.saved", "c@audit.example.org coordinator"),
        ("export.downloaded", "requests of cpts-audit"),
    ):
        found = (await stack.http.get("/v1/audit", params={"action": action}, headers=stack.admin)).json()["items"]
        mine = [i for i in found if detail in i.get("detail", "")]
        assert mine and mine[-1]["actor"] == {"kind": "client", "id": admin} and mine[-1]["ip"] == "127.0.0.1", action


async def test_pauses_are_on_record_with_who_asked(stack: Stack) -> None:
    await stack.professional("12100000002", "79191")
    paused = await stack.http.put(
        "/v1/professionals/12100000002/pause", json={"until": stack.paris(2, 0).date().isoformat()}, headers=stack.admin
    )
    assert paused.status_code == 200
    assert (await stack.http.delete("/v1/professionals/12100000002/pause", headers=stack.admin)).status_code == 204
    admin = {"kind": "client", "id": f"env-admin-{key_hash(ADMIN_KEY)[:12]}"}
    for action in ("professional.paused", "professional.resumed"):
        found = (await stack.http.get("/v1/audit", params={"action": action}, headers=stack.admin)).json()["items"]
        mine = [i for i in found if "12100000002" in i.get("detail", "")]
        assert mine and mine[-1]["actor"] == admin, action


async def test_a_sas_admin_reads_the_trail_on_a_page_filtered_and_nobody_else_does(stack: Stack) -> None:
    gp = await stack.professional("12100000077", "33063", slots=[stack.paris(1, 11)])  # Bordeaux: nobody else
    request_id = await stack.submit("33063")
    [offer] = await stack.mail.wait_for(gp)
    accepted = await stack.http.post(f"{link_path(offer)}/accept")
    assert "Jeanne Patiente" in accepted.text, accepted.text
    accounts = stack.accounts()
    await accounts.put("admin@audit-page.example.org", "un mot de passe long", "sas_admin", None)
    await accounts.put("coord@audit-page.example.org", "un mot de passe long", "coordinator", "cpts-audit")
    admin = await operator_client(stack, "admin@audit-page.example.org", "un mot de passe long")
    coordinator = await operator_client(stack, "coord@audit-page.example.org", "un mot de passe long")
    try:
        page = await admin.get("/ops/audit", params={"request_id": request_id})
        assert page.status_code == 200, page.text
        rows = re.findall(r'<tr data-action="([a-z.]+)"><td>[^<]+</td><td>(\w+) ([^<]+)</td>', page.text)
        assert ("contact.shown", "professional", "12100000077") in rows
        assert [action for action, _, _ in rows][-1] == "request.posted"  # newest first
        shown = await admin.get("/ops/audit", params={"action": "contact.shown", "actor": "12100000077"})
        assert re.findall(r'data-action="([a-z.]+)"', shown.text) == ["contact.shown"]
        english = await admin.get("/ops/audit", params={"request_id": request_id, "lang": "en"})
        assert "Audit trail" in english.text
        assert (await admin.get("/ops/audit", params={"action": "DROP TABLE"})).status_code == 422
        assert (await coordinator.get("/ops/audit")).status_code == 403
        anonymous = await stack.http.get("/ops/audit", follow_redirects=False)
        assert anonymous.status_code == 303 and anonymous.headers["location"] == "/ops/login"
    finally:
        await admin.aclose()
        await coordinator.aclose()
