"""What a failed login gives away, and whose address the lock-out counts."""

from __future__ import annotations

import base64
import hashlib

import pytest
from sqlalchemy import text

from services.common.settings import Settings
from services.main import server_options
from services.ops import accounts as accounts_module
from services.ops.accounts import SESSION_IDLE, Accounts
from tests.conftest import TUESDAY_MORNING, FakeClock
from tests.integration.helpers import migrated


async def test_a_failed_login_hashes_a_password_whether_the_account_exists_or_not(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = await migrated(database_url, "ops")
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
    db = await migrated(database_url, "ops")
    accounts = Accounts(db, FakeClock(TUESDAY_MORNING))

    async def stored(email: str) -> str:
        async with db.engine.connect() as conn:
            return str(
                (
                    await conn.execute(text("SELECT password_hash FROM ops_account WHERE email = :e"), {"e": email})
                ).scalar()
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
                text("UPDATE ops_account SET password_hash = :h WHERE email = 'old@cpts.example.org'"), {"h": old}
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
    db = await migrated(database_url, "ops")
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
