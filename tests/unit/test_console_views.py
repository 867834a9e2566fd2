"""The console's pure parts: the patient's place found as a regulator types it, the protocols'
criteria in words, the form as the API's body, the summary read to the patient."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.common import geo
from services.intake import console_views as views
from services.intake.models import RequestHistory


@pytest.mark.parametrize(
    ("typed", "chosen", "insee"),
    [
        ("Niort", "", "79191"),  # one commune of that exact name (Niort-de-Sault only starts so)
        ("niort", "", "79191"),
        ("79191", "", "79191"),  # an INSEE code
        ("79000", "79034", "79034"),  # a postcode shared by three: the one chosen
        ("st maixent l ecole", "", "79270"),
    ],
)
def test_the_patients_commune_is_found_as_a_regulator_types_it(typed: str, chosen: str, insee: str) -> None:
    place, error, _ = views.located(typed, chosen)
    assert error is None and place == {"commune_insee": insee}


def test_several_or_no_communes_ask_the_regulator() -> None:
    place, error, choices = views.located("79000", "")
    assert place is None and error and {c.insee for c in choices} >= {"79191", "79034", "79308"}
    assert views.located("Zzyzx", "")[:2] == (None, views.located("", "")[1])
    assert views.located("46.32, -0.46", "")[0] == {"lat": 46.32, "lon": -0.46}
    assert geo.find_communes("75011")[0].name == "Paris"


def test_the_motives_say_their_protocols_criteria() -> None:
    french = {m["code"]: m for m in views.motive_choices("fr")}
    english = {m["code"]: m for m in views.motive_choices("en")}
    assert "general" in french and french["general"]["criteria"] == []
    with_protocol = [m for m in french.values() if m["criteria"]]
    assert with_protocol and all(
        "Protocole" in c or "protocol" in c.lower() for m in with_protocol for c in m["criteria"]
    )
    assert english["general"]["label"] != french["general"]["label"]


def test_the_form_becomes_the_apis_body() -> None:
    now = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    fields = {
        "urgency": "24h",
        "motive": "general",
        "age": "67",
        "sex": "",
        "teleconsultation": "on",
        "red_flags": ["fever"],
        "contact_name": " ",
        "contact_phone": "",
    }
    body = views.request_body("R-1", now, {"commune_insee": "79191"}, fields)
    assert body["patient"] == {
        "commune_insee": "79191",
        "age": 67,
        "sex": None,
        "teleconsultation_ok": True,
        "red_flags": ["fever"],
        "contact": None,  # nothing given: none sent
    }
    assert body["received_at"] == now.isoformat() and body["urgency"] == "24h"


def test_the_summary_read_to_the_patient_says_who_when_and_where() -> None:
    start = datetime(2026, 12, 3, 13, 30, tzinfo=UTC)
    view = {
        "status": "confirmed",
        "start": start,
        "professional": "Dr Martin",
        "site": {"name": "Cabinet du Centre", "commune_insee": "79191"},
        "site_commune": geo.commune("79191"),
        "appointment": {"mode": "in_person"},
    }
    assert views.summary(view, "fr") == (
        "Vous avez rendez-vous avec Dr Martin le jeudi 3 décembre à 14:30, au Cabinet du Centre, Niort."
    )
    assert "by teleconsultation" in views.summary(view | {"appointment": {"mode": "teleconsultation"}}, "en")
    assert views.summary(view | {"status": "offered"}, "fr") == ""


def test_the_history_says_why_a_search_waits_and_why_nothing_was_found() -> None:
    at = datetime(2026, 12, 1, 9, tzinfo=UTC)
    history = [
        RequestHistory(request_id="r", status="searching", at=at),
        RequestHistory(request_id="r", status="searching", at=at, reason="waiting: candidates_busy"),
        RequestHistory(request_id="r", status="unresolved", at=at, reason="all_declined"),
        RequestHistory(request_id="r", status="cancelled", at=at, reason="cancelled"),
    ]
    said = [step["said"] for step in views.history_view(history, "en")]
    assert said == [
        "searching",
        "waiting: professionals busy",
        "no solution: every professional asked declined",
        "cancelled",
    ]
    assert views.history_view(history[1:2], "fr")[0]["said"] == "en attente : professionnels occupés"
