"""`sas-import-rpps FILE --cpts CPTS_ID`: a territory's professionals from the national directory.

Streams the public extraction (`PS_LibreAcces_Personne_activite_….txt`, see
services/matcher/domain/rpps.py), keeps the professionals whose practice is in one of the
territory's communes and whose profession the service orients to, and creates or updates them
through the directory (which tells the running matchers). Prints what it created, updated, left
unchanged, and the rows it skipped with the reason. Importing the same file again changes nothing.
Works on `DATABASE_URL`, or on `make run`'s embedded database (same `DATA_DIR`).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from schemas.topics import Topics
from services.common.clock import utcnow
from services.common.logging import configure_logging
from services.common.settings import Settings
from services.matcher.directory import Directory
from services.matcher.directory.errors import NotFound
from services.matcher.domain.rpps import InvalidExtraction, read_extraction

MIGRATIONS = Path(__file__).parents[1] / "migrations"


@dataclass
class ImportReport:
    rows: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)  # created | updated | unchanged → professionals
    skipped: Counter[str] = field(default_factory=Counter)  # reason → rows

    def as_dict(self) -> dict[str, object]:
        return {"rows": self.rows, **{k: self.outcomes.get(k, 0) for k in ("created", "updated", "unchanged")},
                "skipped": dict(self.skipped.most_common())}  # fmt: skip

    def lines(self) -> list[str]:
        done = ", ".join(f"{n} {what}" for what, n in sorted(self.outcomes.items())) or "nobody"
        lines = [f"{self.rows} rows read; professionals: {done}"]
        lines += [f"  skipped {n} rows: {reason}" for reason, n in self.skipped.most_common()]
        return lines


async def import_extraction(directory: Directory, lines: Iterable[str], cpts_id: str) -> ImportReport:
    """Import the extraction's professionals of territory `cpts_id` (raises NotFound without it)."""
    territory = await directory.territories.get(cpts_id)
    # read in a thread: the national file is 2 million rows, the process's other work goes on
    reading = await asyncio.to_thread(read_extraction, lines, set(territory.communes))
    report = ImportReport(rows=reading.rows, skipped=reading.skipped)
    for listed in reading.professionals.values():
        report.outcomes[await directory.listed.merge(listed, cpts_id)] += 1
    return report


async def _run(path: Path, cpts_id: str, settings: Settings) -> ImportReport:
    from services.main import service_database  # the composition root picks the database

    async with service_database(settings, "matcher", MIGRATIONS) as db:

        async def nothing(_: list[str]) -> None:  # running matchers hear of it from PostgreSQL
            return None

        directory = Directory.build(db, utcnow, Topics(prefix=settings.topic_prefix), nothing)
        with path.open(encoding="utf-8", newline="") as file:
            return await import_extraction(directory, file, cpts_id)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path, help="PS_LibreAcces_Personne_activite_….txt (UTF-8, |-separated)")
    parser.add_argument("--cpts", required=True, help="the territory (PUT /v1/territories/{cpts_id} first)")
    args = parser.parse_args(argv)
    settings = Settings()
    configure_logging(settings.log_format, "WARNING")
    if not args.file.is_file():
        sys.exit(f"no such file: {args.file}")
    try:
        report = asyncio.run(_run(args.file, args.cpts, settings))
    except (NotFound, InvalidExtraction, UnicodeDecodeError) as error:
        sys.exit(f"import refused: {error}")
    print("\n".join(report.lines()))
