"""Signed JSON over HTTP: how we push to SMS providers, booking software and regulators.

The Standard Webhooks form (contract v2, "Signed pushes"), made with the `standardwebhooks`
library: `webhook-id` (the same on every retry of one message, so that a receiver can answer a
duplicate as such — we treat 409 as delivered), `webhook-timestamp` (Unix seconds, when this
attempt was sent: a receiver refuses old ones, so a capture cannot be replayed later) and
`webhook-signature`: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, one per secret,
space-separated while a secret is being rotated. Never signed with an empty secret: the push
fails instead (and is retried, so a secret set later still delivers it).

Where the POST goes is checked by the outbound policy (services/common/outbound.py): an address
that is not public is refused, at connection too, and redirects are not followed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import aiohttp
from standardwebhooks.webhooks import Webhook

from services.common.outbound import GuardedResolver, OutboundPolicy, RefusedDestination

EVENT_ID_HEADER = "X-SAS-Event-ID"  # version 1's name of `webhook-id`, still sent


class DeliveryFailed(Exception):
    """The receiver did not take the message (network error, timeout, refused, or an HTTP error)."""


def signer(secret: str) -> Webhook:
    """A `whsec_<base64>` secret as the library reads it; any other text is the key's bytes."""
    return Webhook(secret if secret.startswith("whsec_") else secret.encode())


def signature(secrets: Sequence[str], event_id: str, sent_at: float, body: bytes) -> str:
    """The `webhook-signature` header: one `v1,…` per secret, space-separated."""
    when = datetime.fromtimestamp(sent_at, tz=UTC)
    return " ".join(signer(s).sign(event_id, when, body.decode()) for s in secrets)


def signed_headers(secrets: Sequence[str], event_id: str, body: bytes, sent_at: float | None = None) -> dict[str, str]:
    usable = [s for s in secrets if s]
    if not usable:
        raise DeliveryFailed("no signing secret for this receiver: nothing is sent unsigned")
    sent_at = time.time() if sent_at is None else sent_at
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(sent_at)),
        "webhook-signature": signature(usable, event_id, int(sent_at), body),
        EVENT_ID_HEADER: event_id,
    }


class SignedPoster:
    """Signed JSON POSTs through one HTTP session per process: a client per message builds a new
    TLS context each time, which was the most expensive thing the service did under load. The
    session is aiohttp's: under load httpx cost about three times its CPU per POST."""

    def __init__(self, policy: OutboundPolicy | None = None, timeout: float = 10.0) -> None:
        self.policy = policy or OutboundPolicy()
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def post(
        self,
        url: str,
        payload: dict[str, Any],
        secrets: Sequence[str],
        event_id: str,
        headers: dict[str, str] | None = None,
    ) -> int:
        """POST `payload`; returns the status for 2xx and 409 (a duplicate), raises DeliveryFailed otherwise."""
        try:
            self.policy.check_shape(url)  # an address in the URL is never resolved: checked here
        except RefusedDestination as refused:
            raise DeliveryFailed(f"refused destination: {refused}") from None
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        sent = {"Content-Type": "application/json", **signed_headers(secrets, event_id, body), **(headers or {})}
        if self._session is None or self._session.closed:  # made in the loop that uses it
            connector = aiohttp.TCPConnector(resolver=GuardedResolver(self.policy))
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout), connector=connector
            )
        try:
            async with self._session.post(url, data=body, headers=sent, allow_redirects=False) as response:
                status = response.status
                if status == 409 or 200 <= status < 300:
                    return status
                text = (await response.content.read(200)).decode(errors="replace")
        except (aiohttp.ClientError, TimeoutError, ValueError, OSError) as error:
            raise DeliveryFailed(f"{type(error).__name__}: {error}") from error
        raise DeliveryFailed(f"HTTP {status}: {text}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
