"""Time: instants are timezone-aware UTC; local wall-clock time is Paris time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def paris_week(at: datetime) -> str:
    """The ISO week of an instant in Paris, e.g. `2026-W49` (caps and forfaits count by week)."""
    year, week, _ = at.astimezone(PARIS).isocalendar()
    return f"{year}-W{week:02d}"
