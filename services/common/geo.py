"""French communes and great-circle distances (reference data, no I/O beyond the shipped table).

The table `data/communes.csv.gz` is built by `scripts/build_communes.py` from INSEE open data.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

COMMUNES_FILE = Path(__file__).parent / "data" / "communes.csv.gz"
EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True, slots=True)
class Commune:
    insee: str
    name: str
    department: str
    lat: float
    lon: float
    population: int
    current: str  # the commune it belongs to today (itself unless merged)
    postcodes: tuple[str, ...] = ()


@cache
def communes() -> dict[str, Commune]:
    text = gzip.decompress(COMMUNES_FILE.read_bytes()).decode()
    return {
        r["insee"]: Commune(
            r["insee"],
            r["name"],
            r["dep"],
            float(r["lat"]),
            float(r["lon"]),
            int(r["population"]),
            r["current"],
            tuple(r.get("postcodes", "").split()),
        )
        for r in csv.DictReader(io.StringIO(text))
    }


def commune(insee: str) -> Commune | None:
    return communes().get(insee)


def _folded(text: str) -> str:
    """Lower case, no accents, hyphens and apostrophes as spaces: `Saint-Étienne` ~ `saint etienne`."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return " ".join(re.sub(r"[-'’]", " ", plain).split())


@cache
def _by_name() -> list[tuple[str, Commune]]:
    """Today's communes by folded name, the most populated first (a name shared by several:
    the larger one is likelier)."""
    current = [c for c in communes().values() if c.current == c.insee]
    return [(_folded(c.name), c) for c in sorted(current, key=lambda c: -c.population)]


def find_communes(query: str, limit: int = 10) -> list[Commune]:
    """Communes as a regulator types them: an INSEE code, a postcode, or the start of a name
    (case, accents and hyphens aside; `st` for `saint`); today's communes only."""
    query = query.strip()[:100]
    if re.fullmatch(r"[0-9][0-9AB][0-9]{3}", query.upper()):
        found = communes().get(query.upper())
        exact = [communes()[found.current]] if found else []
        by_post = [c for _, c in _by_name() if query in c.postcodes]
        return list(dict.fromkeys(exact + by_post))[:limit]
    wanted = re.sub(r"^(st|ste)\b", lambda m: "saint" if m.group(1) == "st" else "sainte", _folded(query))
    if not wanted:
        return []
    starts = [c for name, c in _by_name() if name.startswith(wanted)]
    exact = [c for c in starts if _folded(c.name) == wanted]
    return list(dict.fromkeys(exact + starts))[:limit]


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance in kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


@cache
def _grid() -> dict[tuple[int, int], list[Commune]]:
    """Current communes by tenth of a degree (about 11 km by 8 km), for `nearest_commune`."""
    cells: dict[tuple[int, int], list[Commune]] = {}
    for c in communes().values():
        if c.current == c.insee:
            cells.setdefault((math.floor(c.lat * 10), math.floor(c.lon * 10)), []).append(c)
    return cells


def nearest_commune(lat: float, lon: float, within_km: float = 30.0) -> Commune | None:
    """The commune whose centre is nearest (a request given by coordinates keeps a commune once
    its coordinates are erased); None far from any French commune."""
    grid, row, column = _grid(), math.floor(lat * 10), math.floor(lon * 10)
    best: tuple[float, Commune] | None = None
    for reach in range(0, 4):  # rings of cells around the point, until a commune is found
        ring = [
            (row + dr, column + dc)
            for dr in range(-reach, reach + 1)
            for dc in range(-reach, reach + 1)
            if max(abs(dr), abs(dc)) == reach
        ]
        for cell in ring:
            for c in grid.get(cell, ()):
                d = distance_km(lat, lon, c.lat, c.lon)
                if best is None or d < best[0]:
                    best = (d, c)
        if best is not None and reach >= 1:
            break  # one ring beyond the first find: a nearer centre may sit just across a cell's edge
    return best[1] if best is not None and best[0] <= within_km else None
