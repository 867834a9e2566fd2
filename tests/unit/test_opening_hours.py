"""Opening hours in Paris wall-clock time: weekdays, Saturday noon, holidays, DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common.clock import PARIS
from services.common.holidays import is_public_holiday
from services.common.motives import deadline_for
from services.matcher.domain.opening_hours import (
    REFERENCE_HOURS,
    InvalidOpeningHours,
    WeeklyHours,
    first_open_time,
    is_open_throughout,
    open_intervals,
)


def paris(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=PARIS)


def open_at(at: datetime, department: str | None = None, hours: WeeklyHours = REFERENCE_HOURS) -> bool:
    return is_open_throughout(hours, at, at + timedelta(minutes=1), department)


@pytest.mark.parametrize("day", [30, 1, 2, 3, 4])  # Monday 30 November to Friday 4 December 2026
def test_weekdays_open_from_8_to_20(day: int) -> None:
    month = 11 if day == 30 else 12
    assert not open_at(paris(2026, month, day, 7, 59))
    assert open_at(paris(2026, month, day, 8, 0))
    assert open_at(paris(2026, month, day, 19, 59))
    assert not open_at(paris(2026, month, day, 20, 0))


def test_saturday_closes_at_noon_and_sunday_is_closed() -> None:
    assert open_at(paris(2026, 12, 5, 11, 59))
    assert not open_at(paris(2026, 12, 5, 12, 0))
    assert not any(open_at(paris(2026, 12, 6, h)) for h in range(24))


@pytest.mark.parametrize("holiday", [date(2026, 12, 25), date(2026, 11, 11), date(2027, 5, 6), date(2027, 1, 1)])
def test_public_holidays_are_closed(holiday: date) -> None:
    assert is_public_holiday(holiday)
    assert not open_at(paris(holiday.year, holiday.month, holiday.day, 10))


@pytest.mark.parametrize("department", ["57", "67", "68"])
def test_alsace_moselle_closes_on_good_friday_and_26_december(department: str) -> None:
    for day in (date(2026, 4, 3), date(2026, 12, 26), date(2027, 3, 26)):
        assert is_public_holiday(day, department)
        assert not is_public_holiday(day, "79")
    assert not open_at(paris(2026, 4, 3, 10), department)
    assert open_at(paris(2026, 4, 3, 10), "79")


@pytest.mark.parametrize(
    ("monday", "offset_before", "offset_after"),
    [
        (date(2026, 3, 30), 1, 2),  # the clocks went forward on Sunday 29 March 2026
        (date(2026, 10, 26), 2, 1),  # back on Sunday 25 October 2026
        (date(2027, 3, 29), 1, 2),  # forward on Sunday 28 March 2027
        (date(2027, 11, 1), 2, 1),  # back on Sunday 31 October 2027 (Monday 1 Nov is a holiday)
    ],
)
def test_opening_stays_at_8_local_across_daylight_saving_changes(
    monday: date, offset_before: int, offset_after: int
) -> None:
    friday_before = monday - timedelta(days=3)
    before = first_open_time(
        REFERENCE_HOURS,
        datetime.combine(friday_before, datetime.min.time(), UTC),
        datetime.combine(friday_before, datetime.max.time(), UTC),
    )
    assert before is not None and before.hour == 8 - offset_before
    start = datetime.combine(monday, datetime.min.time(), UTC)
    after = first_open_time(REFERENCE_HOURS, start, start + timedelta(days=3))
    assert after is not None and after.astimezone(PARIS).hour == 8
    assert after.astimezone(UTC).hour == 8 - offset_after


def test_a_48h_deadline_across_a_dst_change_is_48_real_hours() -> None:
    received = paris(2026, 10, 24, 10)  # Saturday, the night before the clocks go back
    deadline = deadline_for(received, "48h")
    assert deadline.astimezone(UTC) - received.astimezone(UTC) == timedelta(hours=48)
    assert deadline.astimezone(PARIS).hour == 9  # the wall clock shows one hour less
    urgent = deadline_for(received, "24h")
    assert urgent.astimezone(UTC) - received.astimezone(UTC) == timedelta(hours=24)
    assert urgent.astimezone(PARIS).hour == 9  # it crosses the 03:00 change too


def test_open_intervals_are_clipped_and_ordered() -> None:
    start, end = paris(2026, 12, 4, 19), paris(2026, 12, 7, 9)  # Friday 19:00 to Monday 09:00
    intervals = list(open_intervals(REFERENCE_HOURS, start, end))
    assert [
        (a.astimezone(PARIS).strftime("%a %H:%M"), b.astimezone(PARIS).strftime("%a %H:%M")) for a, b in intervals
    ] == [("Fri 19:00", "Fri 20:00"), ("Sat 08:00", "Sat 12:00"), ("Mon 08:00", "Mon 09:00")]


def test_a_site_may_have_its_own_hours() -> None:
    hours = WeeklyHours.parse({"mon": [["08:30", "12:00"], ["14:00", "19:00"]], "wed": [["09:00", "12:00"]]})
    assert open_at(paris(2026, 11, 30, 8, 30), hours=hours)
    assert not open_at(paris(2026, 11, 30, 13), hours=hours)
    assert not is_open_throughout(hours, paris(2026, 11, 30, 11, 50), paris(2026, 11, 30, 14, 10))
    assert not open_at(paris(2026, 12, 1, 10), hours=hours)  # Tuesday: closed
    assert hours.to_json() == {"mon": [["08:30", "12:00"], ["14:00", "19:00"]], "wed": [["09:00", "12:00"]]}


@pytest.mark.parametrize(
    "raw",
    [
        {"monday": [["08:00", "12:00"]]},
        {"mon": [["12:00", "08:00"]]},
        {"mon": [["8h", "12h"]]},
        {"mon": [["08:00", "12:00"], ["11:00", "13:00"]]},
        {"mon": [["08:00"]]},
    ],
)
def test_bad_opening_hours_are_refused(raw: dict[str, list[list[str]]]) -> None:
    with pytest.raises(InvalidOpeningHours):
        WeeklyHours.parse(raw)


instants = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC))


@given(instants)
def test_open_exactly_when_the_local_rule_says_so(at: datetime) -> None:
    local = at.astimezone(PARIS)
    minutes = local.hour * 60 + local.minute
    expected = not is_public_holiday(local.date()) and (
        (local.weekday() < 5 and 8 * 60 <= minutes < 20 * 60) or (local.weekday() == 5 and 8 * 60 <= minutes < 12 * 60)
    )
    at = at.replace(second=0, microsecond=0)
    assert open_at(at) == expected


@given(instants, st.integers(min_value=0, max_value=96))
def test_first_open_time_is_the_earliest_open_instant(after: datetime, hours: int) -> None:
    before = after + timedelta(hours=hours)
    found = first_open_time(REFERENCE_HOURS, after, before)
    if found is None:
        assert not list(open_intervals(REFERENCE_HOURS, after, before))
    else:
        assert after <= found < before
        instant = timedelta(microseconds=1)
        assert is_open_throughout(REFERENCE_HOURS, found, found + instant)  # open at that very instant
        assert found == after or not is_open_throughout(REFERENCE_HOURS, found - instant, found)
