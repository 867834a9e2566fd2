"""Motives and cooperation protocols; what a directory change does to a pending offer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.common.motives import catalogue, effective_urgency
from services.matcher.domain import matching
from services.matcher.domain.opening_hours import WeeklyHours


def professions_of(
    motive: str, age: int | None, sex: str | None = None, flags: tuple[str, ...] = ()
) -> list[tuple[str, ...]]:
    return [s.professions for s in catalogue().motives[motive].steps_for(age, sex, flags)]


def test_dental_pain_dentist_then_delegated_pharmacist_or_nurse_then_gp() -> None:
    assert professions_of("dental_pain", 40) == [("dentist",), ("pharmacist", "nurse"), ("general_practitioner",)]


@pytest.mark.parametrize(
    ("age", "sex", "flags"),
    [
        (12, None, ()),  # under the protocol's age
        (None, None, ()),  # age unknown: a criterion is never met by default
        (40, None, ("facial_swelling",)),
        (40, None, ("pregnancy", "fever")),
    ],
)
def test_dental_pain_protocol_exclusions_leave_dentist_then_gp(
    age: int | None, sex: str | None, flags: tuple[str, ...]
) -> None:
    assert professions_of("dental_pain", age, sex, flags) == [("dentist",), ("general_practitioner",)]


@pytest.mark.parametrize(
    ("age", "sex", "expected"),
    [
        (30, "F", [("pharmacist", "nurse"), ("general_practitioner",)]),
        (30, "M", [("general_practitioner",)]),
        (30, None, [("general_practitioner",)]),
        (70, "F", [("general_practitioner",)]),
        (16, "F", [("pharmacist", "nurse"), ("general_practitioner",)]),
        (15, "F", [("general_practitioner",)]),
    ],
)
def test_urinary_burning_protocol_is_for_women_of_16_to_65(
    age: int, sex: str | None, expected: list[tuple[str, ...]]
) -> None:
    assert professions_of("urinary_burning", age, sex) == expected


def test_every_motive_ends_with_a_gp_and_general_goes_to_gps() -> None:
    for code, motive in catalogue().motives.items():
        assert motive.steps_for(None, None, ())[-1].professions == ("general_practitioner",), code
    assert professions_of("general", 50) == [("general_practitioner",)]


def test_a_motive_may_make_a_request_urgent() -> None:
    motives = catalogue().motives
    assert effective_urgency("48h", motives["dental_pain"]) == "24h"
    assert effective_urgency("48h", motives["general"]) == "48h"
    assert effective_urgency("24h", motives["general"]) == "24h"


NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)  # Tuesday 09:00 Paris
PRO = matching.Professional("1", "Dr", "general_practitioner")
SITE = matching.Site("s", "site", None, matching.Place(46.2, -0.14), "79")


def test_an_offer_stays_while_nothing_relevant_changed() -> None:
    start = NOW + timedelta(hours=5)
    assert matching.offer_still_possible(PRO, SITE, "slot", start, start + timedelta(minutes=20)) is None


def test_an_offer_is_voided_by_a_change_that_makes_it_impossible() -> None:
    start = NOW + timedelta(hours=5)  # 14:00 Paris
    end = start + timedelta(minutes=20)
    mornings = matching.Site(
        "s",
        "site",
        None,
        SITE.place,
        "79",
        WeeklyHours.parse({"tue": [["08:00", "12:00"]], "thu": [["08:00", "12:00"]]}),
    )
    closed = matching.Site("s", "site", None, SITE.place, "79", closures=((start - timedelta(hours=1), end),))
    assert "closed" in (matching.offer_still_possible(PRO, mornings, "slot", start, end) or "")
    assert "closed" in (matching.offer_still_possible(PRO, closed, "slot", start, end) or "")
    assert matching.offer_still_possible(
        matching.Professional("1", "Dr", "general_practitioner", active=False), SITE, "slot", start, end
    )
    window_end = NOW + timedelta(hours=48)
    assert (
        matching.offer_still_possible(PRO, mornings, "overflow", start, window_end) is None
    )  # Thursday morning is open
