"""`sas-data-key`: the application's keys for patient data (DATA_KEYS; services/common/sealing.py).

    sas-data-key            print a new key
    sas-data-key rotate     encrypt every patient contact and request key under the first key

Rotation: put a new key first in DATA_KEYS (keep the old ones after it) and restart the
services: they encrypt under it and still read what the old keys encrypted. Then run
`sas-data-key rotate` (on DATABASE_URL, or `make run`'s embedded server), and remove the old
keys once it is done.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from sqlmodel import col, select

from services.common.db import Database, service_engine
from services.common.embedded import database
from services.common.logging import configure_logging
from services.common.sealing import DataKeys, Vault
from services.common.settings import Settings
from services.intake.models import PatientContact


async def rotate(db: Database, vault: Vault) -> tuple[int, int]:
    """Every contact and request key encrypted under the first key, in one transaction; returns
    how many of each."""
    async with db.transaction() as tx:
        contacts = 0
        rows = await tx.session.execute(select(PatientContact).where(col(PatientContact.sealed).is_not(None)))
        for row in rows.scalars():
            row.sealed = vault.keys.rotate(row.sealed or "")
            contacts += 1
        return contacts, await vault.rotate(tx.session)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="sas-data-key", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("command", nargs="?", choices=["new", "rotate"], default="new")
    args = parser.parse_args(argv)
    if args.command == "new":
        print(DataKeys.new_key())
        return
    settings = Settings()
    configure_logging("console", "WARNING")
    if not settings.data_keys.strip():
        sys.exit("DATA_KEYS is not set: nothing to rotate to")
    with database(settings) as url:
        db = Database(service_engine(url, "intake"), schema="intake", source="/sas-orientation/intake")

        async def go() -> tuple[int, int]:
            try:
                return await rotate(db, Vault(DataKeys.from_setting(settings.data_keys)))
            finally:
                await db.dispose()

        contacts, keys = asyncio.run(go())
        print(f"encrypted under the first key: {contacts} contacts, {keys} request keys")


if __name__ == "__main__":
    main()
