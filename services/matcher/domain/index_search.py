"""The best candidates for a search, walking the index's grid best-first (pure, no I/O): see
index.py for how the directory is arranged and why the walk may stop early."""

from __future__ import annotations

import heapq
import math
from bisect import bisect_left
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from services.common.clock import paris_week
from services.common.geo import distance_km
from services.matcher.domain import matching
from services.matcher.domain.opening_hours import Closure

if TYPE_CHECKING:
    from services.matcher.domain.index import Cell, DirectoryIndex

KM_PER_DEG_LAT = 111.195
LOWER_BOUND_SLACK = 0.995  # the cell distance bound is computed on a lat/lon box: keep it a bound


def candidates(
    index: DirectoryIndex,
    search: matching.Search,
    professions: tuple[str, ...],
    now: datetime,
    lead: timedelta,
    limit: int = 5,
) -> list[matching.Candidate]:
    """The best `limit` professionals (one candidate each): slots first, then overflow."""
    found = slot_candidates(index, search, professions, now, lead, limit)
    if len(found) < limit:
        others = {c.professional.rpps for c in found}
        found += overflow_candidates(index, search, professions, now, lead, limit - len(found), exclude=others)
    return found


def cells_in_reach(index: DirectoryIndex, search: matching.Search) -> Iterator[tuple[float, Cell]]:
    """Cells that may hold a site within the radius, with their nearest distance."""
    lat, lon, r = search.patient.lat, search.patient.lon, search.radius_km
    dlat = r / KM_PER_DEG_LAT
    widest = max(0.01, math.cos(math.radians(min(89.0, abs(lat) + dlat))))
    dlon = r / (KM_PER_DEG_LAT * widest)
    i0, j0 = index.cell(lat - dlat, lon - dlon)
    i1, j1 = index.cell(lat + dlat, lon + dlon)
    for i in range(i0, i1 + 1):
        lat_near = min(max(lat, i * index.cell_lat), (i + 1) * index.cell_lat)
        for j in range(j0, j1 + 1):
            lon_near = min(max(lon, j * index.cell_lon), (j + 1) * index.cell_lon)
            bound = distance_km(lat, lon, lat_near, lon_near) * LOWER_BOUND_SLACK
            if bound <= r:
                yield bound, (i, j)


Head = tuple[float, int, list[tuple[float, str]], int, float]  # bound, tie, cell's slots, position, distance bound


def _cell_heads(
    index: DirectoryIndex, search: matching.Search, professions: tuple[str, ...], t0: float, now_ts: float
) -> list[Head]:
    """A heap of each cell in reach's first slot from `t0`, by the lower bound of its score."""
    cells = list(cells_in_reach(index, search))
    heap: list[Head] = []
    for profession in professions:
        lists = [(bound, index.grid.get((profession, cell))) for bound, cell in cells]
        if search.teleconsultation_ok:
            lists.append((0.0, index.grid.get((f"tele:{profession}", (0, 0)))))
        for bound, cell_list in lists:
            if cell_list:
                i = bisect_left(cell_list, (t0, ""))
                if i < len(cell_list):
                    heapq.heappush(heap, (_bound(cell_list[i][0], now_ts, bound), len(heap), cell_list, i, bound))
    return heap


def slot_candidates(
    index: DirectoryIndex,
    search: matching.Search,
    professions: tuple[str, ...],
    now: datetime,
    lead: timedelta,
    limit: int,
) -> list[matching.Candidate]:
    """Listed slots are free or held, inside opening hours and of a listed profession: what is
    left to check per slot is who, how far, and how it scores (see matching.slot_candidate)."""
    t0 = matching.earliest_start(now, lead).timestamp()
    deadline, now_ts = search.deadline.timestamp(), now.timestamp()
    week = paris_week(now)
    heap = _cell_heads(index, search, professions, t0, now_ts)
    top = _Top(limit)
    patient, radius = search.patient, search.radius_km
    open_now = index.openings.at(search.asking_at)
    while heap:
        lower, tie, cell_list, i, bound = heapq.heappop(heap)
        if lower > top.kth:
            break
        start, slot_id = cell_list[i]
        if start > deadline:
            continue  # the rest of this cell is later still
        if i + 1 < len(cell_list):
            heapq.heappush(heap, (_bound(cell_list[i + 1][0], now_ts, bound), tie, cell_list, i + 1, bound))
        entry = index.slots[slot_id]
        rpps = entry.rpps
        if rpps in search.already_asked or rpps in search.busy or not top.could_improve(rpps, lower):
            continue
        pro = index.professionals[rpps]
        if matching.paused(pro, now) and (
            matching.away(pro, search, now) or start < matching.after_pause(pro, now, lead).timestamp()
        ):
            continue
        if entry.state != "free" and not search.include_held:
            continue  # held for another request's offer: it may come free again
        site = index.sites[(rpps, entry.site_id)]
        if not open_now(site):
            continue
        distance = distance_km(patient.lat, patient.lon, site.place.lat, site.place.lon)
        if entry.mode != "teleconsultation" and distance > radius:
            continue
        total, terms = matching.score(
            (start - now_ts) / 3600, distance, entry.mode, pro, search, index.load(rpps, week)
        )
        top.offer(
            matching.Candidate(
                "slot", pro, site, entry.mode, _dt(start), None, slot_id, round(distance, 2), total, terms
            )
        )
    return top.best()


def overflow_candidates(
    index: DirectoryIndex,
    search: matching.Search,
    professions: tuple[str, ...],
    now: datetime,
    lead: timedelta,
    limit: int,
    exclude: set[str],
) -> list[matching.Candidate]:
    week = paris_week(now)
    wait0 = (matching.earliest_start(now, lead) - now).total_seconds() / 3600
    cells = list(cells_in_reach(index, search))  # once, not once per profession
    groups = [(bound, index.overflow_sites.get((p, cell), set())) for p in professions for bound, cell in cells]
    if search.teleconsultation_ok:
        groups += [(0.0, index.tele_overflow_sites.get(p, set())) for p in professions]
    groups.sort(key=lambda g: g[0])
    top = _Top(limit)
    opening = _memo_opening_days(matching.earliest_start(now, lead), search.deadline)
    for bound, keys in groups:
        if wait0 + bound / matching.KM_PER_HOUR > top.kth:
            break
        for rpps, site_id in keys:
            if rpps in exclude:
                continue
            pro, site = index.professionals[rpps], index.sites[(rpps, site_id)]
            taken = index.overflow_taken.get(rpps, {})
            candidate = matching.overflow_candidate(
                matching.OverflowOffer(pro, site, taken),
                search,
                professions,
                now,
                lead,
                index.load(rpps, week),
                opening,
            )
            if candidate is not None:
                top.offer(candidate)
    return top.best()


class _Top:
    """The best candidate of each professional, keeping only the `limit` best professionals."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.by_rpps: dict[str, matching.Candidate] = {}
        self.kth = math.inf  # the score to beat once `limit` professionals are in

    def could_improve(self, rpps: str, lower_bound: float) -> bool:
        kept = self.by_rpps.get(rpps)
        return kept is None or lower_bound <= kept.score

    def offer(self, candidate: matching.Candidate) -> None:
        rpps = candidate.professional.rpps
        kept = self.by_rpps.get(rpps)
        if kept is not None and kept.order() <= candidate.order():
            return
        self.by_rpps[rpps] = candidate
        if len(self.by_rpps) > self.limit:
            worst = max(self.by_rpps.values(), key=matching.Candidate.order)
            del self.by_rpps[worst.professional.rpps]
        if len(self.by_rpps) == self.limit:
            self.kth = max(c.score for c in self.by_rpps.values())

    def best(self) -> list[matching.Candidate]:
        return sorted(self.by_rpps.values(), key=matching.Candidate.order)


def _bound(start: float, now: float, distance_bound: float) -> float:
    return (start - now) / 3600 + distance_bound / matching.KM_PER_HOUR


def _dt(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def _memo_opening_days(after: datetime, before: datetime) -> Callable[[matching.Site], list[datetime]]:
    """Most sites share their hours: work out each distinct set of hours once per search."""
    seen: dict[tuple[int, str | None, tuple[Closure, ...]], list[datetime]] = {}

    def days(site: matching.Site) -> list[datetime]:
        key = (id(site.hours), site.department, site.closures)
        if key not in seen:
            seen[key] = matching.opening_days(site, after, before)
        return seen[key]

    return days
