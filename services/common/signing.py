"""Signed JSON over HTTP: how we push to SMS providers, booking software and regulators.

The body is signed with HMAC-SHA256 under a shared secret; the receiver recomputes it over the
raw body and compares (`X-SAS-Signature: sha256=<hex>`). `X-SAS-Event-ID` is the same on every
retry of one message, so a receiver can answer a duplicate as such (we treat 409 as delivered).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx

SIGNATURE_HEADER = "X-SAS-Signature"
EVENT_ID_HEADER = "X-SAS-Event-ID"


class DeliveryFailed(Exception):
    """The receiver did not take the message (network error, timeout, or an HTTP error)."""


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, body), signature)


async def post_signed(
    url: str,
    payload: dict[str, Any],
    secret: str,
    event_id: str,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> int:
    """POST `payload`; returns the status for 2xx and 409 (a duplicate), raises DeliveryFailed otherwise."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    sent = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, body),
        EVENT_ID_HEADER: event_id,
        **(headers or {}),
    }
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.post(url, content=body, headers=sent)
    except httpx.HTTPError as error:
        raise DeliveryFailed(f"{type(error).__name__}: {error}") from error
    if response.status_code == 409 or 200 <= response.status_code < 300:
        return response.status_code
    raise DeliveryFailed(f"HTTP {response.status_code}: {response.text[:200]}")
