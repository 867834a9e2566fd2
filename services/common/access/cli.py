"""`sas-clients`: the admin's API for clients, on the server's command line.

    sas-clients create --name "SAS 79" --role regulator --department 79 [--organisation sas79]
    sas-clients create --name "CPTS Val de Rance" --role directory --cpts cpts-rance
    sas-clients list
    sas-clients revoke CLIENT_ID
    sas-clients rotate-secret CLIENT_ID

On DATABASE_URL, or on `make run`'s embedded server in DATA_DIR (it may be running). The key
and the signing secret are printed once; keep them in the client's secret store.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence

from services.common.access.registry import ClientRegistry, UnknownClient
from services.common.access.roles import Role
from services.common.audit import Actor
from services.common.db import Database, service_engine
from services.common.embedded import database
from services.common.logging import configure_logging
from services.common.settings import Settings

ON_SERVER = Actor("system", "sas-clients")  # who the audit trail says made the change


def parser() -> argparse.ArgumentParser:
    found = argparse.ArgumentParser(
        prog="sas-clients", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    commands = found.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="a new client: its key and signing secret are printed once")
    create.add_argument("--name", required=True)
    create.add_argument("--role", required=True, choices=[str(r) for r in Role])
    create.add_argument("--organisation", help="a regulator's organisation (default: its name)")
    create.add_argument("--department", action="append", help="a regulator's département (repeat; none: all)")
    create.add_argument("--cpts", action="append", default=[], help="a directory client's CPTS (repeat)")
    commands.add_parser("list", help="every client, without keys")
    revoke = commands.add_parser("revoke", help="the key answers 401 from now on, in every process")
    revoke.add_argument("client_id")
    rotate = commands.add_parser("rotate-secret", help="a new signing secret; the old one signs too for 24 h")
    rotate.add_argument("client_id")
    return found


async def run(args: argparse.Namespace, registry: ClientRegistry) -> int:
    await registry.start()
    if args.command == "create":
        role = Role(args.role)
        if role == Role.DIRECTORY and not args.cpts:
            print("a directory client needs --cpts", file=sys.stderr)
            return 2
        created = await registry.create(
            args.name, role, args.organisation, args.department, args.cpts, source="cli", by=ON_SERVER
        )
        print(
            json.dumps(
                {"client_id": created.client.client_id, "key": created.key, "signing_secret": created.signing_secret},
                indent=2,
            )
        )
        return 0
    if args.command == "list":
        for row in await registry.all():
            state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "active"
            used = f"{row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "never"
            scope = ",".join(row.cpts_ids) or ",".join(row.departments or []) or "-"
            print(f"{row.client_id}\t{row.role}\t{row.organisation or '-'}\t{scope}\t{row.name}\t{state}\tused {used}")
        return 0
    try:
        if args.command == "revoke":
            await registry.revoke(args.client_id, ON_SERVER)
            print(f"{args.client_id} revoked")
        else:
            print(
                json.dumps(
                    {
                        "client_id": args.client_id,
                        "signing_secret": await registry.rotate_signing_secret(args.client_id, by=ON_SERVER),
                    },
                    indent=2,
                )
            )
    except UnknownClient:
        print(f"no client {args.client_id}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    settings = Settings()
    configure_logging("console", "WARNING")  # standard output is for the key and the secret
    with database(settings) as url:
        registry = ClientRegistry(
            Database(service_engine(url, "access"), schema="access", source="/sas-orientation/access")
        )

        async def go() -> int:
            try:
                return await run(args, registry)
            finally:
                await registry.dispose()

        sys.exit(asyncio.run(go()))


if __name__ == "__main__":
    main()
