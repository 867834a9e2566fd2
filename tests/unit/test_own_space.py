"""The rules of a professional's own page, and their personal link (pure functions)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import pytest

from services.common import personal_link
from services.matcher.domain import matching, own_space
from tests.conftest import TUESDAY_MORNING

NOW = TUESDAY_MORNING  # Tuesday 1 December 2026, 09:00 in Paris
SECRET = b"unit-secret"


def test_a_link_opens_for_thirty_days_then_expires() -> None:
    token = personal_link.mint(SECRET, "10000000001", NOW)
    link = personal_link.read(SECRET, token)
    assert link is not None and link.rpps == "10000000001"
    assert link.usable(NOW + timedelta(days=29, hours=23), None)
    assert not link.usable(NOW + timedelta(days=30), None)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # the signature
        lambda t: t.replace("10000000001", "10000000002"),  # someone else
        lambda t: t.replace(".1796", ".1797"),  # a later issue time
        lambda t: "p2" + t[2:],
        lambda t: t + "." * 300,
        lambda _: "",
    ],
)
def test_an_altered_link_is_not_ours(tamper: object) -> None:
    token = personal_link.mint(SECRET, "10000000001", NOW)
    assert callable(tamper)
    assert personal_link.read(SECRET, tamper(token)) is None
    assert personal_link.read(b"another-key", token) is None


def test_revoking_ends_every_link_issued_before_and_not_the_next_ones() -> None:
    old = personal_link.read(SECRET, personal_link.mint(SECRET, "1", NOW))
    assert old is not None
    valid_from = personal_link.revocation_time(NOW + timedelta(minutes=1, microseconds=5))
    assert not old.usable(NOW + timedelta(minutes=2), valid_from)
    same_second = personal_link.read(SECRET, personal_link.mint(SECRET, "1", NOW + timedelta(minutes=1)))
    assert same_second is not None and not same_second.usable(NOW + timedelta(minutes=2), valid_from)
    later = personal_link.read(SECRET, personal_link.mint(SECRET, "1", NOW + timedelta(minutes=1, seconds=1)))
    assert later is not None and later.usable(NOW + timedelta(minutes=2), valid_from)


def test_a_link_from_the_future_is_refused() -> None:
    ahead = personal_link.read(SECRET, personal_link.mint(SECRET, "1", NOW + timedelta(hours=1)))
    assert ahead is not None and not ahead.usable(NOW, None)


def test_a_slot_is_published_in_paris_time_for_the_coming_week_only() -> None:
    period = own_space.new_slot(date(2026, 12, 2), time(10, 40), 20, NOW)
    assert period.start == datetime(2026, 12, 2, 9, 40, tzinfo=UTC) and period.end - period.start == timedelta(
        minutes=20
    )
    assert own_space.publishable_days(NOW)[-1] == date(2026, 12, 7)
    for day, at, minutes, field in [
        (date(2026, 12, 1), time(8, 30), 20, "time"),  # earlier today
        (date(2026, 12, 8), time(10), 20, "day"),
        (date(2026, 11, 30), time(10), 20, "day"),
        (date(2026, 12, 2), time(10), 17, "minutes"),
    ]:
        with pytest.raises(own_space.Refused) as refused:
            own_space.new_slot(day, at, minutes, NOW)
        assert refused.value.field == field


def test_a_pause_includes_its_last_day_in_paris() -> None:
    until = own_space.pause_end(date(2026, 12, 3), NOW)
    assert until == datetime(2026, 12, 3, 23, 0, tzinfo=UTC)  # midnight in Paris (UTC+1)
    assert own_space.last_paused_day(until, NOW) == date(2026, 12, 3)
    assert own_space.last_paused_day(until, until) is None
    with pytest.raises(own_space.Refused):
        own_space.pause_end(date(2026, 11, 30), NOW)
    with pytest.raises(own_space.Refused):
        own_space.pause_end(date(2028, 1, 1), NOW)


def test_extra_patients_on_means_at_least_one_a_day() -> None:
    assert own_space.overflow_cap(True, 0) == (True, 1)
    assert own_space.overflow_cap(False, 3) == (False, 3)
    with pytest.raises(own_space.Refused):
        own_space.overflow_cap(True, 21)


def test_channels_need_their_address_and_keep_the_booking_software() -> None:
    webhook = {"type": "webhook", "destination": "https://agenda.example.org/sas"}
    chosen = own_space.channels(
        "a@b.fr", "0611223344", False, True, [{"type": "email", "destination": "a@b.fr"}, webhook]
    )
    assert chosen == [{"type": "sms", "destination": "0611223344"}, webhook]
    with pytest.raises(own_space.Refused) as refused:
        own_space.channels(None, None, False, False, [])
    assert refused.value.field == "channels"
    with pytest.raises(own_space.Refused):
        own_space.channels(None, "06", True, False, [])


PLACE = matching.Place(48.11, -1.68)
SITE = matching.Site("main", "Cabinet", "35238", PLACE, "35")
GP = matching.Professional("10000000001", "Dr A", "general_practitioner", accepts_overflow=True, overflow_daily_cap=2)
SEARCH = matching.Search(request_id="r", patient=PLACE, deadline=NOW + timedelta(hours=48))


def test_a_professional_on_pause_is_asked_nothing_until_it_ends() -> None:
    paused = replace(GP, paused_until=NOW + timedelta(days=2))
    slot = matching.FreeSlot(
        "s", paused, SITE, NOW + timedelta(hours=3), NOW + timedelta(hours=3, minutes=20), "in_person"
    )
    assert matching.rank(SEARCH, [slot], [matching.OverflowOffer(paused, SITE)], NOW) == []
    later = NOW + timedelta(days=2)
    assert [
        c.kind
        for c in matching.rank(
            replace(SEARCH, deadline=later + timedelta(hours=48)), [], [matching.OverflowOffer(paused, SITE)], later
        )
    ] == ["overflow"]
    assert [c.kind for c in matching.rank(SEARCH, [replace(slot, professional=GP)], [], NOW)] == ["slot"]


def test_not_today_moves_extra_patients_to_the_next_day() -> None:
    closed = replace(GP, no_overflow_on="2026-12-01")
    [candidate] = matching.rank(SEARCH, [], [matching.OverflowOffer(closed, SITE)], NOW)
    assert matching.paris_day(candidate.start) == "2026-12-02"
    [today] = matching.rank(SEARCH, [], [matching.OverflowOffer(GP, SITE)], NOW)
    assert matching.paris_day(today.start) == "2026-12-01"


def test_the_time_field_suggests_a_quarter_hour_an_hour_ahead_in_the_day() -> None:
    assert own_space.suggested_time(NOW) == time(10, 0)
    assert own_space.suggested_time(NOW + timedelta(minutes=7)) == time(10, 15)
    assert own_space.suggested_time(NOW + timedelta(hours=12)) == time(9)  # 21:00 in Paris: tomorrow's morning


def test_log_lines_never_show_a_links_secret() -> None:
    from services.common.http_guards import loggable

    token = personal_link.mint(SECRET, "10000000001", NOW)
    assert loggable(f"/p/{token}/slots") == "/p/…/slots"
    assert loggable(f"/p/{token}") == "/p/…"
    assert loggable("/o/abcDEF123/accept") == "/o/…/accept"
    assert loggable("/p") == "/p" and loggable("/v1/professionals/1/pause") == "/v1/professionals/1/pause"
