"""The dashboard's SVG charts: counts in the right place, nothing unescaped."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from services.common.clock import PARIS
from services.ops import charts
from services.ops.indicators import RequestFacts


def request(day: int, status: str, minutes: int = 30, commune: str = "79174") -> RequestFacts:
    received = datetime(2026, 12, day, 10, tzinfo=PARIS)
    confirmed = received + timedelta(minutes=minutes) if status == "confirmed" else None
    return RequestFacts(
        f"R{day}{status}{minutes}",
        received,
        "T",
        status,
        confirmed_at=confirmed,
        commune_insee=commune,
        appointment_commune="79061" if confirmed else None,
    )


def test_wait_buckets() -> None:
    facts = [
        request(1, "confirmed", 10),
        request(1, "confirmed", 45),
        request(2, "confirmed", 300),
        request(2, "unresolved"),
    ]
    assert charts.wait_distribution(facts) == [
        ("< 15 min", 1),
        ("15–30", 0),
        ("30–60", 1),
        ("1–2 h", 0),
        ("2–4 h", 0),
        ("> 4 h", 1),
    ]


def test_per_day_columns_carry_their_counts() -> None:
    svg = charts.requests_per_day(
        [request(1, "confirmed"), request(1, "unresolved"), request(3, "confirmed")],
        date(2026, 12, 1),
        date(2026, 12, 3),
    )
    assert "<title>2026-12-01 confirmed: 1</title>" in svg and "<title>2026-12-03 confirmed: 1</title>" in svg
    assert svg.count("<rect") == 3 + 4  # three columns' pieces and the four legend keys


def test_labels_are_escaped() -> None:
    svg = charts.bars([("<script>alert(1)</script>", 3)], "Refus & motifs")
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "Refus &amp; motifs" in svg


def test_the_map_places_requests_and_appointments() -> None:
    svg = charts.commune_map([request(1, "confirmed"), request(2, "unresolved")])
    assert svg.count("<circle") == 2  # Melle (2 requests) and Celles-sur-Belle (1 appointment)
    assert "Melle : 2 demande(s)" in svg and "Celles-sur-Belle : 1 rendez-vous" in svg
    assert "rien sur la période" in charts.commune_map([])


def test_the_map_draws_the_territory_and_names_the_busiest_communes() -> None:
    territory = ["54395", "54547", "54304", "54339", "54482"]  # Nancy and neighbours
    svg = charts.commune_map([], territory)
    assert "<polygon" in svg and svg.count('r="1.6"') == 5  # outline and every commune, nothing happened
    assert svg.count("</text>") - 1 == charts.LANDMARKS and ">Nancy</text>" in svg  # the largest towns named
    at = datetime(2026, 12, 1, 10, tzinfo=PARIS)
    busy = [RequestFacts("r1", at, "T", "confirmed", commune_insee="54547", appointment_commune="54395")]
    named = charts.commune_map(busy, territory)
    assert ">Vandœuvre-lès-Nancy</text>" in named and ">Nancy</text>" in named
    assert charts.commune_map([], []) == '<p class="muted">Carte : rien sur la période</p>'
