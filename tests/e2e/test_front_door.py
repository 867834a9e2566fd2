"""The service's address answers a newcomer: the front door links every space; the trial
mailbox is not served where e-mails go to a real relay (this stack has one)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e


async def test_the_front_door_links_every_space_in_both_languages(stack: Stack) -> None:
    french = await stack.http.get("/")
    assert french.status_code == 200 and french.headers["content-type"].startswith("text/html")
    for href in ('href="/r"', 'href="/ops"', 'href="/p"', 'href="/docs"', 'href="/fhir/metadata"'):
        assert href in french.text
    assert "Console des régulateurs" in french.text and 'lang="fr"' in french.text
    assert 'href="/mailbox"' not in french.text  # e-mails go to a relay here
    english = await stack.http.get("/", params={"lang": "en"})
    assert "Regulators&#39; console" in english.text and 'lang="en"' in english.text
    for path in ("/r", "/ops", "/docs", "/fhir/metadata"):  # every link leads somewhere
        assert (await stack.http.get(path)).status_code in (200, 303, 401), path


async def test_the_trial_mailbox_is_not_served_when_mail_goes_to_a_relay(stack: Stack) -> None:
    answer = await stack.http.get("/mailbox")
    assert answer.status_code == 404 and "SMTP" in answer.json()["detail"]
