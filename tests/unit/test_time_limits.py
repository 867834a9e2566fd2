"""How long a professional has to answer, and the times they may pick for an extra patient."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.common.clock import PARIS
from services.matcher.domain import matching
from services.matcher.domain.opening_hours import WeeklyHours
from services.notifier.domain import time_choices, within_choices

SITE = matching.Site("s", "site", None, matching.Place(46.2, -0.14), "79")  # reference hours: Mon–Fri 08–20, Sat 08–12
LIMIT = timedelta(minutes=15)


def paris(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=PARIS)


def test_the_time_limit_runs_while_the_site_is_open() -> None:
    now = paris(1, 10)
    assert matching.answer_by(now, LIMIT, paris(3, 10), SITE) == paris(1, 10, 15)


def test_never_past_closing_time() -> None:
    assert matching.answer_by(paris(1, 19, 55), LIMIT, paris(3, 10), SITE) == paris(1, 20)
    assert matching.answer_by(paris(5, 11, 50), LIMIT, paris(7, 10), SITE) == paris(5, 12)  # Saturday noon


def test_sent_at_night_it_runs_from_the_next_opening() -> None:
    assert matching.answer_by(paris(1, 22), LIMIT, paris(3, 10), SITE) == paris(2, 8, 15)
    sunday = matching.answer_by(paris(6, 9), LIMIT, paris(7, 12), SITE)
    assert sunday == paris(7, 8, 15)  # Monday morning


def test_never_past_the_deadline() -> None:
    assert matching.answer_by(paris(1, 10), LIMIT, paris(1, 10, 5), SITE) == paris(1, 10, 5)
    closed_till_deadline = matching.answer_by(paris(5, 13), LIMIT, paris(6, 13), SITE)  # Saturday afternoon → Sunday
    assert closed_till_deadline == paris(5, 13, 15)


def test_choices_are_the_open_periods_of_the_window() -> None:
    lunch = matching.Site(
        "s", "site", None, SITE.place, "79", WeeklyHours.parse({"tue": [["08:00", "12:00"], ["14:00", "19:00"]]})
    )
    periods = matching.choices(lunch, paris(1, 10), paris(2, 10))
    assert [(a.astimezone(PARIS).hour, b.astimezone(PARIS).hour) for a, b in periods] == [(10, 12), (14, 19)]


def test_the_picker_offers_quarter_hours_inside_the_periods_only() -> None:
    periods = [
        [paris(1, 10).isoformat(), paris(1, 11).isoformat()],
        [paris(1, 14).isoformat(), paris(1, 14, 30).isoformat()],
    ]
    times = time_choices(periods, paris(1, 10, 7))
    assert [t.astimezone(PARIS).strftime("%H:%M") for t in times] == [
        "10:07",
        "10:22",
        "10:37",
        "10:52",
        "14:00",
        "14:15",
        "14:30",
    ]
    assert within_choices(paris(1, 14, 15), paris(1, 10, 7), paris(1, 14, 30), periods)
    assert not within_choices(paris(1, 12, 30), paris(1, 10, 7), paris(1, 14, 30), periods)  # lunch
    assert not within_choices(paris(1, 9), paris(1, 10, 7), paris(1, 14, 30), periods)  # too early
    assert within_choices(paris(1, 12, 30), paris(1, 10, 7), paris(1, 14, 30), None)  # no periods given: the window


def test_an_instant_in_utc_or_paris_is_the_same_answer() -> None:
    now = paris(1, 19, 55)
    assert matching.answer_by(now.astimezone(UTC), LIMIT, paris(3, 10), SITE) == matching.answer_by(
        now, LIMIT, paris(3, 10), SITE
    )
