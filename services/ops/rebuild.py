"""`sas-rebuild-read-model`: empty the operations read model and read every topic again.

For a read model that went wrong (a bug fixed in a handler, a definition changed): the figures
are recomputed from the events the broker still keeps (its retention decides how far back).
Needs KAFKA_BOOTSTRAP_SERVERS (with `make run`, the address it printed) and DATABASE_URL, or the
embedded database in DATA_DIR. Safe while the service runs: its consumer skips what was replayed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from schemas.topics import Topics
from services.common.logging import configure_logging
from services.common.settings import Settings
from services.ops import read_model

MIGRATIONS = Path(__file__).parent / "migrations"


async def _run(settings: Settings, bootstrap: str) -> int:
    from services.main import service_database  # the composition root picks the database

    async with service_database(settings, "ops", MIGRATIONS) as db:
        return await read_model.rebuild(db, bootstrap, Topics(prefix=settings.topic_prefix))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args(argv)
    settings = Settings()
    configure_logging(settings.log_format, "WARNING")
    if not settings.kafka_bootstrap_servers:
        sys.exit("set KAFKA_BOOTSTRAP_SERVERS: the read model is rebuilt from the broker's topics")
    replayed = asyncio.run(_run(settings, settings.kafka_bootstrap_servers))
    print(f"read model rebuilt from {replayed} events")


if __name__ == "__main__":
    main()
