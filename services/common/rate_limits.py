"""Rate limits shared by every process of a deployment, with the `limits` library.

`limits` counts in a storage; its own (memory, Redis, Memcached, MongoDB) are either per process
or a server this deployment does not have, so the counters live in PostgreSQL, which every
process already shares (`access.rate_counter`, one upsert per hit: a fixed window per key).
A limit is a `limits` string such as "600/minute"; a caller over it gets `429` with
`Retry-After` (the seconds until its window ends).
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import FixedWindowRateLimiter
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from services.common.db import Database


class TooManyRequests(Exception):
    """Over a limit: `retry_after` seconds until the window ends."""

    def __init__(self, what: str, retry_after: int) -> None:
        super().__init__(f"too many requests ({what}): try again in {retry_after} s")
        self.retry_after = retry_after


class PostgresStorage(Storage):
    """`limits`' async storage on the deployment's PostgreSQL (schema `access`)."""

    STORAGE_SCHEME: list[str] | None = ["sas-postgresql"]  # noqa: RUF012 (as limits declares it)

    def __init__(self, db: Database) -> None:
        super().__init__()
        self.db = db

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return (SQLAlchemyError, OSError)

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        rows = await self.db.statement(  # one statement, committed as it runs (a hit on every call)
            "INSERT INTO rate_counter AS r (key, count, expires_at) "
            "VALUES (:k, :n, clock_timestamp() + make_interval(secs => :e)) "
            "ON CONFLICT (key) DO UPDATE SET "
            "count = CASE WHEN r.expires_at <= clock_timestamp() THEN :n ELSE r.count + :n END, "
            "expires_at = CASE WHEN r.expires_at <= clock_timestamp() "
            "THEN clock_timestamp() + make_interval(secs => :e) ELSE r.expires_at END "
            "RETURNING count",
            k=key,
            n=amount,
            e=float(expiry),
        )
        return int(rows[0][0])

    async def get(self, key: str) -> int:
        rows = await self.db.statement(
            "SELECT count FROM rate_counter WHERE key = :k AND expires_at > clock_timestamp()", k=key
        )
        return int(rows[0][0]) if rows else 0

    async def get_expiry(self, key: str) -> float:
        rows = await self.db.statement("SELECT extract(epoch FROM expires_at) FROM rate_counter WHERE key = :k", k=key)
        return float(rows[0][0]) if rows else time.time()

    async def check(self) -> bool:
        return await self.db.ping()

    async def reset(self) -> int | None:
        async with self.db.transaction() as tx:
            found = await tx.session.execute(text("DELETE FROM rate_counter"))
            return int(found.rowcount)  # type: ignore[attr-defined]

    async def clear(self, key: str) -> None:
        async with self.db.transaction() as tx:
            await tx.session.execute(text("DELETE FROM rate_counter WHERE key = :k"), {"k": key})

    async def prune(self) -> None:
        """Windows that ended (an hourly job)."""
        async with self.db.transaction() as tx:
            await tx.session.execute(text("DELETE FROM rate_counter WHERE expires_at < clock_timestamp()"))


class RateLimits:
    """The limits of one deployment: `await limits.hit("600/minute", "client", client_id)`."""

    def __init__(self, db: Database) -> None:
        self.storage = PostgresStorage(db)
        self.limiter = FixedWindowRateLimiter(self.storage)
        self._items: dict[str, RateLimitItem] = {}

    def item(self, rule: str) -> RateLimitItem:
        if rule not in self._items:
            self._items[rule] = parse(rule)
        return self._items[rule]

    async def hit(self, rule: str, what: str, who: str) -> None:
        """Count one request of `who` under `what`; TooManyRequests when over `rule`."""
        item = self.item(rule)
        if await self.limiter.hit(item, what, who):
            return
        stats = await self.limiter.get_window_stats(item, what, who)
        raise TooManyRequests(what, max(1, math.ceil(stats.reset_time - time.time())))
