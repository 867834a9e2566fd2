"""The matcher's candidate search and decision at national scale, against a PostGIS baseline.

Generates a national directory from the commune table (built from shared/data/communes.csv):
professionals spread by commune population, free slots over the next 7 days inside opening
hours, one territory per department. Then runs requests from communes drawn by population,
through the matcher's in-memory index (search + decision, as the cascade does it before the
database claim), and through the queries a competent engineer would otherwise write on the same
data, PostGIS tuned (one GiST index on (geography, start) with btree_gist, the table clustered on
it, custom plans, no JIT, no parallel workers): the like-for-like one (free slots within the
radius before the deadline, ORDER BY start LIMIT 20) and one with the matcher's own ranking
(ORDER BY distance, start). Prints them all and one closing line:

    match_national p50_ms=… p99_ms=… rps=… rss_mb=… postgis_p50_ms=… speedup=… postgis_ranked_p50_ms=… speedup_ranked=…

    python bench/match_national.py            # 100,000 professionals, 1,000,000 slots, 10,000 requests
    python bench/match_national.py --quick    # the same shape, ten times smaller (under a minute)

The baseline needs PostGIS: Debian's `postgresql-15-postgis-3` (apt-get install -y
--no-install-recommends postgresql-15-postgis-3) is started in a throwaway cluster, or give
--postgis-url for a server of yours. Without it the baseline figures are `nan`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.common import geo
from services.common.embedded import free_port
from services.common.motives import catalogue
from services.matcher.domain import decision as decision_core
from services.matcher.domain import matching as d
from services.matcher.domain.index import DirectoryIndex, Territory
from services.matcher.domain.opening_hours import REFERENCE_HOURS, open_intervals

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)  # a Tuesday, 09:00 in Paris
LEAD = timedelta(minutes=30)
PROFESSIONS = [
    ("general_practitioner", 0.55),
    ("nurse", 0.15),
    ("pharmacist", 0.12),
    ("physiotherapist", 0.1),
    ("dentist", 0.06),
    ("midwife", 0.02),
]
PG_BIN = Path("/usr/lib/postgresql/15/bin")
GP_STEPS = catalogue().motives["general"].steps_for(50, None, [])


@dataclass
class Directory:
    professionals: list[tuple[d.Professional, d.Site, str]]  # with the department
    slots: list[tuple[str, str, datetime, datetime, str]]  # slot_id, rpps, start, end, mode


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def generate(professionals: int, slots: int, rng: random.Random) -> Directory:
    communes = [c for c in geo.communes().values() if c.current == c.insee and c.population > 0]
    weights = [c.population for c in communes]
    open_week = list(open_intervals(REFERENCE_HOURS, NOW, NOW + timedelta(days=7)))
    open_minutes = [(a, int((b - a).total_seconds() // 60)) for a, b in open_week]
    period_weights = [m for _, m in open_minutes]
    pros = []
    for i, commune in enumerate(rng.choices(communes, weights=weights, k=professionals)):
        profession = rng.choices([p for p, _ in PROFESSIONS], weights=[w for _, w in PROFESSIONS])[0]
        overflow = rng.random() < 0.2
        pro = d.Professional(
            f"{10**10 + i}",
            f"Pro {i}",
            profession,
            cpts_id=f"cpts-{commune.department}",
            accepts_overflow=overflow,
            overflow_daily_cap=rng.randint(1, 3) if overflow else 0,
            teleconsultation=rng.random() < 0.05,
        )
        place = d.Place(commune.lat + rng.uniform(-0.01, 0.01), commune.lon + rng.uniform(-0.01, 0.01))
        pros.append((pro, d.Site("main", f"Cabinet {i}", commune.insee, place, commune.department), commune.department))
    slot_rows = []
    for n in range(slots):
        pro = pros[rng.randrange(professionals)][0]
        start_of_period, minutes = rng.choices(open_minutes, weights=period_weights)[0]
        start = start_of_period + timedelta(minutes=rng.randrange(0, max(1, minutes - 20), 5))
        mode = "teleconsultation" if rng.random() < 0.05 else "in_person"
        slot_rows.append((f"s{n}", pro.rpps, start, start + timedelta(minutes=20), mode))
    return Directory(pros, slot_rows)


def build_index(directory: Directory) -> DirectoryIndex:
    index = DirectoryIndex()
    departments: dict[str, set[str]] = {}
    for commune in geo.communes().values():
        departments.setdefault(commune.department, set()).add(commune.insee)
    for dep, communes in departments.items():
        index.put_territory(Territory(f"cpts-{dep}", f"CPTS {dep}", frozenset(communes)), 1)
    for pro, site, _ in directory.professionals:
        index.put_professional(pro, [site], 1)
    with index.bulk():
        for slot_id, rpps, start, end, mode in directory.slots:
            index.put_slot(slot_id, rpps, "main", start, end, mode, "free", 1)
    return index


def requests(count: int, rng: random.Random) -> list[tuple[geo.Commune, bool]]:
    communes = [c for c in geo.communes().values() if c.current == c.insee and c.population > 0]
    chosen = rng.choices(communes, weights=[c.population for c in communes], k=count)
    return [(c, rng.random() < 0.3) for c in chosen]


def decide(index: DirectoryIndex, commune: geo.Commune, tele_ok: bool) -> d.Candidate | None:
    """What the cascade does before claiming in the database: the decision core, then the
    explanation it stores."""
    territory = index.territory_of(commune.insee)
    search = d.Search(
        request_id="R",
        patient=d.Place(commune.lat, commune.lon),
        deadline=NOW + timedelta(hours=48),
        teleconsultation_ok=tele_ok,
        radius_km=territory.radius_km if territory else 30.0,
        patient_cpts=territory.cpts_id if territory else None,
        department=commune.department,
    )
    decision = decision_core.decide(index, search, GP_STEPS, NOW, LEAD)
    if not isinstance(decision, decision_core.Ask):
        return None
    _ = [(c.professional.rpps, c.score, c.terms) for c in decision.candidates[:3]]  # the stored explanation
    return decision.candidates[0]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


@contextlib.contextmanager
def debian_postgis() -> Iterator[str | None]:
    """A throwaway PostgreSQL 15 cluster with PostGIS, run as the `postgres` user."""
    control = Path("/usr/share/postgresql/15/extension/postgis.control")
    if not (PG_BIN / "postgres").exists() or not control.exists():
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix="bench-postgis-"))
    data, port = folder / "data", free_port()
    shutil.chown(folder, "postgres")
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run(
        [*as_postgres, PG_BIN / "initdb", "-D", data, "-A", "trust", "-U", "postgres"], check=True, capture_output=True
    )
    subprocess.run(
        [
            *as_postgres,
            PG_BIN / "pg_ctl",
            "-D",
            data,
            "-w",
            "-l",
            folder / "log",
            "-o",
            f"-p {port} -k {folder} -c shared_buffers=1GB -c fsync=off",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@/postgres?host={folder}&port={port}"
    finally:
        subprocess.run([*as_postgres, PG_BIN / "pg_ctl", "-D", data, "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


async def postgis_baseline(
    url: str, directory: Directory, sample: list[tuple[geo.Commune, bool]]
) -> dict[str, list[float]]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        await conn.execute("DROP TABLE IF EXISTS slot")
        await conn.execute(
            "CREATE UNLOGGED TABLE slot (slot_id text, rpps text, profession text, start timestamptz, "
            '"end" timestamptz, mode text, state text, geog geography(Point, 4326))'
        )
        where = {pro.rpps: (pro.profession, site.place) for pro, site, _ in directory.professionals}
        rows = [
            (
                sid,
                rpps,
                where[rpps][0],
                start,
                end,
                mode,
                "free",
                f"SRID=4326;POINT({where[rpps][1].lon} {where[rpps][1].lat})",
            )
            for sid, rpps, start, end, mode in directory.slots
        ]
        await conn.execute(
            "CREATE TEMP TABLE load (slot_id text, rpps text, profession text, start timestamptz, "
            '"end" timestamptz, mode text, state text, geog text)'
        )
        await conn.copy_records_to_table("load", records=rows)
        await conn.execute(
            'INSERT INTO slot SELECT slot_id, rpps, profession, start, "end", mode, state, geog::geography FROM load'
        )
        # tuned as a competent engineer would: one GiST index on (place, start), the table in its
        # order, plans made for the actual parameters, no JIT and no parallel workers
        await conn.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        await conn.execute("CREATE INDEX slot_geog_start ON slot USING gist (geog, start)")
        await conn.execute("CLUSTER slot USING slot_geog_start")
        await conn.execute("ANALYZE slot")
        await conn.execute("SET plan_cache_mode = force_custom_plan")
        await conn.execute("SET jit = off")
        await conn.execute("SET max_parallel_workers_per_gather = 0")
        within = (
            "FROM slot WHERE ST_DWithin(geog, $1::geography, $2) AND start BETWEEN $3 AND $4 AND state = 'free' "
            "AND profession = 'general_practitioner' AND (mode = 'in_person' OR $5) "
        )
        queries = {
            # like for like: what the index's search answers, free slots in reach before the deadline
            "like_for_like": await conn.prepare(f"SELECT slot_id, rpps, start {within} ORDER BY start LIMIT 20"),
            # with the matcher's own ranking: nearest first, then earliest
            "ranked": await conn.prepare(
                f"SELECT slot_id, rpps, start, ST_Distance(geog, $1::geography) AS distance {within}"
                "ORDER BY distance, start LIMIT 5"
            ),
        }
        timings: dict[str, list[float]] = {name: [] for name in queries}
        for name, query in queries.items():
            for commune, tele_ok in sample:
                point = f"SRID=4326;POINT({commune.lon} {commune.lat})"
                began = time.perf_counter()
                await query.fetch(point, 30_000.0, NOW + LEAD, NOW + timedelta(hours=48), tele_ok)
                timings[name].append((time.perf_counter() - began) * 1000)
        return timings
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10,000 professionals, 100,000 slots, 1,000 requests")
    parser.add_argument("--postgis-url", help="a PostgreSQL server with PostGIS to use for the baseline")
    parser.add_argument("--seed", type=int, default=20261124)
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    rng = random.Random(args.seed)

    began = time.perf_counter()
    directory = generate(100_000 // scale, 1_000_000 // scale, rng)
    print(
        f"directory: {len(directory.professionals):,} professionals, {len(directory.slots):,} slots "
        f"({time.perf_counter() - began:.1f} s to generate)"
    )
    gc.collect()
    before = rss_mb()
    began = time.perf_counter()
    index = build_index(directory)
    gc.collect()
    after = rss_mb()
    print(
        f"index: built in {time.perf_counter() - began:.1f} s; process RSS {after:.0f} MB "
        f"(the index itself about {after - before:.0f} MB)"
    )

    sample = requests(10_000 // scale, rng)
    decide(index, *sample[0])  # warm up
    timings, found = [], 0
    began = time.perf_counter()
    for commune, tele_ok in sample:
        t = time.perf_counter()
        found += decide(index, commune, tele_ok) is not None
        timings.append((time.perf_counter() - t) * 1000)
    elapsed = time.perf_counter() - began
    p50, p99 = statistics.median(timings), percentile(timings, 0.99)
    rps = len(sample) / elapsed
    print(
        f"index search + decision over {len(sample):,} requests on one core: p50 {p50:.3f} ms, "
        f"p99 {p99:.3f} ms, max {max(timings):.2f} ms, {rps:,.0f} requests/s, {found:,} with a candidate"
    )

    figures: dict[str, tuple[float, float]] = {}
    with contextlib.ExitStack() as stack:
        url = args.postgis_url or stack.enter_context(debian_postgis())
        if url is None:
            print("postgis: not available (see the docstring); baseline skipped")
        else:
            pg_sample = sample[: max(200, len(sample) // 10)]
            for name, pg in asyncio.run(postgis_baseline(url, directory, pg_sample)).items():
                pg_p50, pg_p99 = figures[name] = (statistics.median(pg), percentile(pg, 0.99))
                print(
                    f"postgis, tuned ({name}) over {len(pg_sample):,} of the requests: "
                    f"p50 {pg_p50:.3f} ms, p99 {pg_p99:.3f} ms, {pg_p50 / p50:.1f}× the index"
                )
    nan = (float("nan"), float("nan"))
    like, ranked = figures.get("like_for_like", nan), figures.get("ranked", nan)
    print(
        f"match_national p50_ms={p50:.3f} p99_ms={p99:.3f} rps={rps:.0f} rss_mb={after:.0f} "
        f"postgis_p50_ms={like[0]:.3f} speedup={like[0] / p50:.1f} "
        f"postgis_ranked_p50_ms={ranked[0]:.3f} speedup_ranked={ranked[0] / p50:.1f}"
    )


if __name__ == "__main__":
    main()
