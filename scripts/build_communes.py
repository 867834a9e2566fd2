"""Rebuild `services/common/data/communes.csv.gz` from the INSEE compilation in shared/data.

One row per INSEE code: its name, department, centre (lat, lon), population, `current`, the
code of the commune it belongs to today (itself, or the commune a former one merged into), and
its postcodes (space-separated: the regulators' console finds a commune by one).
Paris, Lyon and Marseille get a row of their own at the mean of their arrondissements.
A commune without coordinates takes its department's centre.

    python scripts/build_communes.py [path/to/communes.csv] [path/to/departements.csv]
"""

from __future__ import annotations

import csv
import gzip
import io
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "services" / "common" / "data" / "communes.csv.gz"
CITIES_WITH_ARRONDISSEMENTS = {"75056": "Paris", "69123": "Lyon", "13055": "Marseille"}


def build(communes_csv: Path, departements_csv: Path) -> list[dict[str, str]]:
    dep_centres = {
        r["insee_dep"]: (r["lat"], r["lng"]) for r in csv.DictReader(departements_csv.open(encoding="utf-8"))
    }
    rows = list(csv.DictReader(communes_csv.open(encoding="utf-8")))
    out: dict[str, dict[str, str]] = {}
    by_code = defaultdict(list)
    for r in rows:
        by_code[r["insee_com"]].append(r)

    def postcodes(code: str) -> str:
        return " ".join(sorted({r["code_postal"].zfill(5) for r in by_code[code] if r["code_postal"]}))

    def coords(code: str, dep: str) -> tuple[str, str]:
        for r in by_code[code]:
            if r["lat"] and r["lng"]:
                return r["lat"], r["lng"]
        return dep_centres[dep]

    for r in rows:  # current communes and arrondissements first
        if r["commune_type"] in ("COM", "ARM") and r["insee_com"] not in out:
            lat, lon = coords(r["insee_com"], r["insee_dep"])
            out[r["insee_com"]] = {
                "insee": r["insee_com"],
                "name": r["commune_article"] or r["commune"],
                "dep": r["insee_dep"],
                "lat": lat,
                "lon": lon,
                "population": r["population_2021"] or "0",
                "current": r["insee_com"],
                "postcodes": postcodes(r["insee_com"]),
            }
    for r in rows:  # former communes: their own centre, attached to today's commune
        code, parent = r["insee_com"], r["insee_parente"]
        if r["commune_type"] == "COMD" and code not in out and parent in out:
            lat, lon = (r["lat"], r["lng"]) if r["lat"] and r["lng"] else (out[parent]["lat"], out[parent]["lon"])
            out[code] = {
                "insee": code,
                "name": r["commune_article"] or r["commune"],
                "dep": out[parent]["dep"],
                "lat": lat,
                "lon": lon,
                "population": "0",
                "current": parent,
                "postcodes": postcodes(code),
            }
    for code, name in CITIES_WITH_ARRONDISSEMENTS.items():
        arms = [
            v
            for k, v in out.items()
            if k[:2] == code[:2] and v["name"].startswith(name + " ") and "Arrondissement" in v["name"]
        ]
        lat = sum(float(a["lat"]) for a in arms) / len(arms)
        lon = sum(float(a["lon"]) for a in arms) / len(arms)
        out[code] = {
            "insee": code,
            "name": name,
            "dep": arms[0]["dep"],
            "lat": f"{lat:.5f}",
            "lon": f"{lon:.5f}",
            "population": str(sum(int(a["population"]) for a in arms)),
            "current": code,
            "postcodes": " ".join(sorted({p for a in arms for p in a["postcodes"].split()})),
        }
    return sorted(out.values(), key=lambda v: v["insee"])


def main() -> None:
    shared = ROOT.parent / "shared" / "data"
    communes = Path(sys.argv[1]) if len(sys.argv) > 1 else shared / "communes.csv"
    departements = Path(sys.argv[2]) if len(sys.argv) > 2 else shared / "departements.csv"
    table = build(communes, departements)
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=["insee", "name", "dep", "lat", "lon", "population", "current", "postcodes"]
    )
    writer.writeheader()
    writer.writerows(table)
    OUT.write_bytes(gzip.compress(buffer.getvalue().encode(), mtime=0))
    print(f"{len(table)} communes -> {OUT.relative_to(ROOT)} ({OUT.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
