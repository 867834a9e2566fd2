"""The intake's rules: a request's lifecycle as the regulator sees it (pure, no I/O)."""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Any


class RequestStatus(StrEnum):
    RECEIVED = "received"
    SEARCHING = "searching"
    OFFERED = "offered"  # an offer is pending with a professional
    CONFIRMED = "confirmed"
    UNRESOLVED = "unresolved"
    CANCELLED = "cancelled"


# Outcomes the matcher's later events cannot overwrite.
FINAL = {RequestStatus.CONFIRMED, RequestStatus.UNRESOLVED, RequestStatus.CANCELLED}


def follows(current: RequestStatus, new: RequestStatus) -> bool:
    """May a matcher event move a request from `current` to `new`? Never out of a final outcome."""
    return current not in FINAL and new != RequestStatus.RECEIVED


class RequestConflict(Exception):
    """The same request id was sent again with a different body."""


class RequestNotFound(Exception):
    pass


class CannotCancel(Exception):
    """The request already ended in a way a cancellation cannot change."""


def fingerprint(body: dict[str, Any]) -> str:
    """A stable hash of a request body, to tell a retry from a different request."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
