"""A matcher process's index follows changes committed by any other process."""

from __future__ import annotations

from datetime import timedelta

from services.common.clock import utcnow
from services.matcher.adapters.index_sync import IndexSync
from services.matcher.directory import Directory
from services.matcher.directory.professionals import SiteInput
from services.matcher.domain.index import DirectoryIndex
from tests.integration.helpers import eventually, fresh_topics, migrated


async def test_changes_made_elsewhere_reach_the_index(database_url: str) -> None:
    writer_db = await migrated(database_url, "matcher")  # "another process": it never touches our index

    async def nothing(_: list[str]) -> None:
        return None

    writer = Directory.build(writer_db, utcnow, fresh_topics(), nothing)
    site = SiteInput("main", "Cabinet", "79174", "79", 46.208, -0.144, None)
    await writer.territories.put("T", "CPTS T", ["79174"], 25.0)
    await writer.professionals.put("1", {"name": "Dr A", "profession": "general_practitioner"}, [site])

    reader_db = await migrated(database_url, "matcher")
    index = DirectoryIndex()
    sync = IndexSync(reader_db, index, utcnow)
    await sync.start()  # the snapshot has the territory and the professional
    try:
        assert index.territory_of("79174") is not None and "1" in index.professionals
        start = utcnow() + timedelta(days=1)
        await writer.slots.put("late", "1", "main", start, start + timedelta(minutes=20), "in_person")

        async def arrived() -> bool:
            return "late" in index.slots and index.slots["late"].state == "free"

        assert await eventually(arrived, timeout=5)
        await writer.slots.withdraw("late")

        async def withdrawn() -> bool:
            return index.slots["late"].state == "withdrawn"

        assert await eventually(withdrawn, timeout=5)
        await writer.professionals.deactivate("1")

        async def gone() -> bool:
            return not index.professionals["1"].active

        assert await eventually(gone, timeout=5)
    finally:
        await sync.stop()
        await reader_db.dispose()
        await writer_db.dispose()
