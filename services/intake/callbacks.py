"""Regulators' callbacks: each status change of a request pushed to its `callback_url`, in order.

The same event id on every retry; a 2xx or a 409 (the receiver already had it) is delivered;
anything else is retried with a growing delay, up to CALLBACK_TRIES times. A request's next
callback waits until the one before it is delivered or given up.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import text

from services.common.db import Transaction
from services.common.signing import SignedPoster
from services.intake.models import CallbackDelivery

log = structlog.get_logger(__name__)
CALLBACK_TRIES = 12


@dataclass(frozen=True)
class Callback:
    id: int
    request_id: str
    event_id: str
    url: str
    payload: dict[str, Any]


class RegulatorCallbacks:
    """The intake's `Outbound` (see services/common/delivery.py)."""

    def __init__(self, poster: SignedPoster, secret: str) -> None:
        self.poster, self.secret = poster, secret

    async def claim(self, tx: Transaction, now: datetime, limit: int, lease_until: datetime) -> list[Callback]:
        rows = await tx.session.execute(
            text(
                "UPDATE callback_delivery SET next_attempt_at = :lease WHERE id IN ("
                " SELECT id FROM callback_delivery d WHERE status = 'pending' AND next_attempt_at <= :now"
                " AND NOT EXISTS (SELECT 1 FROM callback_delivery e WHERE e.request_id = d.request_id"
                " AND e.status = 'pending' AND e.id < d.id)"
                " ORDER BY id LIMIT :n FOR UPDATE SKIP LOCKED)"
                " RETURNING id, request_id, event_id, url, payload"
            ),
            {"now": now, "n": limit, "lease": lease_until},
        )
        return sorted((Callback(r.id, r.request_id, r.event_id, r.url, r.payload) for r in rows), key=lambda c: c.id)

    def key(self, item: Callback) -> Hashable:
        return item.request_id

    async def send(self, item: Callback) -> None:
        await self.poster.post(
            item.url,
            item.payload,
            self.secret,
            item.event_id,
            {
                "X-Request-ID": item.request_id,
                "X-Correlation-ID": str(item.payload.get("correlation_id") or item.request_id),
            },
        )

    async def record(self, tx: Transaction, item: Callback, error: str | None, now: datetime) -> None:
        delivery = await tx.session.get(CallbackDelivery, item.id, with_for_update=True)
        if delivery is None or delivery.status != "pending":
            return
        delivery.attempts += 1
        if error is None:
            delivery.status, delivery.delivered_at = "delivered", now
            return
        delivery.last_error = error
        delivery.next_attempt_at = now + timedelta(seconds=min(300, 2**delivery.attempts))
        if delivery.attempts >= CALLBACK_TRIES:
            delivery.status = "failed"
        log.warning("callback not delivered", request_id=item.request_id, attempts=delivery.attempts, error=error)
