"""The waiting list: requests nobody could take yet, looked at again most urgent first (24 h,
then the earliest deadline) when a professional they could reach changes or frees up, and when
their time to look again comes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog

from services.common.db import database_away
from services.matcher.adapters import models
from services.matcher.allocation import proposals
from services.matcher.allocation.cascade import Cascade
from services.matcher.allocation.ports import AllocationStorage
from services.matcher.domain.decision import Wait, serving_order
from services.matcher.domain.index import DirectoryIndex

log = structlog.get_logger(__name__)


class Changes:
    """What happened since the list was last looked at: the professionals changed (None: maybe
    anyone, as a territory changed) and the requests that just started waiting. Kept apart
    from the list so that the cascade can be told of a new waiting request when it is built."""

    def __init__(self, wake: Callable[[], None]) -> None:
        """`wake` looks at the list soon (a Pump's poke)."""
        self.wake = wake
        self.changed: set[str] | None = None  # None: anyone
        self.fresh: set[str] = set()

    def professionals_changed(self, professionals: set[str] | None) -> None:
        """Professionals' slots, offers or details changed: the waiting requests they could
        reach deserve a look."""
        self._remember(professionals)
        self.wake()

    def just_waiting(self, request_id: str) -> None:
        self.fresh.add(request_id)
        self.wake()

    def take(self) -> tuple[set[str] | None, set[str]]:
        changed, fresh = self.changed, self.fresh
        self.changed, self.fresh = set(), set()
        return changed, fresh

    def put_back(self, changed: set[str] | None, fresh: set[str]) -> None:
        self._remember(changed)
        self.fresh |= fresh

    def _remember(self, professionals: set[str] | None) -> None:
        if professionals is None or self.changed is None:
            self.changed = None
        else:
            self.changed |= professionals


class WaitingList:
    def __init__(
        self,
        storage: AllocationStorage,
        clock: Callable[[], datetime],
        lead_time: timedelta,
        index: DirectoryIndex,
        cascade: Cascade,
        changes: Changes,
    ) -> None:
        self.storage, self.clock, self.lead_time, self.index = storage, clock, lead_time, index
        self.cascade, self.changes = cascade, changes
        # when this process last found nobody waiting (event-loop time): for a while after that,
        # changes alone do not send it to the database to look again (see _serve)
        self._none_waiting_at: float | None = None
        self.recheck_after = 1.0

    async def serve(self) -> int:
        """Look again at waiting requests, most urgent first: those a changed professional could
        reach, and those whose time to look again has come.

        One matcher process at a time serves the list (an advisory lock), so that the order
        holds across processes; a process that finds the lock taken tries again shortly.
        """
        now = self.clock()
        changed, fresh = self.changes.take()
        try:
            return await self._serve(now, changed, fresh)
        except Exception:
            self.changes.put_back(changed, fresh)  # the pump tries again: nothing that changed is forgotten
            raise

    async def _serve(self, now: datetime, changed: set[str] | None, fresh: set[str]) -> int:
        """Under load the index changes several times per request and nobody waits: a process
        that found the list empty less than `recheck_after` ago, and has put nobody on it since,
        keeps the changes for its next look instead of asking the database. A request another
        process put on the list is served by that process, which hears the same changes (and
        this one looks again within `recheck_after` all the same, should that one have died)."""
        loop_time = asyncio.get_running_loop().time()
        quiet = self._none_waiting_at is not None and loop_time - self._none_waiting_at < self.recheck_after
        if quiet and not fresh:
            self.changes.put_back(changed, fresh)
            return 0
        async with self.storage.waiting_list() as locked:
            if locked is None:
                self._none_waiting_at = loop_time
                return 0
            self._none_waiting_at = None
            if not locked:
                self.changes.put_back(changed, fresh)  # another process serves the list now: try again shortly
                asyncio.get_running_loop().call_later(0.1, self.changes.wake)
                return 0
            await self._serve_in_order(now, changed, fresh)
            return 0

    async def _serve_in_order(self, now: datetime, changed: set[str] | None, fresh: set[str]) -> None:
        nothing_changed = changed is not None and not changed
        async with self.storage.transaction() as tx:  # nothing changed: only those due, and the new
            store = self.storage.store(tx)
            rows = await store.waiting_searches(now=now, only_due_and=fresh if nothing_changed else None)
            asked = await store.asked_for([r.request_id for r in rows])
        queue = sorted(rows, key=lambda r: serving_order(r.urgency, r.deadline, r.received_at, r.request_id))
        started = time.perf_counter()
        for row in queue:
            try:
                await self._look_again(row, asked.get(row.request_id, frozenset()), changed, fresh)
            except Exception as error:
                if database_away(error):
                    raise  # the whole look waits for the database (the pump retries)
                # this request's own fault: the others must still be served
                log.exception("waiting request could not be looked at", request_id=row.request_id)
        if queue:
            log.debug("waiting list looked at", waiting=len(queue), ms=round(1000 * (time.perf_counter() - started)))

    async def _look_again(
        self, row: models.SearchRecord, asked: frozenset[str], changed: set[str] | None, fresh: set[str]
    ) -> None:
        """Decide in memory first: a request that still waits for the same reason costs no
        transaction (at most its time to look again moves); otherwise the cascade runs on the
        locked row, as for any other event. A request whose time has not come, and that none of
        the changed professionals could reach, is not even looked at."""
        now = self.clock()
        query = proposals.query_for(self.index, row, asked)
        due = row.look_again_at is None or row.look_again_at <= now or row.request_id in fresh
        if not due and changed is not None and not self.index.within_reach(changed, query):
            return
        decision = proposals.decision_for(self.index, row, query, now, self.lead_time)
        if isinstance(decision, Wait) and decision.reason == row.wait_reason:
            if decision.look_again_at != row.look_again_at:
                async with self.storage.transaction() as tx:
                    await self.storage.store(tx).move_look_again(row.request_id, decision.look_again_at)
            return
        async with self.storage.transaction() as tx:
            search = await self.storage.store(tx).search(row.request_id, lock=True)
            if search is not None and search.status == models.SearchStatus.WAITING:
                await self.cascade.search(tx, search, now)
