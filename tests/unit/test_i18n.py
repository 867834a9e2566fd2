"""Codes as labels, numbers and dates as a French reader expects them (Babel), English available."""

from __future__ import annotations

from datetime import UTC, datetime

from services.common import i18n

TUESDAY = datetime(2026, 11, 24, 13, 30, tzinfo=UTC)  # 14:30 in Paris


def test_dates_in_paris_time_in_words() -> None:
    assert i18n.when(TUESDAY) == "mardi 24 novembre à 14:30"
    assert i18n.when(TUESDAY, "en") == "Tuesday 24 November at 14:30"
    assert i18n.when_short(TUESDAY) == "mar. 24 nov. à 14:30"  # fits a phone's time picker, time included
    assert i18n.day(TUESDAY) == "24/11/2026 14:30"


def test_numbers_and_shares_in_french() -> None:
    assert i18n.number(12.5) == "12,5" and i18n.number(12.5, "en") == "12.5"
    assert i18n.number(None) == "–"
    assert i18n.percent(1.0).replace("\u202f", " ").replace("\xa0", " ") == "100 %"
    assert i18n.percent(0.8333, "en") == "83%"


def test_codes_have_labels_and_an_unknown_code_shows_itself() -> None:
    assert i18n.label("no_candidate_in_radius", "unresolved") == "aucun professionnel disponible dans le rayon"
    assert i18n.label("too_far", "refusal") == "trop loin"
    assert i18n.label("coordinator", "role") == "coordinateur de CPTS"
    assert i18n.label("brand_new_code", "unresolved") == "brand_new_code"


def test_distances_and_age_bands_are_written_in_the_readers_language() -> None:
    assert i18n.distance(2.44, "fr") == "2,4\u00a0km" and i18n.distance(2.44, "en") == "2.4\u00a0km"
    assert i18n.distance(None) == "–"
    assert i18n.age_band("60-69", "fr") == "60–69 ans" and i18n.age_band("60-69", "en") == "aged 60–69"
    assert i18n.age_band("<2", "en") == "infant (under 2)" and i18n.age_band(None, "en") == ""
