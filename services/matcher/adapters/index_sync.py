"""Keeps this process's DirectoryIndex in step with the matcher's tables.

At start: LISTEN on `matcher_directory` first (through the process's one listening connection,
services/common/db_listener.py), then load a snapshot, so that no change falls between the two.
Then every notification (`<kind>:<key>`, sent by triggers on commit) reloads that row — but a
slot's, which carries the slot itself (`slotrow:<json>`, matcher_0013) and is put in the index as
it is; revisions make a late or repeated change harmless. If the listening connection drops,
everything is loaded again once it listens again. Rows are read on a plain connection of the
index's own, which does not listen.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import structlog

from services.common.clock import Clock, paris_week
from services.common.db import Database
from services.common.db_listener import DatabaseListener
from services.matcher.adapters import repository
from services.matcher.domain import matching
from services.matcher.domain.index import DirectoryIndex, Territory

log = structlog.get_logger(__name__)
CHANNEL = "matcher_directory"


class IndexSync:
    def __init__(
        self,
        db: Database,
        index: DirectoryIndex,
        clock: Clock,
        interval: float = 0.005,
        on_change: Callable[[set[str] | None], None] | None = None,
        listener: DatabaseListener | None = None,
    ) -> None:
        """`listener`: the process's listening connection (one of its own when not given)."""
        self.db, self.index, self.clock, self.interval = db, index, clock, interval
        self.listener = listener or DatabaseListener(db)
        self._own_listener = listener is None
        self._stale = False  # changes may have been missed (the listening connection was lost)
        self._pending: set[str] = set()
        # told after the index took in a change: which professionals changed (None: maybe all)
        self.on_change: list[Callable[[set[str] | None], None]] = [on_change] if on_change else []
        self._wake = asyncio.Event()
        self._reader: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        # one query at a time on the connection (the sync task and writers' own refreshes)
        self._reading = asyncio.Lock()

    async def start(self) -> None:
        self.listener.when_lost(self._lost)
        self.listener.when_listening(self._wake.set)  # (stale: everything is loaded again)
        await self.listener.listen(CHANNEL, self._notified)
        await self.load_all()
        self._task = asyncio.create_task(self._run(), name="matcher-index-sync")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._reader is not None and not self._reader.is_closed():
            await self._reader.close()
        if self._own_listener:
            await self.listener.close()

    def _lost(self) -> None:
        self._stale = True
        self._wake.set()
        self.db.connections_lost()  # the server ended a connection: the pooled ones are gone too

    def _notified(self, payload: str) -> None:
        self._pending.add(payload)
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            keys: set[str] = set()
            try:
                if self._stale:
                    if not self.listener.listening:
                        continue  # woken again once it listens
                    log.warning("index listener was lost: reloading everything")
                    await self.load_all()  # listening first, then the snapshot: nothing falls between
                    self._stale = False
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
        async with self._reading:
            conn = await self._connection()
            for row in await conn.fetch("SELECT * FROM territory"):
                self.index.put_territory(_territory(row), row["revision"])
            await self._load_professionals(conn, None)
            await self._load_slots(conn, "start >= $1 AND state IN ('free', 'held')", now - timedelta(hours=1))
            await self._load_offers(conn, None, now)
        for callback in self.on_change:
            callback(None)  # anything may have changed while nobody listened
        log.info(
            "candidate index loaded",
            territories=len(self.index.territories),
            professionals=len(self.index.professionals),
            slots=len(self.index.slots),
        )

    async def reload(self, keys: list[str]) -> None:
        """For a directory write that committed: this process's index takes the change in before
        the write answers. Should the listening connection be away, the sync task reconnects and
        reloads everything; the write has succeeded all the same."""
        try:
            await self.refresh(keys)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            log.warning("index refresh after a write deferred", error=f"{type(error).__name__}: {error}")
            self._pending.update(keys)
            self._wake.set()

    async def refresh(self, keys: Iterable[str]) -> None:
        """Reload the rows named `<kind>:<key>` (a notification's payload)."""
        wanted: dict[str, list[str]] = defaultdict(list)
        for key in keys:
            kind, _, ident = key.partition(":")
            wanted[kind].append(ident)
        carried = [json.loads(payload) for payload in wanted["slotrow"]]  # the slots themselves (matcher_0013)
        for row in carried:
            start, end = (datetime.fromtimestamp(float(row[k]), UTC) for k in ("start", "end"))
            self.index.put_slot(
                row["slot_id"], row["rpps"], row["site_id"], start, end, row["mode"], row["state"], row["revision"]
            )
        async with self._reading:
            conn = await self._connection()
            if wanted["territory"]:
                for row in await conn.fetch("SELECT * FROM territory WHERE cpts_id = ANY($1)", wanted["territory"]):
                    self.index.put_territory(_territory(row), row["revision"])
            if wanted["professional"]:
                await self._load_professionals(conn, wanted["professional"])
            if wanted["slot"]:
                await self._load_slots(conn, "slot_id = ANY($1)", wanted["slot"])
            if wanted["load"]:
                await self._load_offers(conn, wanted["load"], self.clock())
        changed: set[str] | None = None
        if not wanted["territory"]:
            changed = {*wanted["professional"], *wanted["load"]}
            slot_ids = [*wanted["slot"], *(row["slot_id"] for row in carried)]
            changed |= {entry.rpps for slot_id in slot_ids if (entry := self.index.slots.get(slot_id))}
        for callback in self.on_change:
            callback(changed)

    async def _connection(self) -> asyncpg.Connection:
        """The index's own plain connection (opened again when it was lost): a reload is a few
        plain queries, and asyncpg without the ORM around it costs a fraction of the CPU (the
        index reloads rows several times per request under load). Called holding `_reading`."""
        if self._reader is None or self._reader.is_closed():
            self._reader = await self.db.own_connection()
        return self._reader

    async def _load_professionals(self, conn: asyncpg.Connection, rpps: list[str] | None) -> None:
        where, params = ("WHERE p.rpps = ANY($1)", [rpps]) if rpps is not None else ("", [])
        rows = await conn.fetch(
            "SELECT p.*, greatest(p.revision, coalesce(max(s.revision), 0)) AS seen, "
            "coalesce(json_agg(to_jsonb(s)) FILTER (WHERE s.site_id IS NOT NULL), '[]') AS sites "
            f"FROM professional p LEFT JOIN site s ON s.rpps = p.rpps {where} GROUP BY p.rpps",
            *params,
        )
        for row in rows:
            pro = repository.to_domain_professional(_Row(row))
            sites = [repository.to_domain_site(_Row(s)) for s in _json(row["sites"])]
            self.index.put_professional(pro, sites, row["seen"])

    async def _load_slots(self, conn: asyncpg.Connection, where: str, param: Any) -> None:
        rows = await conn.fetch(
            f'SELECT slot_id, rpps, site_id, start, "end", mode, state, revision FROM slot WHERE {where}', param
        )
        for r in rows:
            self.index.put_slot(
                r["slot_id"], r["rpps"], r["site_id"], r["start"], r["end"], r["mode"], r["state"], r["revision"]
            )

    async def _load_offers(self, conn: asyncpg.Connection, rpps: list[str] | None, now: datetime) -> None:
        """Who has an offer pending, SAS patients per week, overflow patients per day."""
        where, params = ("AND rpps = ANY($2)", [rpps]) if rpps is not None else ("", [])
        rows = await conn.fetch(
            "SELECT rpps, kind, status, start FROM match_offer "
            f"WHERE status IN ('pending', 'accepted') AND start >= $1 {where}",
            now - timedelta(days=8),
            *params,
        )
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
            who, start = r["rpps"], r["start"]
            if r["status"] == "pending":
                index.busy.add(who)
            else:
                week = (who, paris_week(start))
                index.week_load[week] = index.week_load.get(week, 0) + 1
            if r["kind"] == "overflow":
                taken = index.overflow_taken.setdefault(who, {})
                taken[matching.paris_day(start)] = taken.get(matching.paris_day(start), 0) + 1


def _json(value: Any) -> Any:
    """json_agg comes back decoded or as text, depending on the connection's codecs."""
    return json.loads(value) if isinstance(value, str) else value


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
