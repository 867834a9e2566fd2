"""Weekly unscheduled-care availability as a template (pure): "Tuesday and Thursday 17:00–18:00,
20 minutes, in person" becomes the free slots of the coming weeks, in Paris time, except on public
holidays (Alsace–Moselle's own included) and while the practice is closed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from services.common.clock import PARIS
from services.common.holidays import is_public_holiday
from services.matcher.domain.opening_hours import Closure

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Recurring:
    days: tuple[str, ...]  # of WEEKDAYS
    start: time
    end: time
    minutes: int  # length of each slot
    mode: str = "in_person"


def rule_of(raw: dict[str, Any]) -> Recurring:
    """From `{"days", "start": "HH:MM", "end", "minutes", "mode"}` (the API's and the stored form)."""
    start, end = time.fromisoformat(raw["start"]), time.fromisoformat(raw["end"])
    return Recurring(tuple(raw["days"]), start, end, int(raw["minutes"]), raw.get("mode", "in_person"))


def raw_of(rule: Recurring) -> dict[str, Any]:
    return {
        "days": list(rule.days),
        "start": rule.start.isoformat("minutes"),
        "end": rule.end.isoformat("minutes"),
        "minutes": rule.minutes,
        "mode": rule.mode,
    }


def expand(
    rules: Iterable[Recurring],
    first_day: date,
    days: int,
    department: str | None,
    closures: Iterable[Closure] = (),
    not_before: datetime | None = None,
) -> list[tuple[datetime, datetime, str]]:
    """The slots (start, end, mode) of `days` days from `first_day`, in time order."""
    closed = list(closures)
    slots = []
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        if is_public_holiday(day, department):
            continue
        for rule in rules:
            if WEEKDAYS[day.weekday()] not in rule.days:
                continue
            at = datetime.combine(day, rule.start, PARIS)
            last = datetime.combine(day, rule.end, PARIS)
            while at + timedelta(minutes=rule.minutes) <= last:
                start, end = at.astimezone(UTC), (at + timedelta(minutes=rule.minutes)).astimezone(UTC)
                shut = any(c_start < end and start < c_end for c_start, c_end in closed)
                if not shut and (not_before is None or start >= not_before):
                    slots.append((start, end, rule.mode))
                at += timedelta(minutes=rule.minutes)
    return sorted(slots)
