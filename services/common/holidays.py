"""French public holidays, with the Alsace–Moselle local law (reference data every service may use)."""

from __future__ import annotations

from datetime import date
from functools import cache

import holidays

# Departments under the Alsace–Moselle local law get Good Friday and 26 December.
ALSACE_MOSELLE = {"57", "67", "68"}


@cache
def _holidays(year: int, alsace_moselle: bool) -> frozenset[date]:
    calendar = holidays.country_holidays("FR", years=year, subdiv="57" if alsace_moselle else None)
    return frozenset(calendar)


def is_public_holiday(day: date, department: str | None = None) -> bool:
    return day in _holidays(day.year, department in ALSACE_MOSELLE)
