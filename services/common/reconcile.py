"""A safety net under the outbox and the broker watch: requests stuck in a service are pushed on.

The outbox and the broker watch make sure that every event reaches its consumers, even across a
broker that loses its log. Should an event go missing all the same (a loss the watch could not
see, an operator's mistake), the request it was about would wait for ever. So each service says
which requests are stuck on its side — received but never searched, an offer past its time limit
still pending, an acceptance never confirmed — and the reconciler publishes that request's events
again, from the service's outbox, under their own ids: a consumer that had them skips them, one
that had not goes on. It tries a request again after 1, 2, 4 … minutes (at most hourly) while it
stays stuck, and logs each round, so that a request that stays stuck shows.
"""

from __future__ import annotations

import asyncio

import structlog
from sqlalchemy import text

from services.common import metrics
from services.common.db import Database

log = structlog.get_logger(__name__)


class Reconciler:
    def __init__(self, db: Database, stuck: str, first_backoff: float = 60.0, max_backoff: float = 3600.0) -> None:
        self.db = db
        self.stuck = stuck  # SQL selecting the ids of the requests stuck on this service's side
        self.first_backoff, self.max_backoff = first_backoff, max_backoff
        self._again: dict[str, tuple[float, float]] = {}  # request id → (when to try again, last back-off)

    async def run_once(self) -> int:
        """Publish again the events of the stuck requests whose turn it is; returns how many requests."""
        async with self.db.engine.connect() as conn:
            stuck = [str(row[0]) for row in await conn.execute(text(self.stuck))]
        now = asyncio.get_running_loop().time()
        self._again = {r: self._again[r] for r in stuck if r in self._again}  # forget those that moved on
        due = [r for r in stuck if self._again.get(r, (0.0, 0.0))[0] <= now]
        if not due:
            return 0
        async with self.db.engine.begin() as conn:
            result = await conn.execute(
                text(
                    "UPDATE outbox_message SET published_at = NULL WHERE key = ANY(:due) AND published_at IS NOT NULL"
                ),
                {"due": due},
            )
        for request_id in due:
            backoff = min(self.max_backoff, 2 * self._again.get(request_id, (0.0, self.first_backoff / 2))[1])
            self._again[request_id] = (now + backoff, backoff)
        events = int(getattr(result, "rowcount", 0) or 0)
        metrics.EVENTS_REPUBLISHED.labels(self.db.schema, "stuck").inc(events)
        log.warning(
            "stuck requests: their events published again",
            schema=self.db.schema,
            requests=len(due),
            events=events,
            sample=due[:5],
        )
        return len(due)
