"""Who to ask for a request: candidate search, ranking and the "no solution" reason (pure).

Values in, decisions out: the caller passes `now` and the directory entries it loaded.
The first version ranks by a simple explainable score; the full rules grow here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from services.common.clock import PARIS
from services.common.geo import distance_km
from services.matcher.domain.opening_hours import (
    REFERENCE_HOURS,
    WeeklyHours,
    first_open_time,
    is_open_throughout,
)

DEFAULT_RADIUS_KM = 30.0
URGENCY_DELAYS = {"48h": timedelta(hours=48), "24h": timedelta(hours=24)}
# Score weights: one hour of waiting weighs as much as KM_PER_HOUR kilometres of travel.
KM_PER_HOUR = 10.0


class UnresolvedReason(StrEnum):
    NO_CANDIDATE_IN_RADIUS = "no_candidate_in_radius"
    OUTSIDE_OPENING_HOURS = "outside_opening_hours"
    ALL_DECLINED = "all_declined"
    DEADLINE_PASSED = "deadline_passed"
    CANCELLED = "cancelled"


def deadline_for(received_at: datetime, urgency: str) -> datetime:
    """The absolute instant by which the patient must be seen (48 h, or 24 h when urgent).

    Computed in UTC: Python adds a timedelta to a zone-aware datetime on the wall clock, which
    would make a 48 h window across a daylight-saving change 47 or 49 real hours.
    """
    return received_at.astimezone(UTC) + URGENCY_DELAYS[urgency]


@dataclass(frozen=True)
class Place:
    lat: float
    lon: float


@dataclass(frozen=True)
class Professional:
    rpps: str
    name: str
    profession: str
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class Site:
    site_id: str
    name: str
    commune_insee: str | None
    place: Place
    department: str | None = None
    hours: WeeklyHours = REFERENCE_HOURS


@dataclass(frozen=True)
class FreeSlot:
    slot_id: str
    professional: Professional
    site: Site
    start: datetime
    end: datetime
    mode: str  # in_person | teleconsultation


@dataclass(frozen=True)
class OverflowOffer:
    """A professional who accepts extra patients at one of their sites, and their cap."""

    professional: Professional
    site: Site
    daily_cap: int
    taken_on: dict[str, int] = field(default_factory=dict)  # Paris date (ISO) -> overflow patients


@dataclass(frozen=True)
class Search:
    request_id: str
    patient: Place
    deadline: datetime
    teleconsultation_ok: bool = False
    radius_km: float = DEFAULT_RADIUS_KM
    already_asked: frozenset[str] = frozenset()  # RPPS numbers asked before for this request


@dataclass(frozen=True)
class Candidate:
    kind: str  # slot | overflow
    professional: Professional
    site: Site
    mode: str
    start: datetime
    window_end: datetime | None
    slot_id: str | None
    distance_km: float
    score: float
    terms: dict[str, float]


def earliest_start(now: datetime, lead: timedelta) -> datetime:
    return now.astimezone(UTC) + lead


def _reachable(search: Search, site: Site, mode: str) -> float | None:
    """The distance to the site, or None when it is too far for this mode."""
    d = distance_km(search.patient.lat, search.patient.lon, site.place.lat, site.place.lon)
    if mode == "teleconsultation" and search.teleconsultation_ok:
        return d
    if mode == "teleconsultation":
        return None
    return d if d <= search.radius_km else None


def _score(wait: timedelta, distance: float, mode: str) -> tuple[float, dict[str, float]]:
    """Lower is better: hours of waiting plus travel counted in hours (KM_PER_HOUR km = 1 h)."""
    hours = wait.total_seconds() / 3600
    travel = 0.0 if mode == "teleconsultation" else distance / KM_PER_HOUR
    terms = {"wait_hours": round(hours, 3), "travel_hours_equiv": round(travel, 3)}
    return round(sum(terms.values()), 3), terms


def rank(
    search: Search,
    slots: Iterable[FreeSlot],
    overflow: Iterable[OverflowOffer],
    now: datetime,
    lead: timedelta = timedelta(minutes=30),
) -> list[Candidate]:
    """Every candidate who could see the patient before the deadline, best first.

    A published slot always comes before asking someone to add a patient to a full day
    (overflow); within each kind, the lowest score first.
    """
    from_ = earliest_start(now, lead)
    found: list[Candidate] = []
    for slot in slots:
        if slot.professional.rpps in search.already_asked:
            continue
        if not (from_ <= slot.start and slot.start <= search.deadline):
            continue
        if not is_open_throughout(slot.site.hours, slot.start, slot.end, slot.site.department):
            continue
        distance = _reachable(search, slot.site, slot.mode)
        if distance is None:
            continue
        score, terms = _score(slot.start - now, distance, slot.mode)
        found.append(
            Candidate(
                "slot",
                slot.professional,
                slot.site,
                slot.mode,
                slot.start,
                None,
                slot.slot_id,
                round(distance, 2),
                score,
                terms,
            )
        )
    for option in overflow:
        if option.professional.rpps in search.already_asked:
            continue
        distance = _reachable(search, option.site, "in_person")
        if distance is None:
            continue
        start = first_open_time(option.site.hours, from_, search.deadline, option.site.department)
        if start is None:
            continue
        if option.taken_on.get(start.astimezone(PARIS).date().isoformat(), 0) >= option.daily_cap:
            continue
        score, terms = _score(start - now, distance, "in_person")
        found.append(
            Candidate(
                "overflow",
                option.professional,
                option.site,
                "in_person",
                start,
                search.deadline,
                None,
                round(distance, 2),
                score,
                terms,
            )
        )
    found.sort(key=lambda c: (c.kind != "slot", c.score, c.start, c.professional.rpps, c.slot_id or ""))
    return found


def why_none(
    search: Search, now: datetime, lead: timedelta, hours: Sequence[WeeklyHours] = (REFERENCE_HOURS,)
) -> tuple[UnresolvedReason, str]:
    """The reason, in the contract's codes, why no candidate is left."""
    from_ = earliest_start(now, lead)
    if from_ >= search.deadline:
        return UnresolvedReason.DEADLINE_PASSED, (f"the deadline {search.deadline.isoformat()} cannot be met any more")
    if all(first_open_time(h, from_, search.deadline) is None for h in hours):
        return UnresolvedReason.OUTSIDE_OPENING_HOURS, (
            "no practice opening hours remain before the deadline: this falls to the PDSA "
            "(permanence des soins ambulatoires), the out-of-hours service"
        )
    if search.already_asked:
        return UnresolvedReason.ALL_DECLINED, (
            f"{len(search.already_asked)} professional(s) were asked and none accepted; nobody else is available"
        )
    return UnresolvedReason.NO_CANDIDATE_IN_RADIUS, (
        f"no free slot or willing professional within {search.radius_km:g} km before the deadline"
    )
