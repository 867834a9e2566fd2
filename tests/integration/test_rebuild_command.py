"""`sas-rebuild-read-model`: the operations read model emptied and filled again from the topics."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import timedelta

from sqlalchemy import text

from schemas.events import RequestReceived, SearchStarted
from services.common.clock import utcnow
from services.common.messaging import ensure_topics
from tests.integration.helpers import ROOT, event_bytes, fresh_topics, migrated, publish_raw


async def test_the_command_reads_every_topic_again(database_url: str, kafka_bootstrap: str) -> None:
    topics = fresh_topics()
    await ensure_topics(kafka_bootstrap, topics, 2)
    now = utcnow()
    received = RequestReceived(
        request_id="RB-1",
        received_at=now,
        urgency="48h",
        motive="general",
        commune_insee="79174",
    )
    searching = SearchStarted(request_id="RB-1", deadline=now + timedelta(hours=48), attempt=1, cpts_id="cpts-79")
    await publish_raw(kafka_bootstrap, topics.requests, [("RB-1", event_bytes(received)[1])])
    await publish_raw(kafka_bootstrap, topics.matching, [("RB-1", event_bytes(searching)[1])])
    db = await migrated(database_url, "ops")
    try:
        async with db.engine.begin() as conn:  # a row the topics do not justify: the rebuild drops it
            await conn.execute(text("INSERT INTO ops_request (request_id) VALUES ('STALE')"))
        env = {**os.environ, "DATABASE_URL": database_url, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
               "TOPIC_PREFIX": topics.prefix}  # fmt: skip
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.ops.rebuild", cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), 120)
        assert process.returncode == 0, err.decode()[-2000:]
        assert "read model rebuilt from 2 events" in out.decode()
        async with db.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT request_id, commune_insee, patient_cpts FROM ops_request"))).all()
        assert [tuple(r) for r in rows] == [("RB-1", "79174", "cpts-79")]
    finally:
        await db.engine.dispose()


def test_the_command_needs_a_broker() -> None:
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    done = subprocess.run(
        [sys.executable, "-m", "services.ops.rebuild"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0 and "KAFKA_BOOTSTRAP_SERVERS" in done.stderr
