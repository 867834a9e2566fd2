"""Regulators' callbacks: each status change of a request pushed to its `callback_url`, in order.

The same event id on every retry; a 2xx or a 409 (the receiver already had it) is delivered;
anything else is retried with a growing delay, up to CALLBACK_TRIES times. A request's next
callback waits until the one before it is delivered or given up.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import text

from services.common.access.registry import ClientRegistry
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
    client_id: str | None  # whose signing secret signs it

    @classmethod
    def of(cls, row: CallbackDelivery, client_id: str | None) -> Callback:
        assert row.id is not None, "flushed"
        return cls(row.id, row.request_id, row.event_id, row.url, row.payload, client_id)


class CallbackSecrets:
    """The secrets a regulator's callbacks are signed with: its client's `signing_secret` (and the
    previous one while a rotation overlaps); CALLBACK_SECRET for the environment's keys."""

    def __init__(self, clients: ClientRegistry, environment_secret: str) -> None:
        self.clients, self.environment_secret = clients, environment_secret

    async def of(self, client_id: str | None) -> list[str]:
        own = await self.clients.signing_secrets(client_id) if client_id else []
        return own or ([self.environment_secret] if self.environment_secret else [])


class RegulatorCallbacks:
    """The intake's `Outbound` (see services/common/delivery.py)."""

    def __init__(self, poster: SignedPoster, secrets: CallbackSecrets) -> None:
        self.poster, self.secrets = poster, secrets

    async def claim(self, tx: Transaction, now: datetime, limit: int, lease_until: datetime) -> list[Callback]:
        rows = await tx.session.execute(
            text(
                "UPDATE callback_delivery SET next_attempt_at = :lease WHERE id IN ("
                " SELECT id FROM callback_delivery d WHERE status = 'pending' AND next_attempt_at <= :now"
                " AND NOT EXISTS (SELECT 1 FROM callback_delivery e WHERE e.request_id = d.request_id"
                " AND e.status = 'pending' AND e.id < d.id)"
                " ORDER BY id LIMIT :n FOR UPDATE SKIP LOCKED)"
                " RETURNING id, request_id, event_id, url, payload, (SELECT o.client_id FROM orientation_request o"
                "   WHERE o.request_id = callback_delivery.request_id) AS client_id"
            ),
            {"now": now, "n": limit, "lease": lease_until},
        )
        found = (Callback(r.id, r.request_id, r.event_id, r.url, r.payload, r.client_id) for r in rows)
        return sorted(found, key=lambda c: c.id)

    def key(self, item: Callback) -> Hashable:
        return item.request_id

    async def send(self, item: Callback) -> None:
        await self.poster.post(
            item.url,
            item.payload,
            await self.secrets.of(item.client_id),
            item.event_id,
            {
                "X-Request-ID": str(item.payload.get("request_id") or item.request_id),  # the regulator's id
                "X-Correlation-ID": str(item.payload.get("correlation_id") or item.payload.get("request_id")),
            },
        )

    async def record(self, tx: Transaction, item: Callback, error: str | None, now: datetime) -> bool:
        """One statement: the outcome, and whether the request has a later callback waiting."""
        row = (
            await tx.session.execute(
                text(
                    "UPDATE callback_delivery SET attempts = attempts + 1,"
                    " status = CASE WHEN :ok THEN 'delivered'"
                    "   WHEN attempts + 1 >= :tries THEN 'failed' ELSE status END,"
                    " delivered_at = CASE WHEN :ok THEN CAST(:now AS timestamptz) ELSE delivered_at END,"
                    " last_error = CASE WHEN :ok THEN last_error ELSE CAST(:error AS varchar) END,"
                    " next_attempt_at = CASE WHEN :ok THEN next_attempt_at"
                    "   ELSE CAST(:now AS timestamptz) + least(300, power(2, attempts + 1)) * interval '1 second' END"
                    " WHERE id = :id AND status = 'pending'"
                    " RETURNING attempts, EXISTS (SELECT 1 FROM callback_delivery later"
                    "   WHERE later.request_id = callback_delivery.request_id AND later.status = 'pending'"
                    "   AND later.id > callback_delivery.id) AS more"
                ),
                {"ok": error is None, "tries": CALLBACK_TRIES, "now": now, "error": error, "id": item.id},
            )
        ).first()
        if row is None:  # no longer pending (given up, or recorded by another process)
            return False
        if error is not None:
            log.warning("callback not delivered", request_id=item.request_id, attempts=row.attempts, error=error)
        return bool(row.more)
