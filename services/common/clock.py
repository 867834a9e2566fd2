"""Time: instants are timezone-aware UTC; local wall-clock time is Paris time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)
