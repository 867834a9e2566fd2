"""Retention on a busy week: how many patients' data one sweeper run erases, and how long it takes.

On an embedded PostgreSQL (a fresh folder), the intake receives `--requests` requests spread
over a week (as many a day), each with a contact and details; a third end confirmed with an
appointment the same day, a third end unresolved, a third are left as they are. The clock is then
moved to the end of that week plus the retention period, and `apply_retention` runs once: it
prints what it erased (contacts, whole patients), the time it took, the rows left holding a
contact or a request key, and the closing line

    retention requests=… contacts_erased=… patients_erased=… seconds=… left_contacts=… left_keys=…

    python bench/retention.py --requests 3000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from schemas.events import PatientDetails
from schemas.topics import Topics
from services.common.access.registry import MIGRATIONS as ACCESS_MIGRATIONS
from services.common.access.registry import ClientRegistry
from services.common.db import Database, service_engine
from services.common.embedded import EmbeddedPostgres
from services.common.outbound import OutboundPolicy
from services.common.sealing import DataKeys, Vault
from services.intake.callbacks import CallbackSecrets
from services.intake.retention import Retention
from services.intake.service import IntakeService, NewRequest

MIGRATIONS = Path(__file__).parents[1] / "services" / "intake" / "migrations"
START = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)  # a Monday morning


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


async def run(count: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="sas-bench-retention-"))
    server = EmbeddedPostgres(folder / "pg").start()
    url = server.url()
    access = Database(service_engine(url, "access"), schema="access", source="/bench/access")
    await access.migrate(ACCESS_MIGRATIONS)
    db = Database(service_engine(url, "intake"), schema="intake", source="/bench/intake")
    await db.migrate(MIGRATIONS)
    clock = Clock()
    rules = Retention()
    intake = IntakeService(
        db,
        Topics("bench."),
        CallbackSecrets(ClientRegistry(access), ""),
        OutboundPolicy(),
        Vault(DataKeys([DataKeys.new_key()])),
        clock,
        b"bench",
        rules,
    )
    try:
        spacing = timedelta(days=7) / count
        for n in range(count):
            clock.now = START + spacing * n
            await intake.submit(
                NewRequest(
                    f"R{n}",
                    clock.now,
                    "48h",
                    "general",
                    "79191",
                    PatientDetails(lat=46.3, lon=-0.46, age=20 + n % 70, sex="F"),
                    callback_url=None,
                    correlation_id=None,
                    teleconsultation_ok=False,
                    contact_name=f"Patient {n}",
                    contact_phone="0600000000",
                    body={"n": n},
                )
            )
            ending = ("confirmed", "unresolved", None)[n % 3]
            if ending:
                appointment = {"start": (clock.now + timedelta(hours=4)).isoformat()} if ending == "confirmed" else None
                async with db.engine.begin() as conn:
                    await conn.execute(
                        text(
                            "UPDATE orientation_request SET status = :s, updated_at = :at, "
                            "appointment = CAST(:a AS jsonb) WHERE request_id = :id"
                        ),
                        {"s": ending, "at": clock.now, "a": json.dumps(appointment), "id": f"R{n}"},
                    )
        # the end of the week: the first days are past retention, the last days' contacts only
        clock.now = START + timedelta(days=7) + rules.patient_data / 2
        started = time.perf_counter()
        erased = await intake.apply_retention()
        seconds = time.perf_counter() - started
        async with db.engine.connect() as conn:
            contacts = (await conn.execute(text("SELECT count(*) FROM patient_contact"))).scalar_one()
            keys = (await conn.execute(text("SELECT count(*) FROM access.request_key"))).scalar_one()
        print(f"requests received over the week: {count}; now: {clock.now:%Y-%m-%d %H:%M} UTC")
        print(
            f"erased in {seconds:.2f} s: {erased['contacts']} contacts once no page showed them, "
            f"then {erased['patients']} requests' patient data entirely (past PATIENT_DATA_RETENTION_DAYS)"
        )
        print(f"left: {contacts} contacts (requests still being handled or within their page's days), {keys} keys")
        print(
            f"retention requests={count} contacts_erased={erased['contacts']} patients_erased={erased['patients']} "
            f"seconds={seconds:.2f} left_contacts={contacts} left_keys={keys}"
        )
    finally:
        await intake.moves.close()
        await db.dispose()
        await access.dispose()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    asyncio.run(run(parser.parse_args().requests))


if __name__ == "__main__":
    main()
