"""A signing secret of its own for each booking software's webhook, kept out of every topic.

A booking software's webhook is signed with a secret derived from `WEBHOOK_SECRET`, the
receiver's URL and a version number: HMAC-SHA256(master, "webhook|url|n").
The matcher shows it once, when the webhook is set or its secret rotated; the notifier derives
the same one to sign. So no receiver can sign for another, the secret never travels in an event
(only its version does), and rotating one receiver's secret is a new version: during the overlap
the notifier signs with both. Pure functions, no I/O.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta
from typing import Any

ROTATION_OVERLAP = timedelta(hours=24)


def receiver_secret(master: str, url: str, version: int) -> str:
    """The `whsec_…` secret of one webhook receiver at one version."""
    digest = hmac.new(master.encode(), f"webhook|{url}|{version}".encode(), hashlib.sha256).digest()
    return "whsec_" + base64.b64encode(digest).decode()


def with_versions(chosen: list[dict[str, Any]], before: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The channels to keep: a webhook already there keeps its secret's version; a new one starts
    at 1. Also returns the URLs of the new webhooks (their secret is shown once, now)."""
    known = {str(c["destination"]): c for c in before if c.get("type") == "webhook"}
    kept, new = [], []
    for channel in chosen:
        if channel.get("type") == "webhook":
            old = known.get(str(channel["destination"]))
            if old is None:
                new.append(str(channel["destination"]))
            versions = {k: old[k] for k in ("secret_version", "previous_until") if old and old.get(k) is not None}
            channel = {**channel, "secret_version": 1, **versions}
        kept.append(channel)
    return kept, new


def rotated(channel: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A webhook channel with its next secret; the one it had still signs for ROTATION_OVERLAP."""
    version = int(channel.get("secret_version") or 1) + 1
    return {**channel, "secret_version": version, "previous_until": (now + ROTATION_OVERLAP).isoformat()}


def signing_secrets(master: str, channel: dict[str, Any], now: datetime) -> list[str]:
    """What a push to this webhook channel is signed with: its current version, and the previous
    one until `previous_until` (a rotation's overlap). None without a master secret."""
    if not master:
        return []
    url = str(channel.get("destination", ""))
    version = int(str(channel.get("secret_version", 1)))
    found = [receiver_secret(master, url, version)]
    until = channel.get("previous_until")
    if version > 1 and isinstance(until, str) and datetime.fromisoformat(until) > now:
        found.append(receiver_secret(master, url, version - 1))
    return found
