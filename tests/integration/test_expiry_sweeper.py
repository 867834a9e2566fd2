"""Offer expiry swept by APScheduler on every notifier process, claiming rows with SKIP LOCKED:
two processes never expire one offer twice, and a process killed mid-way loses nothing."""

from __future__ import annotations

import asyncio
import signal
import tempfile
from datetime import timedelta
from pathlib import Path

from sqlalchemy import text

from services.common.clock import utcnow
from services.notifier.models import Offer, OfferStatus
from tests.integration.helpers import eventually, fresh_topics, migrated, start_service, wait_healthy

OFFERS = 40


async def test_two_notifiers_expire_each_offer_once_even_when_one_is_killed(
    database_url: str, kafka_bootstrap: str
) -> None:
    topics = fresh_topics()
    db = await migrated(database_url, "notifier")
    env = {"INTAKE_URL": "http://127.0.0.1:9", "INTERNAL_API_KEY": "i", "SWEEP_INTERVAL_SECONDS": "0.2"}
    logs = [Path(tempfile.mkstemp(suffix=".log")[1]) for _ in range(3)]
    first = start_service("notifier", database_url, kafka_bootstrap, topics.prefix, logs[0], **env)
    second = start_service("notifier", database_url, kafka_bootstrap, topics.prefix, logs[1], **env)
    processes = [first, second]
    try:
        for process, port in processes:
            wait_healthy(port, process)
        now = utcnow()
        async with db.transaction() as tx:
            for i in range(OFFERS):  # lapsing over the next few seconds, while processes come and go
                tx.session.add(
                    Offer(
                        offer_id=f"lapse-{i}",
                        request_id=f"R{i}",
                        rpps="1",
                        professional_name="Dr",
                        profession="nurse",
                        site={"name": "s"},
                        kind="slot",
                        mode="in_person",
                        start=now + timedelta(hours=3),
                        deadline=now + timedelta(hours=40),
                        motive="general",
                        distance_km=1.0,
                        expires_at=now + timedelta(seconds=1 + i * 0.1),
                        status=OfferStatus.PENDING,
                        token_hash=f"h{i}",
                        created_at=now,
                    )
                )
        await asyncio.sleep((now + timedelta(seconds=3) - utcnow()).total_seconds())  # half lapsed: kill one
        first[0].send_signal(signal.SIGKILL)
        first[0].wait(timeout=10)
        restarted = start_service("notifier", database_url, kafka_bootstrap, topics.prefix, logs[2], **env)
        processes.append(restarted)
        wait_healthy(restarted[1], restarted[0])

        async def all_expired() -> bool:
            async with db.engine.connect() as conn:
                left = await conn.execute(text("SELECT count(*) FROM offer WHERE status = 'pending'"))
                return left.scalar() == 0

        assert await eventually(all_expired, timeout=30)
    finally:
        for process, _ in processes:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=20)
    async with db.engine.connect() as conn:
        events = dict(
            (
                await conn.execute(
                    text(
                        "SELECT value->'data'->>'offer_id', count(*) FROM outbox_message "
                        "WHERE value->>'type' = 'fr.sas.orientation.offer.expired.v1' GROUP BY 1"
                    )
                )
            ).all()
        )
        audits = (await conn.execute(text("SELECT count(*) FROM audit_entry WHERE action = 'expired'"))).scalar()
    await db.dispose()
    assert events == {f"lapse-{i}": 1 for i in range(OFFERS)}  # every offer expired, none twice
    assert audits == OFFERS
    # which process took which offer is a matter of timing (SKIP LOCKED hands due rows to whoever
    # comes first); what matters is above: every offer once, none lost when a sweeper died
    assert sum(log.read_text().count('"offer expired"') for log in logs) == OFFERS
