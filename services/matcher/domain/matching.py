"""Who to ask for a request: the rules of candidate search and ranking (pure).

Values in, decisions out; the caller passes `now`. `rank()` states the rules plainly over
every directory entry; `index.DirectoryIndex` finds the same best candidates fast, and the
tests check that both agree.

Ranking: a published slot always comes before asking a professional to add a patient to a
full day (overflow). Within a kind, the lowest score wins; the score is in hours:
- wait_hours: from now to the appointment;
- travel_hours_equiv: distance / KM_PER_HOUR (nothing for a teleconsultation);
- load: LOAD_HOURS_PER_PATIENT for each SAS patient the professional already took this week,
  so that near-equal candidates share the load instead of the nearest always being asked;
- outside_territory: OUTSIDE_TERRITORY_HOURS when the patient's commune belongs to a CPTS and
  the professional to another one (the patient's own CPTS comes first).
Each candidate is the best option of one professional; one offer per professional at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from services.common.clock import PARIS
from services.common.geo import distance_km
from services.matcher.domain.opening_hours import (
    REFERENCE_HOURS,
    Closure,
    WeeklyHours,
    first_open_time,
    is_open_throughout,
    open_intervals,
)

DEFAULT_RADIUS_KM = 30.0
KM_PER_HOUR = 10.0  # one hour of waiting weighs as much as 10 km of travel
LOAD_HOURS_PER_PATIENT = 0.1
OUTSIDE_TERRITORY_HOURS = 0.5


class UnresolvedReason(StrEnum):
    NO_CANDIDATE_IN_RADIUS = "no_candidate_in_radius"
    OUTSIDE_OPENING_HOURS = "outside_opening_hours"
    ALL_DECLINED = "all_declined"
    DEADLINE_CANNOT_BE_MET = "deadline_cannot_be_met"
    CANDIDATES_BUSY = "candidates_busy"  # only when the policy does not wait (today's behaviour, simulated)
    CANCELLED = "cancelled"


def earliest_start(now: datetime, lead: timedelta) -> datetime:
    return now.astimezone(UTC) + lead


def paris_day(at: datetime) -> str:
    return at.astimezone(PARIS).date().isoformat()


@dataclass(frozen=True, slots=True)
class Place:
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Professional:
    rpps: str
    name: str
    profession: str
    email: str | None = None
    phone: str | None = None
    cpts_id: str | None = None
    accepts_overflow: bool = False
    overflow_daily_cap: int = 0
    teleconsultation: bool = False  # offers overflow teleconsultations
    active: bool = True
    paused_until: datetime | None = None  # asked for nothing before then (the professional's pause)
    no_overflow_on: str | None = None  # Paris day (ISO) without extra patients


@dataclass(frozen=True, slots=True)
class Site:
    site_id: str
    name: str
    commune_insee: str | None
    place: Place
    department: str | None = None
    hours: WeeklyHours = REFERENCE_HOURS
    closures: tuple[Closure, ...] = ()
    active: bool = True


@dataclass(frozen=True, slots=True)
class FreeSlot:
    slot_id: str
    professional: Professional
    site: Site
    start: datetime
    end: datetime
    mode: str  # in_person | teleconsultation
    held: bool = False  # held for an offer pending with another request


@dataclass(frozen=True, slots=True)
class OverflowOffer:
    """A professional who accepts extra patients, at one of their sites, and their load."""

    professional: Professional
    site: Site
    taken_on: dict[str, int] = field(default_factory=dict)  # Paris date (ISO) -> overflow patients


@dataclass(frozen=True, kw_only=True)
class Search:
    request_id: str
    patient: Place
    deadline: datetime
    teleconsultation_ok: bool = False
    radius_km: float = DEFAULT_RADIUS_KM
    patient_cpts: str | None = None  # the CPTS whose territory holds the patient's commune
    department: str | None = None  # the patient's, for public holidays when nobody is found
    already_asked: frozenset[str] = frozenset()  # RPPS asked before for this request
    busy: frozenset[str] = frozenset()  # RPPS with an offer pending for another request
    include_held: bool = False  # count slots held for other requests' offers (who could free up)
    asking_at: datetime | None = None  # only professionals whose site is open then (they can answer)
    back_by: datetime | None = None  # whom to wait for: those on pause count if back by then


@dataclass(frozen=True, slots=True)
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

    def order(self) -> tuple[bool, float, datetime, str, str]:
        return (self.kind != "slot", self.score, self.start, self.professional.rpps, self.slot_id or "")


def score(
    wait_hours: float, distance: float, mode: str, pro: Professional, search: Search, week_load: int
) -> tuple[float, dict[str, float]]:
    """Lower is better; every term is in hours and shown with the decision."""
    terms = {
        "wait_hours": round(wait_hours, 3),
        "travel_hours_equiv": 0.0 if mode == "teleconsultation" else round(distance / KM_PER_HOUR, 3),
    }
    if week_load:
        terms["load"] = round(LOAD_HOURS_PER_PATIENT * week_load, 3)
    if search.patient_cpts and pro.cpts_id != search.patient_cpts:
        terms["outside_territory"] = OUTSIDE_TERRITORY_HOURS
    return round(sum(terms.values()), 3), terms


def reachable(search: Search, site: Site, mode: str) -> float | None:
    """The distance to the site, or None when it is out of reach for this mode."""
    d = distance_km(search.patient.lat, search.patient.lon, site.place.lat, site.place.lon)
    if mode == "teleconsultation":
        return d if search.teleconsultation_ok else None
    return d if d <= search.radius_km else None


def is_open_at(site: Site, at: datetime) -> bool:
    """Is the site open at this instant (is the professional at work to answer)?"""
    return first_open_time(site.hours, at, at + timedelta(seconds=1), site.department, site.closures) == at


def paused(pro: Professional, now: datetime) -> bool:
    """A professional on pause is asked nothing, neither slots nor extra patients."""
    return pro.paused_until is not None and now < pro.paused_until


def away(pro: Professional, search: Search, now: datetime) -> bool:
    """On pause now, and (when looking for whom to wait for) not back by `search.back_by`."""
    if not paused(pro, now):
        return False
    return search.back_by is None or pro.paused_until is None or pro.paused_until > search.back_by


def after_pause(pro: Professional, now: datetime, lead: timedelta) -> datetime:
    """The earliest an appointment can be offered for: `lead` after now, or after the pause."""
    start = earliest_start(now, lead)
    if paused(pro, now) and pro.paused_until is not None:
        start = max(start, pro.paused_until + lead)
    return start


def askable(pro: Professional, site: Site, search: Search, professions: tuple[str, ...], now: datetime) -> bool:
    return (
        pro.active
        and not away(pro, search, now)
        and site.active
        and pro.profession in professions
        and pro.rpps not in search.already_asked
        and pro.rpps not in search.busy
        and (search.asking_at is None or is_open_at(site, search.asking_at))
    )


def slot_candidate(
    slot: FreeSlot, search: Search, professions: tuple[str, ...], now: datetime, lead: timedelta, week_load: int
) -> Candidate | None:
    pro, site = slot.professional, slot.site
    if slot.held and not search.include_held:
        return None
    if not askable(pro, site, search, professions, now):
        return None
    if not after_pause(pro, now, lead) <= slot.start <= search.deadline:
        return None
    if not is_open_throughout(site.hours, slot.start, slot.end, site.department, site.closures):
        return None
    distance = reachable(search, site, slot.mode)
    if distance is None:
        return None
    total, terms = score((slot.start - now).total_seconds() / 3600, distance, slot.mode, pro, search, week_load)
    return Candidate("slot", pro, site, slot.mode, slot.start, None, slot.slot_id, round(distance, 2), total, terms)


def opening_days(site: Site, after: datetime, before: datetime) -> list[datetime]:
    """The first open instant of each day the site opens in [after, before)."""
    firsts: dict[str, datetime] = {}
    for a, _ in open_intervals(site.hours, after, before, site.department, site.closures):
        firsts.setdefault(paris_day(a), a)
    return list(firsts.values())


def overflow_candidate(
    option: OverflowOffer,
    search: Search,
    professions: tuple[str, ...],
    now: datetime,
    lead: timedelta,
    week_load: int,
    days: Callable[[Site], list[datetime]] | None = None,
) -> Candidate | None:
    """An extra patient at the earliest open time of the first day the professional's cap allows."""
    pro, site = option.professional, option.site
    if not (pro.accepts_overflow and pro.overflow_daily_cap > 0 and askable(pro, site, search, professions, now)):
        return None
    mode = "in_person"
    distance = reachable(search, site, mode)
    if distance is None and pro.teleconsultation:
        mode, distance = "teleconsultation", reachable(search, site, "teleconsultation")
    if distance is None:
        return None
    firsts = days(site) if days else opening_days(site, earliest_start(now, lead), search.deadline)
    if paused(pro, now):  # back from a pause before the deadline (see Search.back_by)
        firsts = [t for t in firsts if t >= after_pause(pro, now, lead)]
    start = next((t for t in firsts if overflow_room(pro, paris_day(t), option.taken_on.get(paris_day(t), 0))), None)
    if start is None:
        return None
    total, terms = score((start - now).total_seconds() / 3600, distance, mode, pro, search, week_load)
    return Candidate("overflow", pro, site, mode, start, search.deadline, None, round(distance, 2), total, terms)


def overflow_room(pro: Professional, day: str, taken: int) -> bool:
    """Can the professional take one more extra patient on this Paris day?"""
    return day != pro.no_overflow_on and taken < pro.overflow_daily_cap


def best_per_professional(candidates: Iterable[Candidate]) -> list[Candidate]:
    best: dict[str, Candidate] = {}
    for c in candidates:
        kept = best.get(c.professional.rpps)
        if kept is None or c.order() < kept.order():
            best[c.professional.rpps] = c
    return sorted(best.values(), key=Candidate.order)


def rank(
    search: Search,
    slots: Iterable[FreeSlot],
    overflow: Iterable[OverflowOffer],
    now: datetime,
    lead: timedelta = timedelta(minutes=30),
    professions: tuple[str, ...] = ("general_practitioner",),
    week_load: dict[str, int] | None = None,
) -> list[Candidate]:
    """Every professional who could see the patient before the deadline, best first
    (the reference statement of the rules, over every entry)."""
    load = week_load or {}
    found = [
        c for s in slots if (c := slot_candidate(s, search, professions, now, lead, load.get(s.professional.rpps, 0)))
    ]
    found += [
        c
        for o in overflow
        if (c := overflow_candidate(o, search, professions, now, lead, load.get(o.professional.rpps, 0)))
    ]
    return best_per_professional(found)


def offer_still_possible(pro: Professional, site: Site, kind: str, start: datetime, end: datetime) -> str | None:
    """After a directory change: why a pending offer can no longer be kept, or None.

    `end` is the slot's end, or for an overflow offer the end of the window to choose in.
    """
    if not pro.active:
        return "the professional is no longer available"
    if not site.active:
        return "the practice site was removed"
    if kind == "slot" and not is_open_throughout(site.hours, start, end, site.department, site.closures):
        return "the site is now closed at the time of the slot"
    if kind == "overflow" and first_open_time(site.hours, start, end, site.department, site.closures) is None:
        return "the site is now closed during the whole window"
    return None


def answer_by(now: datetime, timeout: timedelta, deadline: datetime, site: Site) -> datetime:
    """When an unanswered offer lapses: after the territory's time limit, but never past the
    site's closing time nor the deadline. Sent while the site is closed, the time limit runs
    from its next opening, so that an offer made at night can be answered in the morning."""
    now = now.astimezone(UTC)
    opening = next(open_intervals(site.hours, now, deadline, site.department, site.closures), None)
    if opening is None:
        return min(now + timeout, deadline)
    opens, closes = opening
    return min((opens if opens > now else now) + timeout, closes, deadline)


def choices(site: Site, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The open periods in which an extra patient may be seen (the professional picks a time)."""
    return list(open_intervals(site.hours, start, end, site.department, site.closures))
