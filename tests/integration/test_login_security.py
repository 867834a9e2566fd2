"""What a failed login gives away, and whose address the lock-out counts."""

from __future__ import annotations

import base64
import hashlib
import shutil
from pathlib import Path

import pytest
from sqlalchemy import text

from services.common.access import accounts as accounts_module
from services.common.access.accounts import (
    CONSOLE,
    SESSION_IDLE,
    Accounts,
    InvalidAccount,
    WrongDoor,
    checked_scope,
    hash_password,
)
from services.common.access.registry import MIGRATIONS as ACCESS_MIGRATIONS
from services.common.db import Database, service_engine
from services.common.settings import Settings
from services.main import server_options
from tests.conftest import TUESDAY_MORNING, FakeClock
from tests.integration.helpers import MIGRATIONS, accounts_database


async def test_a_failed_login_hashes_a_password_whether_the_account_exists_or_not(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = await accounts_database(database_url)
    accounts = Accounts(db, FakeClock(TUESDAY_MORNING))
    hashed: list[str] = []
    real = accounts_module.check_password

    def counted(password: str, stored: str) -> bool:
        hashed.append(password)
        return real(password, stored)

    monkeypatch.setattr(accounts_module, "check_password", counted)
    try:
        await accounts.put("known@cpts.example.org", "a long enough password", "sas_admin", None)
        assert await accounts.log_in("known@cpts.example.org", "wrong password", "10.0.0.1") is None
        assert await accounts.log_in("nobody@cpts.example.org", "wrong password", "10.0.0.1") is None
        assert hashed == ["wrong password", "wrong password"]  # the same work for both: timing says nothing
        assert await accounts.log_in("known@cpts.example.org", "a long enough password", "10.0.0.1")
    finally:
        await db.dispose()


def test_forwarded_addresses_are_believed_only_from_the_configured_proxies() -> None:
    alone = server_options(Settings(trusted_proxies=""))
    assert alone["proxy_headers"] is False and alone["forwarded_allow_ips"] == ""
    behind = server_options(Settings(trusted_proxies="10.0.0.0/8"))
    assert behind["proxy_headers"] is True and behind["forwarded_allow_ips"] == "10.0.0.0/8"


async def test_passwords_are_argon2id_and_an_old_scrypt_hash_is_upgraded_at_login(database_url: str) -> None:
    db = await accounts_database(database_url)
    accounts = Accounts(db, FakeClock(TUESDAY_MORNING))

    async def stored(email: str) -> str:
        async with db.engine.connect() as conn:
            return str(
                (await conn.execute(text("SELECT password_hash FROM account WHERE email = :e"), {"e": email})).scalar()
            )

    try:
        await accounts.put("new@cpts.example.org", "a long enough password", "sas_admin", None)
        assert (await stored("new@cpts.example.org")).startswith("$argon2id$")
        # an account from before: its scrypt hash (salt "salt", N=2^14) as the old code wrote it
        salt = b"0123456789abcdef"
        digest = hashlib.scrypt(b"an old password!", salt=salt, n=2**14, r=8, p=1, dklen=32)
        old = "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()
        await accounts.put("old@cpts.example.org", "placeholder password", "sas_admin", None)
        async with db.transaction() as tx:
            await tx.session.execute(
                text("UPDATE account SET password_hash = :h WHERE email = 'old@cpts.example.org'"), {"h": old}
            )
        assert await accounts.log_in("old@cpts.example.org", "wrong password!!", "10.0.0.1") is None
        assert await stored("old@cpts.example.org") == old  # a failed login changes nothing
        assert await accounts.log_in("old@cpts.example.org", "an old password!", "10.0.0.1")
        upgraded = await stored("old@cpts.example.org")
        assert upgraded.startswith("$argon2id$")
        assert await accounts.log_in("old@cpts.example.org", "an old password!", "10.0.0.2")  # still the same password
    finally:
        await db.dispose()


async def test_a_reset_or_a_disable_ends_the_sessions_at_once_and_an_idle_session_ends(database_url: str) -> None:
    db = await accounts_database(database_url)
    clock = FakeClock(TUESDAY_MORNING)
    accounts = Accounts(db, clock)
    try:
        await accounts.put("c@cpts.example.org", "a long enough password", "coordinator", "cpts-1")
        token = await accounts.log_in("c@cpts.example.org", "a long enough password", "10.0.0.1")
        assert await accounts.operator(token)
        await accounts.put("c@cpts.example.org", "another long password", "coordinator", "cpts-1")  # a reset
        assert await accounts.operator(token) is None
        token = await accounts.log_in("c@cpts.example.org", "another long password", "10.0.0.1")
        assert await accounts.disable("c@cpts.example.org")
        assert await accounts.operator(token) is None
        await accounts.put("c@cpts.example.org", "another long password", "coordinator", "cpts-1")
        token = await accounts.log_in("c@cpts.example.org", "another long password", "10.0.0.1")
        for _ in range(4):  # used every 20 minutes: still alive after 80 minutes
            clock.advance(minutes=20)
            assert await accounts.operator(token), "a session in use stays open"
        clock.advance(seconds=SESSION_IDLE.total_seconds() + 1)
        assert await accounts.operator(token) is None  # left alone past the idle timeout
    finally:
        await db.dispose()


async def test_the_operations_accounts_move_to_the_shared_schema_with_their_live_sessions(
    database_url: str, tmp_path: Path
) -> None:
    """An installation from before version 2: its accounts and live sessions were in the
    operations schema (ops_0006); the next start moves them (access_0006, ops_0007)."""
    before = tmp_path / "ops-0006"
    before.mkdir()
    for migration in sorted(MIGRATIONS["ops"].glob("000[1-6]_*.py")):
        shutil.copy(migration, before)
    shared = Database(service_engine(database_url, "access"), schema="access", source="/test/access")
    await shared.migrate(ACCESS_MIGRATIONS)
    ops = Database(service_engine(database_url, "ops"), schema="ops", source="/test/ops")
    try:
        await ops.migrate(before)
        hashed = hash_password("le mot de passe d'avant")
        async with ops.transaction() as tx:
            await tx.session.execute(
                text("INSERT INTO ops_account VALUES ('c@cpts.example.org', :h, 'coordinator', 'cpts-1', now())"),
                {"h": hashed},
            )
            await tx.session.execute(
                text(
                    "INSERT INTO ops_session VALUES ('live', 'c@cpts.example.org', 'x', now() + interval '1 hour'),"
                    " ('ended', 'c@cpts.example.org', 'y', now() - interval '1 hour')"
                )
            )
        await ops.migrate(MIGRATIONS["ops"])
        async with ops.engine.connect() as conn:
            left = await conn.execute(text("SELECT to_regclass('ops.ops_account')"))
            sessions = await conn.execute(text("SELECT token_hash FROM access.account_session"))
            assert left.scalar() is None and list(sessions.scalars()) == ["live"]
        accounts = Accounts(shared, FakeClock(TUESDAY_MORNING))
        assert await accounts.log_in("c@cpts.example.org", "le mot de passe d'avant", "10.0.0.1")
        [moved] = await accounts.listed()
        assert (moved.role, moved.cpts_id, moved.organisation) == ("coordinator", "cpts-1", None)
    finally:
        await ops.dispose()
        await shared.dispose()


async def test_each_door_lets_in_its_own_roles_only(database_url: str) -> None:
    """A regulator's password at the operations door opens nothing (and says where to go); a
    regulator's session is nobody at the operations pages, a coordinator's nobody at the console."""
    db = await accounts_database(database_url)
    accounts = Accounts(db, FakeClock(TUESDAY_MORNING))
    try:
        await accounts.put("r@sas79.example.org", "a long enough password", "regulator", organisation="sas-79")
        await accounts.put("c@cpts.example.org", "a long enough password", "coordinator", "cpts-1")
        with pytest.raises(WrongDoor):
            await accounts.log_in("r@sas79.example.org", "a long enough password", "10.0.0.1")
        regulator = await accounts.log_in("r@sas79.example.org", "a long enough password", "10.0.0.1", CONSOLE)
        coordinator = await accounts.log_in("c@cpts.example.org", "a long enough password", "10.0.0.1")
        assert await accounts.operator(regulator) is None and await accounts.operator(coordinator, CONSOLE) is None
        me = await accounts.operator(regulator, CONSOLE)
        assert me is not None and (me.organisation, me.departments) == ("sas-79", None) and not me.may_see("cpts-1")
        with pytest.raises(WrongDoor):
            await accounts.log_in("c@cpts.example.org", "a long enough password", "10.0.0.1", CONSOLE)
        assert await accounts.log_in("r@sas79.example.org", "wrong password!!", "10.0.0.1", CONSOLE) is None
    finally:
        await db.dispose()


@pytest.mark.parametrize(
    ("role", "cpts_id", "organisation", "departments", "error"),
    [
        ("coordinator", None, None, None, "one cpts_id"),
        ("coordinator", "c", "o", None, "no organisation"),
        ("sas_admin", None, "o", None, "no cpts_id"),
        ("regulator", None, None, None, "an organisation"),
        ("regulator", "c", "o", None, "an organisation"),
        ("regulator", None, "o", ["79", "99"], "99"),
        ("owner", None, None, None, "role is one of"),
    ],
)
def test_an_accounts_scope_follows_its_role(
    role: str, cpts_id: str | None, organisation: str | None, departments: list[str] | None, error: str
) -> None:
    with pytest.raises(InvalidAccount, match=error):
        checked_scope(role, cpts_id, organisation, departments)
    assert checked_scope("regulator", None, "sas-79", ["86", "79", "79"]) == ["79", "86"]
