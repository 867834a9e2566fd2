"""The intake's rules: a request's lifecycle as the regulator sees it (pure, no I/O)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from services.common.motives import catalogue, deadline_for, effective_urgency

# how far ahead of our clock a regulator's clock may be
CLOCK_SKEW = timedelta(minutes=5)


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


WAITING = "waiting: "  # how a search that waits records its reason in a request's history


def same_wait(before: dict[str, Any] | None, after: dict[str, Any]) -> bool:
    """Whether a waiting notice says nothing new: same reason, same detail, same next look."""
    return before is not None and all(before.get(k) == after[k] for k in ("reason", "detail", "look_again_at"))


def internal_id(organisation: str, external_id: str, external_id_taken: bool) -> str:
    """The id the services know a request by: the regulator's own id, unless another
    organisation's request already has it — then a hash of both, so that the two never mix."""
    if not external_id_taken:
        return external_id
    return "req-" + hashlib.sha256(f"{organisation}\0{external_id}".encode()).hexdigest()[:32]


class RequestConflict(Exception):
    """The same request id was sent again with a different body."""


class RequestNotFound(Exception):
    pass


class CannotCancel(Exception):
    """The request already ended in a way a cancellation cannot change."""


class ReceivedAtOutOfRange(Exception):
    """`received_at` is in the future, or so long ago that the request's deadline has passed."""


def check_received_at(received_at: datetime, urgency: str, motive: str, now: datetime) -> None:
    """A request is for a patient to be seen within 24 or 48 h of the call: refuse a call time
    that lies ahead of ours (beyond a small skew) or whose deadline is already over, since no
    search could do anything for it."""
    if received_at > now + CLOCK_SKEW:
        raise ReceivedAtOutOfRange(
            f"received_at {received_at.isoformat()} is in the future (more than "
            f"{int(CLOCK_SKEW.total_seconds() // 60)} min ahead of {now.isoformat(timespec='seconds')})"
        )
    deadline = deadline_of(received_at, urgency, motive)
    if deadline <= now:
        raise ReceivedAtOutOfRange(
            f"received_at {received_at.isoformat()} is too old: the "
            f"{effective_urgency(urgency, catalogue().motives.get(motive))} deadline "
            f"({deadline.isoformat(timespec='seconds')}) has passed"
        )


def deadline_of(received_at: datetime, urgency: str, motive: str) -> datetime:
    """When the patient must have been seen: 48 h, or 24 h when urgent or when the motive says so."""
    return deadline_for(received_at, effective_urgency(urgency, catalogue().motives.get(motive)))


def fingerprint(body: dict[str, Any], key: bytes) -> str:
    """A stable keyed hash of a request body, to tell a retry from a different request. Keyed
    (HMAC with the service's SECRET_KEY): a plain hash of a body holding a name and a phone could
    be reversed by trying names and numbers; this one only by whoever holds the key."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "hmac-sha256:" + hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def legacy_fingerprint(body: dict[str, Any]) -> str:
    """The plain SHA-256 of requests received before the keyed hash: a retry of one still matches."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
