"""API clients on a real PostgreSQL: keys kept hashed, the environment's keys, the command line."""

from __future__ import annotations

import json
import subprocess
import sys

from sqlalchemy import text

from services.common.access.registry import ClientRegistry, environment_keys, key_hash
from services.common.access.roles import Role
from services.common.context import Context


async def test_keys_are_stored_hashed_and_an_environment_key_ends_when_it_leaves_the_environment(
    database_url: str,
) -> None:
    db = Context.schema_database(database_url, "access")
    first = ClientRegistry(db, environment_keys("sas79:regA,regB", "adm", "plat"))
    later: ClientRegistry | None = None
    await first.start()
    try:
        created = await first.create("SAS 86", Role.REGULATOR, "sas86", ["86"])
        async with db.engine.connect() as conn:
            stored = " ".join(str(v) for row in await conn.execute(text("SELECT * FROM api_client")) for v in row)
        assert created.key not in stored and key_hash(created.key) in stored  # only its hash is kept
        assert "regA" not in stored and "adm" not in stored.split()
        reg_a = await first.authenticate("regA")
        assert reg_a is not None and reg_a.organisation == "sas79" and reg_a.departments is None
        reg_b = await first.authenticate("regB")
        assert reg_b is not None and reg_b.organisation != "sas79"  # a bare key: an organisation of its own
        assert (await first.authenticate("plat")) is not None and (await first.authenticate("nope")) is None
        # the next start without regB in the environment: regB no longer opens anything
        later = ClientRegistry(db, environment_keys("sas79:regA", "adm", "plat"))
        await later.start()
        assert await later.authenticate("regB") is None
        assert await later.authenticate("regA") is not None
        assert (await later.authenticate(created.key)) is not None  # clients made by the API stay
    finally:
        for registry in (first, later):
            if registry is not None:
                await registry.known.close()  # (its listening connection)
        await db.dispose()


def test_the_command_line_prints_the_key_once_and_revokes(database_url: str) -> None:
    env = {"DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "services.common.access.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    made = run("create", "--name", "CPTS agenda", "--role", "directory", "--cpts", "cpts-1")
    assert made.returncode == 0, made.stderr
    shown = json.loads(made.stdout)  # standard output holds the JSON alone
    assert shown["key"].startswith("sask_") and shown["signing_secret"].startswith("whsec_")
    listed = run("list")
    assert shown["client_id"] in listed.stdout and shown["key"] not in listed.stdout and "active" in listed.stdout
    assert run("revoke", shown["client_id"]).returncode == 0
    assert "revoked" in run("list").stdout
    assert run("revoke", "cli_nobody").returncode == 1
    assert run("create", "--name", "x", "--role", "directory").returncode == 2  # no CPTS
