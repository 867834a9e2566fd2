"""Loading the directory: the national extraction for a territory (a generated file with the real
header), and weekly availability templates kept and expanded again."""

from __future__ import annotations

from datetime import UTC, datetime, time
from pathlib import Path

from sqlalchemy import text

from schemas.topics import Topics
from services.matcher.directory import Directory
from services.matcher.directory.rpps_import import import_extraction
from services.matcher.domain.availability import Recurring
from tests.conftest import TUESDAY_MORNING, FakeClock
from tests.integration.helpers import MELLE_SITE, migrated
from tests.integration.rpps_file import TERRITORY, generate


async def test_an_extraction_is_imported_for_the_territory_and_again_changes_nothing(
    database_url: str, tmp_path: Path
) -> None:
    db = await migrated(database_url, "matcher")

    async def nothing(_: list[str]) -> None:
        return None

    directory = Directory.build(db, lambda: datetime(2026, 12, 1, 8, tzinfo=UTC), Topics(prefix="rpps."), nothing)
    try:
        await directory.territories.put("cpts-79", "CPTS Sud Deux-Sèvres", TERRITORY, 30.0)
        path = tmp_path / "PS_LibreAcces_Personne_activite_202611250000.txt"
        expected = generate(path)

        with path.open(encoding="utf-8", newline="") as file:
            first = await import_extraction(directory, file, "cpts-79")
        assert first.rows == expected["rows"] and first.rows >= 3000
        assert first.outcomes == {"created": len(expected["professionals"])}  # type: ignore[arg-type]
        assert dict(first.skipped) == expected["skipped"]

        pro, sites = await directory.professionals.get("10000000000")  # n = 0: two practices in the territory
        assert pro.name == pro.name.strip() and pro.sas_participation == "none" and pro.cpts_id == "cpts-79"
        assert sorted(s.site_id for s in sites) == ["rpps-R000000", "rpps-S000000"]
        assert sites[0].address == {"line": "12 Rue de la Gare", "postal_code": "79000", "city": "NIORT"}

        # the coordinator's own settings, then the same file again
        async with db.engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE professional SET sas_participation = 'via_cpts', accepts_overflow = true, "
                    "overflow_daily_cap = 3 WHERE rpps = '10000000000'"
                )
            )
        with path.open(encoding="utf-8", newline="") as file:
            again = await import_extraction(directory, file, "cpts-79")
        assert again.outcomes == {"unchanged": len(expected["professionals"])}  # type: ignore[arg-type]
        pro, _ = await directory.professionals.get("10000000000")
        assert (pro.sas_participation, pro.accepts_overflow, pro.overflow_daily_cap) == ("via_cpts", True, 3)

        # a practice the directory no longer lists is closed
        kept = [line for line in path.read_text(encoding="utf-8").splitlines() if "|S000000|" not in line]
        path.write_text("\n".join(kept) + "\n", encoding="utf-8")
        with path.open(encoding="utf-8", newline="") as file:
            third = await import_extraction(directory, file, "cpts-79")
        assert third.outcomes["updated"] == 1
        async with db.engine.connect() as conn:
            active = await conn.execute(
                text("SELECT site_id, active FROM site WHERE rpps = '10000000000' ORDER BY site_id")
            )
            assert [tuple(r) for r in active] == [("rpps-R000000", True), ("rpps-S000000", False)]
    finally:
        await db.dispose()


async def test_a_kept_availability_template_fills_the_weeks_ahead_again(database_url: str) -> None:
    db = await migrated(database_url, "matcher")
    clock = FakeClock(TUESDAY_MORNING)

    async def nothing(_: list[str]) -> None:
        return None

    directory = Directory.build(db, clock, Topics(prefix="tpl."), nothing)
    try:
        fields = {"name": "Dr T", "profession": "general_practitioner", "email": "t@x.org"}
        await directory.professionals.put("72000000001", fields, [MELLE_SITE])
        evenings = [Recurring(("tue", "thu"), time(17, 0), time(18, 0), 20)]
        assert await directory.availability.keep("72000000001", "main", evenings, 1) == (6, 0)
        assert await directory.availability.expand_templates() == 0  # nothing new in the same week
        clock.advance(days=7)
        assert await directory.availability.expand_templates() == 6  # the next week's Tuesday and Thursday
    finally:
        await db.dispose()
