"""The directory in memory, arranged to find the best candidates fast (pure, no I/O).

Free slots sit in a grid of cells (about CELL_KM wide) per profession, each cell's slots sorted
by start. A search walks the cells in reach best-first: every slot of a cell scores at least
`wait + (the cell's nearest distance) / KM_PER_HOUR`, so slots are taken from a heap ordered by
that lower bound and the walk stops once it cannot beat the k-th best professional found.
Only the slots that could win are looked at, however many the directory holds.

The index is a cache: PostgreSQL decides who gets a slot (see repository.claim). Each entry
carries the revision of the row it mirrors; an older revision never overwrites a newer one,
so changes may arrive in any order and more than once.
"""

from __future__ import annotations

import contextlib
import math
from bisect import bisect_left, insort
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from services.common.geo import distance_km
from services.common.motives import Step
from services.matcher.domain import index_search, matching
from services.matcher.domain.index_search import KM_PER_DEG_LAT
from services.matcher.domain.opening_hours import Closure, is_open_throughout

CELL_KM = 10.0

Cell = tuple[int, int]
SiteKey = tuple[str, str]  # (rpps, site_id)


@dataclass(frozen=True)
class Territory:
    cpts_id: str
    name: str
    communes: frozenset[str]
    radius_km: float = matching.DEFAULT_RADIUS_KM
    offer_timeout_minutes: float = 15.0
    parallel_offers: int = 1


@dataclass(slots=True)
class SlotEntry:
    slot_id: str
    rpps: str
    site_id: str
    start: float  # POSIX timestamps: compared millions of times
    end: float
    mode: str
    state: str
    revision: int
    listed: Cell | None = None  # where it sits in the grid (None when not listed)


class Openings:
    """Whether sites are open, remembered: sites share their hours, slots share their times,
    and requests arriving in the same minute share the answer."""

    def __init__(self) -> None:
        self._open: dict[tuple[int, str | None, tuple[Closure, ...], float, float], bool] = {}
        self._open_now: dict[tuple[int, str | None, tuple[Closure, ...], float], bool] = {}
        self._open_now_minute = -1.0

    def throughout(self, site: matching.Site, start: float, end: float) -> bool:
        """Opening hours of a slot, remembered: sites share hours and slots share times."""
        key = (id(site.hours), site.department, site.closures, start, end)
        found = self._open.get(key)
        if found is None:
            if len(self._open) > 200_000:
                self._open.clear()
            found = is_open_throughout(site.hours, _dt(start), _dt(end), site.department, site.closures)
            self._open[key] = found
        return found

    def at(self, at: datetime | None) -> Callable[[matching.Site], bool]:
        """Is a site open at `at` (always, when `at` is None)? Remembered: sites share their hours,
        and requests arriving in the same minute share the answer."""
        if at is None:
            return lambda _: True
        minute = at.timestamp() // 60
        if minute != self._open_now_minute:
            self._open_now.clear()
            self._open_now_minute = minute

        def is_open(site: matching.Site) -> bool:
            key = (id(site.hours), site.department, site.closures, at.timestamp())
            found = self._open_now.get(key)
            if found is None:
                found = self._open_now[key] = matching.is_open_at(site, at)
            return found

        return is_open


@dataclass
class DirectoryIndex:
    cell_km: float = CELL_KM
    professionals: dict[str, matching.Professional] = field(default_factory=dict)
    sites: dict[SiteKey, matching.Site] = field(default_factory=dict)
    slots: dict[str, SlotEntry] = field(default_factory=dict)
    territories: dict[str, Territory] = field(default_factory=dict)
    week_load: dict[tuple[str, str], int] = field(default_factory=dict)  # (rpps, ISO week) -> SAS patients
    overflow_taken: dict[str, dict[str, int]] = field(default_factory=dict)  # rpps -> Paris day -> count
    busy: set[str] = field(default_factory=set)  # professionals with a pending offer
    revisions: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.cell_lat = self.cell_km / KM_PER_DEG_LAT
        self.cell_lon = self.cell_km / (KM_PER_DEG_LAT * math.cos(math.radians(46.5)))
        # (profession, cell) -> [(start, slot_id)] sorted; tele slots under the cell (0, 0) of "tele:<p>"
        self.grid: dict[tuple[str, Cell], list[tuple[float, str]]] = defaultdict(list)
        self.overflow_sites: dict[tuple[str, Cell], set[SiteKey]] = defaultdict(set)
        self.tele_overflow_sites: dict[str, set[SiteKey]] = defaultdict(set)
        self._slots_of: dict[str, set[str]] = defaultdict(set)
        self._sites_of: dict[str, set[str]] = defaultdict(set)
        self._commune_cpts: dict[str, str] = {}
        self.openings = Openings()
        self._bulk = False

    @contextlib.contextmanager
    def bulk(self) -> Iterator[None]:
        """Load many slots at once: append now, sort each cell once at the end."""
        self._bulk = True
        try:
            yield
        finally:
            self._bulk = False
            for cell in self.grid.values():
                cell.sort()

    # --- keeping it current --------------------------------------------------------------

    def _newer(self, key: str, revision: int) -> bool:
        if revision <= self.revisions.get(key, -1):
            return False
        self.revisions[key] = revision
        return True

    def put_territory(self, territory: Territory, revision: int) -> None:
        if not self._newer(f"territory:{territory.cpts_id}", revision):
            return
        old = self.territories.get(territory.cpts_id)
        for commune in old.communes if old else ():
            if self._commune_cpts.get(commune) == territory.cpts_id:
                del self._commune_cpts[commune]
        self.territories[territory.cpts_id] = territory
        for commune in territory.communes:
            self._commune_cpts.setdefault(commune, territory.cpts_id)

    def territory_of(self, commune_insee: str | None) -> Territory | None:
        cpts = self._commune_cpts.get(commune_insee or "")
        return self.territories.get(cpts) if cpts else None

    def put_professional(self, pro: matching.Professional, sites: list[matching.Site], revision: int) -> None:
        """Replace a professional and all their sites (a site left out is inactive)."""
        if not self._newer(f"professional:{pro.rpps}", revision):
            return
        for site_id in self._sites_of[pro.rpps]:
            self._unlist_overflow((pro.rpps, site_id))
        self.professionals[pro.rpps] = pro
        for site in sites:
            self.sites[(pro.rpps, site.site_id)] = site
            self._sites_of[pro.rpps].add(site.site_id)
            self._list_overflow((pro.rpps, site.site_id))
        for slot_id in list(self._slots_of[pro.rpps]):  # hours, closures or activity may have changed
            self._relist(self.slots[slot_id])

    def put_slot(
        self,
        slot_id: str,
        rpps: str,
        site_id: str,
        start: datetime,
        end: datetime,
        mode: str,
        state: str,
        revision: int,
    ) -> None:
        entry = self.slots.get(slot_id)
        if entry is not None:
            if revision <= entry.revision:
                return  # a slot's revision lives on its entry: a million dict keys would cost memory
            self._unlist(entry)
            if entry.rpps != rpps:
                self._slots_of[entry.rpps].discard(slot_id)
        entry = SlotEntry(slot_id, rpps, site_id, start.timestamp(), end.timestamp(), mode, state, revision)
        self.slots[slot_id] = entry
        self._slots_of[rpps].add(slot_id)
        self._relist(entry)

    def mark_taken(self, slot_id: str) -> None:
        """Someone else holds this slot (our copy was stale): stop offering it until told."""
        entry = self.slots.get(slot_id)
        if entry is not None:
            entry.state = "held"

    def drop_past(self, now: datetime) -> int:
        """Forget slots that started before `now` (they can never be offered again)."""
        cutoff = now.timestamp()
        gone = [s for s in self.slots.values() if s.start < cutoff]
        for entry in gone:
            self._unlist(entry)
            self._slots_of[entry.rpps].discard(entry.slot_id)
            del self.slots[entry.slot_id]
        return len(gone)

    def cell(self, lat: float, lon: float) -> Cell:
        return math.floor(lat / self.cell_lat), math.floor(lon / self.cell_lon)

    def _relist(self, entry: SlotEntry) -> None:
        self._unlist(entry)
        pro = self.professionals.get(entry.rpps)
        site = self.sites.get((entry.rpps, entry.site_id))
        if entry.state not in ("free", "held") or pro is None or site is None or not (pro.active and site.active):
            return
        if not self.openings.throughout(site, entry.start, entry.end):
            return
        cell = (0, 0) if entry.mode == "teleconsultation" else self.cell(site.place.lat, site.place.lon)
        key = (("tele:" if entry.mode == "teleconsultation" else "") + pro.profession, cell)
        if self._bulk:
            self.grid[key].append((entry.start, entry.slot_id))
        else:
            insort(self.grid[key], (entry.start, entry.slot_id))
        entry.listed = cell

    def _unlist(self, entry: SlotEntry) -> None:
        if entry.listed is None:
            return
        pro = self.professionals.get(entry.rpps)
        if pro is not None:
            key = (("tele:" if entry.mode == "teleconsultation" else "") + pro.profession, entry.listed)
            cell = self.grid.get(key, [])
            i = bisect_left(cell, (entry.start, entry.slot_id))
            if i < len(cell) and cell[i] == (entry.start, entry.slot_id):
                del cell[i]
        entry.listed = None

    def _list_overflow(self, key: SiteKey) -> None:
        pro, site = self.professionals[key[0]], self.sites[key]
        if pro.active and site.active and pro.accepts_overflow and pro.overflow_daily_cap > 0:
            self.overflow_sites[(pro.profession, self.cell(site.place.lat, site.place.lon))].add(key)
            if pro.teleconsultation:
                self.tele_overflow_sites[pro.profession].add(key)

    def _unlist_overflow(self, key: SiteKey) -> None:
        pro, site = self.professionals[key[0]], self.sites[key]
        self.overflow_sites[(pro.profession, self.cell(site.place.lat, site.place.lon))].discard(key)
        self.tele_overflow_sites[pro.profession].discard(key)

    # --- searching -----------------------------------------------------------------------

    def within_reach(self, professionals: set[str], search: matching.Search) -> bool:
        """Could any of these professionals be a candidate for this search, as far as distance
        goes? (A change to anyone else cannot help a waiting request.)"""
        if search.teleconsultation_ok:
            return bool(professionals)
        patient = search.patient
        for rpps in professionals:
            for site_id in self._sites_of.get(rpps, ()):
                site = self.sites[(rpps, site_id)]
                if distance_km(patient.lat, patient.lon, site.place.lat, site.place.lon) <= search.radius_km:
                    return True
        return False

    def load(self, rpps: str, week: str) -> int:
        """SAS patients the professional has in that ISO week (matching.score spreads the load)."""
        return self.week_load.get((rpps, week), 0)

    def candidates(
        self, search: matching.Search, professions: tuple[str, ...], now: datetime, lead: timedelta, limit: int = 5
    ) -> list[matching.Candidate]:
        """The best `limit` professionals (one candidate each): slots first, then overflow
        (the walk itself is in index_search.py)."""
        return index_search.candidates(self, search, professions, now, lead, limit)


def _dt(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def candidates_by_step(
    index: DirectoryIndex, search: matching.Search, steps: list[Step], now: datetime, lead: timedelta, limit: int
) -> Iterator[tuple[Step, list[matching.Candidate]]]:
    """For each step of the motive (in order), its best candidates, when it has any."""
    for step in steps:
        found = index.candidates(search, step.professions, now, lead, limit)
        if found:
            yield step, found
