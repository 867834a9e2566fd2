"""A professional's link while the database or the intake is away: a page that says to try again."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.common.clock import PARIS
from services.common.embedded import free_port
from services.common.http import install_problem_handlers
from services.common.patient import contact_shown_until
from services.common.rate_limits import RateLimits
from services.common.settings import Settings
from services.notifier.channels import ContactUnavailable, HttpContactSource, ShownContact
from services.notifier.pages import OfferPages, router, templates, texts


class CountersAway:
    """The rate limits' database (the same server) while PostgreSQL restarts."""

    def transaction(self) -> Any:
        raise RuntimeError("no connection") from ConnectionRefusedError(111, "Connection refused")

    async def statement(self, *_: Any, **__: Any) -> Any:
        raise RuntimeError("no connection") from ConnectionRefusedError(111, "Connection refused")


class DatabaseAway:
    """The notifier's service as it is while PostgreSQL restarts."""

    async def open(self, *_: Any) -> Any:
        raise RuntimeError("no connection") from ConnectionRefusedError(111, "Connection refused")

    accept = refuse = open


async def test_an_offer_page_while_the_database_is_away_says_to_try_again() -> None:
    app = FastAPI()
    install_problem_handlers(app)
    app.state.provided = {OfferPages: OfferPages(DatabaseAway(), templates())}  # type: ignore[arg-type]
    app.state.settings = Settings()
    app.state.limits = RateLimits(CountersAway())  # type: ignore[arg-type]  # the rate counters are away too
    app.include_router(router)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for method, path in (("GET", "/o/some-token"), ("POST", "/o/some-token/accept")):
            page = await client.request(method, path)
            assert page.status_code == 503, page.text
            assert page.headers["retry-after"] == "10"
            assert page.headers["content-type"].startswith("text/html")
            assert "Réessayez dans un instant" in page.text and "rien n&#39;a été perdu" in page.text


async def test_an_intake_out_of_reach_is_contact_unavailable_not_an_error() -> None:
    source = HttpContactSource(f"http://127.0.0.1:{free_port()}", "key")  # nothing listens there
    try:
        with pytest.raises(ContactUnavailable):
            await source.contact("R-1", "10000000001")
    finally:
        await source.close()


def test_the_patient_contact_shows_until_the_end_of_the_day_after_the_appointment() -> None:
    appointment = datetime(2026, 12, 1, 22, 30, tzinfo=UTC)  # 23:30 in Paris, a Tuesday
    assert contact_shown_until(appointment) == datetime(2026, 12, 3, 0, 0, tzinfo=PARIS)
    offer = SimpleNamespace(
        chosen_start=None, start=appointment, site={"name": "Cabinet"}, mode="in_person", motive="general"
    )
    page = templates().get_template("accepted.html")
    until = contact_shown_until(appointment)
    before = page.render(
        offer=offer,
        contact=ShownContact("Jeanne", "0612345678"),
        contact_until=until,
        now=appointment,
        _=texts("fr"),
        lang="fr",
    )
    assert "0612345678" in before and "restent affichées" in before
    after = page.render(offer=offer, contact=None, contact_until=until, now=until, _=texts("fr"), lang="fr")
    assert "ne sont plus affichées" in after
