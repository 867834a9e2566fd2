"""Shipped reference data: communes and motives."""

from __future__ import annotations

import pytest

from services.common import geo
from services.common.motives import PROFESSIONS, catalogue


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("79191", "Niort"),
        ("75056", "Paris"),
        ("69123", "Lyon"),
        ("13055", "Marseille"),
        ("2A004", "Ajaccio"),
        ("75115", "Paris 15e"),
    ],
)
def test_communes_resolve_including_cities_with_arrondissements(code: str, name: str) -> None:
    commune = geo.commune(code)
    assert commune is not None and commune.name.startswith(name.split()[0])
    assert 41 < commune.lat < 52 and -5.5 < commune.lon < 10


def test_unknown_commune_is_none() -> None:
    assert geo.commune("99999") is None


def test_great_circle_distance() -> None:
    paris, lyon = geo.commune("75056"), geo.commune("69123")
    assert paris and lyon
    assert geo.distance_km(paris.lat, paris.lon, lyon.lat, lyon.lon) == pytest.approx(392, abs=5)
    assert geo.distance_km(46.0, 0.0, 46.0, 0.0) == 0


def test_every_motive_names_known_professions_and_general_goes_to_gps() -> None:
    motives = catalogue().motives
    assert motives["general"].professions == ("general_practitioner",)
    assert motives["dental_pain"].urgency == "24h"
    for motive in motives.values():
        assert set(motive.professions) <= set(PROFESSIONS)
