"""What a failed login gives away, and whose address the lock-out counts."""

from __future__ import annotations

import pytest

from services.common.settings import Settings
from services.main import server_options
from services.ops import accounts as accounts_module
from services.ops.accounts import Accounts
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
