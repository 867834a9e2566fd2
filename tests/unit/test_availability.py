"""Weekly availability templates expanded into slots: holidays, closures, Paris time."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from services.common.clock import PARIS
from services.matcher.domain.availability import Recurring, expand

EVENINGS = Recurring(("tue", "fri"), time(17, 0), time(18, 0), 20)


def test_a_template_becomes_the_slots_of_the_coming_days_in_paris_time() -> None:
    slots = expand([EVENINGS], date(2026, 12, 1), 7, "79")  # Tuesday 1 to Monday 7 December
    assert len(slots) == 6  # Tuesday and Friday, three slots of 20 min each
    first, _, mode = slots[0]
    assert first == datetime(2026, 12, 1, 17, 0, tzinfo=PARIS) and first.tzinfo == UTC and mode == "in_person"
    assert slots[-1][1] == datetime(2026, 12, 4, 18, 0, tzinfo=PARIS)


def test_public_holidays_closures_and_the_past_are_left_out() -> None:
    christmas_week = expand([EVENINGS], date(2026, 12, 22), 7, "79")  # Friday 25 December is a holiday
    assert {s[0].astimezone(PARIS).date() for s in christmas_week} == {date(2026, 12, 22)}
    boxing_day = Recurring(("sat",), time(9, 0), time(10, 0), 30)
    assert expand([boxing_day], date(2026, 12, 26), 1, "79") and not expand([boxing_day], date(2026, 12, 26), 1, "67")
    closed = [(datetime(2026, 12, 1, 17, 20, tzinfo=PARIS), datetime(2026, 12, 1, 17, 40, tzinfo=PARIS))]
    assert len(expand([EVENINGS], date(2026, 12, 1), 1, "79", closed)) == 2
    late = datetime(2026, 12, 1, 17, 30, tzinfo=PARIS)
    assert [s[0] for s in expand([EVENINGS], date(2026, 12, 1), 1, "79", not_before=late)] == [
        datetime(2026, 12, 1, 17, 40, tzinfo=PARIS)
    ]
