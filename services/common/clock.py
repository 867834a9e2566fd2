"""Time: instants are timezone-aware UTC; local wall-clock time is Paris time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def paris_week(at: datetime) -> str:
    """The ISO week of an instant in Paris, e.g. `2026-W49` (caps and forfaits count by week)."""
    year, week, _ = at.astimezone(PARIS).isocalendar()
    return f"{year}-W{week:02d}"


def last_paris_day(end: datetime) -> date:
    """The last Paris day a period ending (exclusively) at `end` covers: a pause ending at
    midnight on 4 December is a pause "until 3 December, included"."""
    return (end.astimezone(PARIS) - timedelta(microseconds=1)).date()
