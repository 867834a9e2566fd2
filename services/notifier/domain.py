"""The notifier's rules (pure): offer links, time limits, what a page may show."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta

REFUSAL_REASONS = {
    "full": "Agenda complet",
    "absent": "Absent",
    "outside_competence": "Hors de ma compétence",
    "too_far": "Trop loin",
    "other": "Autre",
}


def offer_token(secret: bytes, offer_id: str, rpps: str) -> str:
    """The secret of an offer link: unguessable without the server key, bound to one offer
    and one professional. Only its hash is stored; the link is rebuilt when a message is sent."""
    mac = hmac.new(secret, f"offer-link:v1:{offer_id}:{rpps}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def offer_expiry(now: datetime, deadline: datetime, timeout: timedelta) -> datetime:
    """When an unanswered offer lapses: after the time limit, and never after the deadline."""
    return min(now + timeout, deadline)


class OfferUnavailable(Exception):
    """The link cannot be used for a decision: with the page to show instead."""

    def __init__(self, state: str, message: str) -> None:
        super().__init__(message)
        self.state = state


def within_choices(
    chosen: datetime, earliest: datetime, latest: datetime | None, choices: list[list[str]] | None
) -> bool:
    """Is the time a professional picked for an extra patient inside what was proposed?"""
    if not earliest <= chosen <= (latest or earliest):
        return False
    if not choices:
        return True
    return any(datetime.fromisoformat(a) <= chosen <= datetime.fromisoformat(b) for a, b in choices)


def time_choices(
    choices: list[list[str]] | None, earliest: datetime, step: timedelta = timedelta(minutes=15), most: int = 64
) -> list[datetime]:
    """Times to pick from on the page, every `step` inside the open periods, earliest first."""
    found: list[datetime] = []
    for a, b in choices or [[earliest.isoformat(), earliest.isoformat()]]:
        t, end = max(datetime.fromisoformat(a), earliest), datetime.fromisoformat(b)
        while t <= end and len(found) < most:
            found.append(t)
            t += step
    return found or [earliest]
