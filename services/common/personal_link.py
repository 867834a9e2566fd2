"""A professional's personal link: their own page (services/matcher/own_space.py), without a password.

The notifier puts one in every message it sends a professional, and e-mails one on request; the
matcher reads it. It is signed with the server key (unguessable), carries when it was issued
(it expires `LINK_LIFETIME` later) and is refused once the professional revoked their links
(`links_valid_from` after its issue). Nothing is stored per link.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

LINK_LIFETIME = timedelta(days=30)
_VERSION = "p1"


@dataclass(frozen=True)
class PersonalLink:
    rpps: str
    issued_at: datetime

    @property
    def expires_at(self) -> datetime:
        return self.issued_at + LINK_LIFETIME

    def usable(self, now: datetime, links_valid_from: datetime | None) -> bool:
        """Not expired, not issued in the future (a forged clock), not revoked since."""
        revoked = links_valid_from is not None and self.issued_at < links_valid_from
        return self.issued_at <= now + timedelta(minutes=5) and now < self.expires_at and not revoked


def _mac(secret: bytes, rpps: str, issued: int) -> str:
    digest = hmac.new(secret, f"personal-link:{_VERSION}:{rpps}:{issued}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode()  # 192 bits: not guessable


def mint(secret: bytes, rpps: str, now: datetime) -> str:
    issued = int(now.timestamp())
    return f"{_VERSION}.{rpps}.{issued}.{_mac(secret, rpps, issued)}"


def read(secret: bytes, token: str) -> PersonalLink | None:
    """The link's professional and issue time, or None when the token is not one we signed."""
    if len(token) > 200:
        return None
    version, _, rest = token.partition(".")
    rpps, _, rest = rest.partition(".")
    issued, _, mac = rest.partition(".")
    if version != _VERSION or not rpps or not issued.isdigit() or len(issued) > 12:
        return None
    if not hmac.compare_digest(_mac(secret, rpps, int(issued)), mac):
        return None
    return PersonalLink(rpps, datetime.fromtimestamp(int(issued), UTC))


def revocation_time(now: datetime) -> datetime:
    """`links_valid_from` for a revocation now: the next whole second, so that a link issued in
    this very second (links carry whole seconds) is revoked too."""
    return now.replace(microsecond=0) + timedelta(seconds=1)
