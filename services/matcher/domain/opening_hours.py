"""Opening hours of a practice site, in Paris wall-clock time (pure).

Deadlines and slot times are absolute instants; opening hours are local wall-clock periods
("08:00–20:00 on Mondays"). Each local period is turned into an absolute interval for its own
date, so a daylight-saving change neither shifts nor loses an hour. Sundays need no rule:
the reference hours have no period on Sunday. Public holidays close every site.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from services.common.clock import PARIS
from services.common.holidays import is_public_holiday

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

OpenSpan = tuple[time, time]


class InvalidOpeningHours(ValueError):
    pass


@dataclass(frozen=True)
class WeeklyHours:
    """For each weekday (Monday first), the opening periods, in local time."""

    days: tuple[tuple[OpenSpan, ...], ...]

    @classmethod
    def parse(cls, raw: Mapping[str, Sequence[Sequence[str]]]) -> WeeklyHours:
        """From `{"mon": [["08:00", "12:00"], ["14:00", "19:00"]], …}`; missing days are closed."""
        unknown = set(raw) - set(WEEKDAYS)
        if unknown:
            raise InvalidOpeningHours(f"unknown days {sorted(unknown)}; use {', '.join(WEEKDAYS)}")
        days = []
        for name in WEEKDAYS:
            periods = []
            for period in raw.get(name, []):
                if len(period) != 2:
                    raise InvalidOpeningHours(f"{name}: a period is [opens, closes]")
                try:
                    opens, closes = time.fromisoformat(period[0]), time.fromisoformat(period[1])
                except ValueError:
                    raise InvalidOpeningHours(f"{name}: times are HH:MM, got {period}") from None
                if opens >= closes:
                    raise InvalidOpeningHours(f"{name}: {period[0]} is not before {period[1]}")
                periods.append((opens, closes))
            periods.sort()
            for (_, end), (start, _) in itertools.pairwise(periods):
                if start < end:
                    raise InvalidOpeningHours(f"{name}: periods overlap")
            days.append(tuple(periods))
        return cls(tuple(days))

    def to_json(self) -> dict[str, list[list[str]]]:
        return {
            name: [[o.strftime("%H:%M"), c.strftime("%H:%M")] for o, c in periods]
            for name, periods in zip(WEEKDAYS, self.days, strict=True)
            if periods
        }


# The reference opening period of a practice (PRODUCT.md): Mon–Fri 08–20, Sat 08–12.
REFERENCE_HOURS = WeeklyHours.parse({day: [["08:00", "20:00"]] for day in WEEKDAYS[:5]} | {"sat": [["08:00", "12:00"]]})


Closure = tuple[datetime, datetime]  # a site closed from … to … (absolute instants)


def open_intervals(
    hours: WeeklyHours,
    start: datetime,
    end: datetime,
    department: str | None = None,
    closures: Sequence[Closure] = (),
) -> Iterator[tuple[datetime, datetime]]:
    """The absolute (UTC) open intervals overlapping [start, end), clipped to it, in order,
    minus public holidays and the site's closures."""
    if start >= end:
        return
    day = start.astimezone(PARIS).date()
    last = end.astimezone(PARIS).date()
    while day <= last:
        if not is_public_holiday(day, department):
            for opens, closes in hours.days[day.weekday()]:
                a = datetime.combine(day, opens, tzinfo=PARIS).astimezone(UTC)
                b = datetime.combine(day, closes, tzinfo=PARIS).astimezone(UTC)
                yield from _minus(max(a, start), min(b, end), closures)
        day += timedelta(days=1)


def _minus(a: datetime, b: datetime, closures: Sequence[Closure]) -> Iterator[tuple[datetime, datetime]]:
    """[a, b) without the closures (which may overlap each other)."""
    for closed_from, closed_to in sorted(closures):
        if a >= b:
            return
        if closed_to <= a or closed_from >= b:
            continue
        if closed_from > a:
            yield a, closed_from
        a = max(a, closed_to)
    if a < b:
        yield a, b


def first_open_time(
    hours: WeeklyHours,
    after: datetime,
    before: datetime,
    department: str | None = None,
    closures: Sequence[Closure] = (),
) -> datetime | None:
    """The earliest instant in [after, before) when the site is open, or None."""
    return next((a for a, _ in open_intervals(hours, after, before, department, closures)), None)


def is_open_throughout(
    hours: WeeklyHours,
    start: datetime,
    end: datetime,
    department: str | None = None,
    closures: Sequence[Closure] = (),
) -> bool:
    """Does [start, end) lie inside one open period?"""
    return any(a <= start and end <= b for a, b in open_intervals(hours, start, end, department, closures))
