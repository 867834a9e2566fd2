"""Keeps this process's DirectoryIndex in step with the matcher's tables.

At start: LISTEN on `matcher_directory` first, then load a snapshot, so that no change falls
between the two. Then every notification (`<kind>:<key>`, sent by triggers on commit) reloads
that row; revisions make a late or repeated reload harmless. If the listening connection
drops, everything is loaded again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.clock import Clock
from services.common.db import Database
from services.matcher import repository as repo
from services.matcher.domain import matching as d
from services.matcher.domain.index import DirectoryIndex, Territory

log = structlog.get_logger(__name__)
CHANNEL = "matcher_directory"


class IndexSync:
    def __init__(self, db: Database, index: DirectoryIndex, clock: Clock, interval: float = 0.005) -> None:
        self.db, self.index, self.clock, self.interval = db, index, clock, interval
        self._pending: set[str] = set()
        # told after the index took in a change: which professionals changed (None: maybe all)
        self.on_change: list[Callable[[set[str] | None], None]] = []
        self._wake = asyncio.Event()
        self._listener: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._listen()
        await self.load_all()
        self._task = asyncio.create_task(self._run(), name="matcher-index-sync")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._listener is not None and not self._listener.is_closed():
            await self._listener.close()

    async def _listen(self) -> None:
        connection = await self.db.own_connection()  # it only listens
        await connection.add_listener(CHANNEL, self._notified)
        connection.add_termination_listener(lambda _: self._wake.set())
        self._listener = connection

    def _notified(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        self._pending.add(payload)
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            keys: set[str] = set()
            try:
                if self._listener is None or self._listener.is_closed():
                    log.warning("index listener lost: reloading everything")
                    await self._listen()
                    await self.load_all()
                    continue
                keys, self._pending = self._pending, set()
                await self.refresh(keys)
            except Exception:
                log.exception("index refresh failed; retrying")
                self._pending |= keys  # nothing heard is forgotten
                self._wake.set()
                await asyncio.sleep(1)
            await asyncio.sleep(self.interval)  # gather a burst of changes into one round

    async def load_all(self) -> None:
        now = self.clock()
        async with self.db.engine.connect() as conn:
            territories = (await conn.execute(text("SELECT * FROM territory"))).mappings().all()
            for row in territories:
                self.index.put_territory(_territory(row), row["revision"])
            await self._load_professionals(conn, None)
            await self._load_slots(
                conn, "start >= :since AND state IN ('free', 'held')", {"since": now - timedelta(hours=1)}
            )
            await self._load_offers(conn, None, now)
        for callback in self.on_change:
            callback(None)  # anything may have changed while nobody listened
        log.info(
            "candidate index loaded",
            territories=len(self.index.territories),
            professionals=len(self.index.professionals),
            slots=len(self.index.slots),
        )

    async def refresh(self, keys: Iterable[str]) -> None:
        """Reload the rows named `<kind>:<key>` (a notification's payload)."""
        wanted: dict[str, list[str]] = defaultdict(list)
        for key in keys:
            kind, _, ident = key.partition(":")
            wanted[kind].append(ident)
        async with self.db.engine.connect() as conn:
            if wanted["territory"]:
                rows = await conn.execute(
                    text("SELECT * FROM territory WHERE cpts_id = ANY(:ids)"), {"ids": wanted["territory"]}
                )
                for row in rows.mappings():
                    self.index.put_territory(_territory(row), row["revision"])
            if wanted["professional"]:
                await self._load_professionals(conn, wanted["professional"])
            if wanted["slot"]:
                await self._load_slots(conn, "slot_id = ANY(:ids)", {"ids": wanted["slot"]})
            if wanted["load"]:
                await self._load_offers(conn, wanted["load"], self.clock())
        changed: set[str] | None = None
        if not wanted["territory"]:
            changed = {*wanted["professional"], *wanted["load"]}
            changed |= {entry.rpps for slot_id in wanted["slot"] if (entry := self.index.slots.get(slot_id))}
        for callback in self.on_change:
            callback(changed)

    async def _load_professionals(self, conn: AsyncConnection, rpps: list[str] | None) -> None:
        where, params = ("WHERE p.rpps = ANY(:ids)", {"ids": rpps}) if rpps is not None else ("", {})
        rows = await conn.execute(
            text(
                "SELECT p.*, greatest(p.revision, coalesce(max(s.revision), 0)) AS seen, "
                "coalesce(json_agg(to_jsonb(s)) FILTER (WHERE s.site_id IS NOT NULL), '[]') AS sites "
                f"FROM professional p LEFT JOIN site s ON s.rpps = p.rpps {where} GROUP BY p.rpps"
            ),
            params,
        )
        for row in rows.mappings():
            pro = repo.to_domain_professional(_Row(row))
            sites = [repo.to_domain_site(_Row(s)) for s in row["sites"]]
            self.index.put_professional(pro, sites, row["seen"])

    async def _load_slots(self, conn: AsyncConnection, where: str, params: dict[str, Any]) -> None:
        rows = await conn.execute(
            text(f'SELECT slot_id, rpps, site_id, start, "end", mode, state, revision FROM slot WHERE {where}'), params
        )
        for r in rows:
            self.index.put_slot(r.slot_id, r.rpps, r.site_id, r.start, r.end, r.mode, r.state, r.revision)

    async def _load_offers(self, conn: AsyncConnection, rpps: list[str] | None, now: datetime) -> None:
        """Who has an offer pending, SAS patients per week, overflow patients per day."""
        where = "AND rpps = ANY(:ids)" if rpps is not None else ""
        rows = (
            await conn.execute(
                text(
                    "SELECT rpps, kind, status, start FROM match_offer "
                    f"WHERE status IN ('pending', 'accepted') AND start >= :since {where}"
                ),
                {"since": now - timedelta(days=8), "ids": rpps},
            )
        ).all()
        index = self.index
        if rpps is None:
            index.busy.clear()
            index.overflow_taken.clear()
            index.week_load.clear()
        else:
            index.busy.difference_update(rpps)
            for who in rpps:
                index.overflow_taken.pop(who, None)
            for key in [k for k in index.week_load if k[0] in rpps]:
                del index.week_load[key]
        for r in rows:
            if r.status == "pending":
                self.index.busy.add(r.rpps)
            else:
                week = (r.rpps, d.paris_week(r.start))
                self.index.week_load[week] = self.index.week_load.get(week, 0) + 1
            if r.kind == "overflow":
                taken = self.index.overflow_taken.setdefault(r.rpps, {})
                taken[d.paris_day(r.start)] = taken.get(d.paris_day(r.start), 0) + 1


class _Row:
    """Attribute access over a mapping, for the repository's row-to-domain functions."""

    def __init__(self, mapping: Any) -> None:
        self._m = mapping

    def __getattr__(self, name: str) -> Any:
        return self._m.get(name)


def _territory(row: Any) -> Territory:
    return Territory(
        row["cpts_id"],
        row["name"],
        frozenset(row["communes"]),
        row["radius_km"],
        row["offer_timeout_minutes"],
        row["parallel_offers"],
    )
