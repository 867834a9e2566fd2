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
from services.common.db import Database, Transaction
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

    async def record(self, db: Database, sent: list[tuple[Callback, str | None]], now: datetime) -> bool:
        """One statement on its own (no transaction around it) for all the outcomes, and whether
        a request has a later callback waiting. Rows no longer pending (given up, or recorded by
        another process) are left as they are. Should the connection have died under it, it is
        tried once more: a delivery recorded already is not pending any more, a failure may be
        counted twice."""
        rows = await db.statement(
            "UPDATE callback_delivery d SET attempts = d.attempts + 1,"
            " status = CASE WHEN r.ok THEN 'delivered' WHEN d.attempts + 1 >= :tries THEN 'failed' ELSE d.status END,"
            " delivered_at = CASE WHEN r.ok THEN CAST(:now AS timestamptz) ELSE d.delivered_at END,"
            " last_error = CASE WHEN r.ok THEN d.last_error ELSE r.error END,"
            " next_attempt_at = CASE WHEN r.ok THEN d.next_attempt_at"
            "   ELSE CAST(:now AS timestamptz) + least(300, power(2, d.attempts + 1)) * interval '1 second' END"
            " FROM unnest(CAST(:ids AS bigint[]), CAST(:oks AS boolean[]), CAST(:errors AS varchar[]))"
            "   AS r(id, ok, error)"
            " WHERE d.id = r.id AND d.status = 'pending'"
            " RETURNING d.request_id, d.attempts, r.error, EXISTS (SELECT 1 FROM callback_delivery later"
            "   WHERE later.request_id = d.request_id AND later.status = 'pending' AND later.id > d.id) AS more",
            tries=CALLBACK_TRIES,
            now=now,
            ids=[item.id for item, _ in sent],
            oks=[error is None for _, error in sent],
            errors=[error for _, error in sent],
        )
        for row in rows:
            if row.error is not None:
                log.warning("callback not delivered", request_id=row.request_id, attempts=row.attempts, error=row.error)
        return any(row.more for row in rows)
