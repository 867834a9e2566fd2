"""A demo territory for `make run` on an empty database (skip it with DEMO_DATA=0).

A rural CPTS in the south of Deux-Sèvres (the 81 communes nearest Melle, radius 30 km),
eight professionals and free slots over the next two working days, inside opening hours.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import structlog

from services.common import geo
from services.common.clock import PARIS
from services.common.holidays import is_public_holiday
from services.matcher.directory import Directory
from services.matcher.directory.professionals import SiteInput
from services.matcher.domain.opening_hours import REFERENCE_HOURS, is_open_throughout

log = structlog.get_logger(__name__)

CPTS_ID = "cpts-sud-deux-sevres"
CENTRE = "79174"  # Melle

# rpps, name, profession, commune, accepts overflow (daily cap)
PROFESSIONALS = [
    ("10000000001", "Dr Claire Moreau", "general_practitioner", "79174", 2),
    ("10000000002", "Dr Paul Girard", "general_practitioner", "79061", 0),
    ("10000000003", "Dr Inès Bernard", "general_practitioner", "79083", 1),
    ("10000000004", "Dr Marc Petit", "general_practitioner", "79148", 0),
    ("10000000005", "Dr Lucie Fontaine", "general_practitioner", "79057", 2),
    ("10000000006", "Dr Hugo Lambert", "dentist", "79174", 0),
    ("10000000007", "Sophie Renard, pharmacienne", "pharmacist", "79061", 0),
    ("10000000008", "Julien Garnier, kinésithérapeute", "physiotherapist", "79174", 0),
]
SLOT_TIMES = (time(10, 0), time(15, 30))


def territory_communes(count: int = 81) -> list[str]:
    centre = geo.communes()[CENTRE]
    same_dep = [c for c in geo.communes().values() if c.department == "79" and c.current == c.insee]
    same_dep.sort(key=lambda c: geo.distance_km(centre.lat, centre.lon, c.lat, c.lon))
    return sorted(c.insee for c in same_dep[:count])


def working_days(start: date, count: int) -> list[date]:
    days: list[date] = []
    day = start
    while len(days) < count:
        day += timedelta(days=1)
        if REFERENCE_HOURS.days[day.weekday()] and not is_public_holiday(day):
            days.append(day)
    return days


async def load_demo(directory: Directory, now: datetime) -> int:
    """Fill an empty directory; returns the number of slots published. One process loads it,
    the others (of the same deployment, starting at once) find it there."""
    async with directory.territories.storage.exclusive("demo"):
        if not await directory.territories.none_yet():
            return 0
        return await _load(directory, now)


async def _load(directory: Directory, now: datetime) -> int:
    # a made-up FINESS number (the national platform identifies a CPTS by it)
    await directory.territories.put(
        CPTS_ID, "CPTS Sud Deux-Sèvres (démo)", territory_communes(), 30.0, finess="790099999"
    )
    days = [now.astimezone(PARIS).date(), *working_days(now.astimezone(PARIS).date(), 2)]
    slots = 0
    for rpps, name, profession, insee, cap in PROFESSIONALS:
        commune = geo.communes()[insee]
        site = SiteInput(
            f"site-{rpps[-2:]}", f"Cabinet de {commune.name}", insee, commune.department, commune.lat, commune.lon, None
        )
        await directory.professionals.put(
            rpps,
            {
                "name": name,
                "profession": profession,
                "cpts_id": CPTS_ID,
                "sas_participation": "via_cpts",
                "accepts_overflow": cap > 0,
                "overflow_daily_cap": cap,
                "email": f"{rpps}@demo.example.org",
                "phone": None,
            },
            [site],
        )
        for day in days:
            for at in SLOT_TIMES:
                start = datetime.combine(day, at, tzinfo=PARIS)
                end = start + timedelta(minutes=20)
                if start <= now or not is_open_throughout(REFERENCE_HOURS, start, end, commune.department):
                    continue
                await directory.slots.put(
                    f"demo-{rpps[-2:]}-{start:%Y%m%dT%H%M}", rpps, site.site_id, start, end, "in_person"
                )
                slots += 1
    log.info("demo territory loaded", cpts_id=CPTS_ID, professionals=len(PROFESSIONALS), slots=slots)
    return slots
