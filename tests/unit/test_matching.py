"""Candidate search and ranking (pure): time, distance, radius, kinds, exclusions, reasons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.common.clock import PARIS
from services.common.geo import distance_km
from services.matcher.domain.matching import (
    FreeSlot,
    OverflowOffer,
    Place,
    Professional,
    Search,
    Site,
    rank,
)

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)  # Tuesday 09:00 in Paris
PATIENT = Place(46.20818, -0.14396)  # Melle
LEAD = timedelta(minutes=30)


def site_at(lat: float, lon: float, name: str = "site") -> Site:
    return Site(name, name, None, Place(lat, lon), "79")


def slot(rpps: str, hours_from_now: float, place: Place = PATIENT, mode: str = "in_person") -> FreeSlot:
    start = NOW + timedelta(hours=hours_from_now)
    return FreeSlot(
        f"{rpps}-{hours_from_now}",
        Professional(rpps, f"Dr {rpps}", "general_practitioner"),
        site_at(place.lat, place.lon),
        start,
        start + timedelta(minutes=20),
        mode,
    )


def search(**changes: object) -> Search:
    base = Search(request_id="R", patient=PATIENT, deadline=NOW + timedelta(hours=48))
    return Search(**{**base.__dict__, **changes})  # type: ignore[arg-type]


def north(km: float) -> Place:
    """A place `km` kilometres north of the patient."""
    return Place(PATIENT.lat + km / 111.195, PATIENT.lon)


def test_sooner_comes_first_at_the_same_place() -> None:
    ranked = rank(search(), [slot("B", 5), slot("A", 2)], [], NOW, LEAD)
    assert [c.professional.rpps for c in ranked] == ["A", "B"]


def test_nearer_comes_first_at_the_same_time() -> None:
    ranked = rank(search(), [slot("FAR", 2, north(20)), slot("NEAR", 2, north(2))], [], NOW, LEAD)
    assert [c.professional.rpps for c in ranked] == ["NEAR", "FAR"]
    assert ranked[0].terms["travel_hours_equiv"] == pytest.approx(0.2, abs=0.01)


def test_radius_edges() -> None:
    inside, outside = north(29.9), north(30.1)
    assert (
        distance_km(PATIENT.lat, PATIENT.lon, inside.lat, inside.lon)
        < 30
        < distance_km(PATIENT.lat, PATIENT.lon, outside.lat, outside.lon)
    )
    ranked = rank(search(), [slot("IN", 2, inside), slot("OUT", 2, outside)], [], NOW, LEAD)
    assert [c.professional.rpps for c in ranked] == ["IN"]
    assert [c.professional.rpps for c in rank(search(radius_km=40), [slot("OUT", 2, outside)], [], NOW, LEAD)] == [
        "OUT"
    ]


def test_teleconsultation_ignores_distance_only_when_the_patient_accepts_it() -> None:
    far_tele = slot("TELE", 2, north(300), mode="teleconsultation")
    assert rank(search(), [far_tele], [], NOW, LEAD) == []
    assert [c.mode for c in rank(search(teleconsultation_ok=True), [far_tele], [], NOW, LEAD)] == ["teleconsultation"]


@pytest.mark.parametrize(("hours", "kept"), [(0.4, False), (0.5, True), (47.9, True), (48.0, True), (48.1, False)])
def test_slot_must_start_between_now_plus_lead_time_and_the_deadline(hours: float, kept: bool) -> None:
    # the deadline is Thursday 09:00 Paris; 48.1 h is after it; all these times are inside opening hours
    assert bool(rank(search(), [slot("A", hours)], [], NOW, LEAD)) == kept


def test_slot_outside_opening_hours_is_not_a_candidate() -> None:
    evening = slot("A", 12)  # 21:00 in Paris
    assert rank(search(), [evening], [], NOW, LEAD) == []


def test_a_published_slot_comes_before_an_overflow_gp() -> None:
    willing = Professional("OVF", "Dr O", "general_practitioner", accepts_overflow=True, overflow_daily_cap=2)
    overflow = OverflowOffer(willing, site_at(PATIENT.lat, PATIENT.lon))
    ranked = rank(search(), [slot("SLOT", 30, north(25))], [overflow], NOW, LEAD)
    assert [(c.kind, c.professional.rpps) for c in ranked] == [("slot", "SLOT"), ("overflow", "OVF")]
    assert ranked[1].start == NOW + LEAD and ranked[1].window_end == NOW + timedelta(hours=48)


def test_overflow_respects_the_daily_cap_in_paris_days() -> None:
    pro = Professional("OVF", "Dr O", "general_practitioner", accepts_overflow=True, overflow_daily_cap=2)
    today = NOW.astimezone(PARIS).date().isoformat()
    full_today = OverflowOffer(pro, site_at(PATIENT.lat, PATIENT.lon), {today: 2})
    room = OverflowOffer(pro, site_at(PATIENT.lat, PATIENT.lon), {today: 1})
    [tomorrow] = rank(search(), [], [full_today], NOW, LEAD)
    assert tomorrow.start.astimezone(PARIS).strftime("%a %H:%M") == "Wed 08:00"  # the next day with room
    assert rank(search(), [], [room], NOW, LEAD)[0].start == NOW + LEAD
    both_full = OverflowOffer(pro, site_at(PATIENT.lat, PATIENT.lon), {today: 2, "2026-12-02": 2, "2026-12-03": 5})
    assert rank(search(), [], [both_full], NOW, LEAD) == []


def test_professionals_already_asked_are_not_asked_again() -> None:
    ranked = rank(search(already_asked=frozenset({"A"})), [slot("A", 2), slot("B", 3)], [], NOW, LEAD)
    assert [c.professional.rpps for c in ranked] == ["B"]


def test_held_slots_and_closed_practices_are_left_out_unless_asked_for() -> None:
    held = FreeSlot(
        "H",
        Professional("A", "Dr A", "general_practitioner"),
        site_at(PATIENT.lat, PATIENT.lon),
        NOW + timedelta(hours=2),
        NOW + timedelta(hours=2, minutes=20),
        "in_person",
        held=True,
    )
    assert rank(search(), [held], [], NOW, LEAD) == []
    assert [c.slot_id for c in rank(search(include_held=True), [held], [], NOW, LEAD)] == ["H"]
    night = datetime(2026, 12, 1, 21, 0, tzinfo=UTC)  # 22:00 Paris: the practice is closed
    tomorrow = slot("B", 24)  # Wednesday 09:00
    assert rank(search(asking_at=night), [tomorrow], [], NOW, LEAD) == []
    assert rank(search(asking_at=NOW), [tomorrow], [], NOW, LEAD) != []
