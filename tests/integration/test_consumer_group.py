"""Two matcher processes in one consumer group share the partitions; each request is handled once."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select

from services.matcher.adapters.models import SearchRecord
from tests.integration.helpers import (
    event_bytes,
    eventually,
    fresh_topics,
    matcher_processes,
    migrated,
    publish_raw,
)
from tests.integration.test_consumer import received

REQUESTS = 30


def handled_requests(log: Path) -> set[str]:
    found = set()
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("event") in ("request unresolved", "offer proposed"):
                found.add(entry["request_id"])
    return found


async def test_two_matcher_processes_split_the_partitions(database_url: str, kafka_bootstrap: str) -> None:
    topics = fresh_topics()
    db = await migrated(database_url, "matcher")  # both processes also migrate: that must be harmless
    try:
        async with matcher_processes(database_url, kafka_bootstrap, topics.prefix, 2) as logs:
            ids = [f"GRP-{i:03d}" for i in range(REQUESTS)]
            await publish_raw(kafka_bootstrap, topics.requests, [(i, event_bytes(received(i))[1]) for i in ids])

            async def all_searched() -> bool:
                async with db.transaction() as tx:
                    count = await tx.session.execute(select(func.count()).select_from(SearchRecord))
                    return int(count.scalar_one()) >= REQUESTS

            assert await eventually(all_searched, timeout=30)
    finally:
        await db.dispose()
    first, second = (handled_requests(log) for log in logs)
    assert first and second, f"one process got every partition: {len(first)} / {len(second)}"
    assert not first & second, "a request was handled by both processes"
    assert first | second == set(ids)
