"""The decision core (pure): ask, wait or give up, with the reason, for one request."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from services.common.clock import PARIS
from services.common.motives import catalogue
from services.matcher.domain import matching
from services.matcher.domain.decision import (
    Ask,
    GiveUp,
    Policy,
    Wait,
    WaitReason,
    decide,
    serving_order,
)
from services.matcher.domain.index import DirectoryIndex

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)  # Tuesday 09:00 in Paris
MELLE = matching.Place(46.22290, -0.14397)
LEAD = timedelta(minutes=30)
GP = catalogue().motives["general"].steps_for(60, None, [])


def directory(*pros: tuple[str, float, list[float], int]) -> DirectoryIndex:
    """(rpps, km north of Melle, slot starts in hours from NOW, overflow cap) each."""
    index = DirectoryIndex()
    for rpps, km, slots, cap in pros:
        pro = matching.Professional(
            rpps, f"Dr {rpps}", "general_practitioner", accepts_overflow=cap > 0, overflow_daily_cap=cap
        )
        site = matching.Site("main", "Cabinet", None, matching.Place(MELLE.lat + km / 111.195, MELLE.lon), "79")
        index.put_professional(pro, [site], 1)
        for i, hours in enumerate(slots):
            start = NOW + timedelta(hours=hours)
            index.put_slot(f"{rpps}-{i}", rpps, "main", start, start + timedelta(minutes=20), "in_person", "free", 1)
    return index


def search(now: datetime = NOW, **changes: object) -> matching.Search:
    base = matching.Search(request_id="R", patient=MELLE, deadline=now + timedelta(hours=48), department="79")
    return matching.Search(**{**base.__dict__, **changes})  # type: ignore[arg-type]


def test_the_best_free_candidate_is_asked() -> None:
    index = directory(("A", 0, [5], 0), ("B", 5, [3], 0))
    decision = decide(index, search(), GP, NOW, LEAD)
    assert isinstance(decision, Ask) and decision.wanted == 1
    assert [c.professional.rpps for c in decision.candidates] == ["B", "A"]


def test_parallel_offers_ask_several_and_top_up() -> None:
    index = directory(("A", 0, [5], 0), ("B", 5, [3], 0), ("C", 8, [4], 0))
    decision = decide(index, search(), GP, NOW, LEAD, Policy(parallel_offers=3))
    assert isinstance(decision, Ask) and decision.wanted == 3 and len(decision.candidates) == 3
    topped_up = decide(index, search(), GP, NOW, LEAD, Policy(parallel_offers=3), pending=2)
    assert isinstance(topped_up, Ask) and topped_up.wanted == 1


def test_busy_candidates_make_the_request_wait_until_the_last_useful_moment() -> None:
    index = directory(("A", 0, [5], 0))
    index.busy.add("A")
    decision = decide(index, search(), GP, NOW, LEAD)
    assert isinstance(decision, Wait) and decision.reason == WaitReason.CANDIDATES_BUSY
    # the slot in 5 h can be offered until 30 minutes before it starts: look again then at the latest
    assert decision.look_again_at == NOW + timedelta(hours=4, minutes=30, seconds=1)
    # and once it is gone, nobody else is in time: the deadline cannot be met
    later = NOW + timedelta(hours=4, minutes=31)
    gone = decide(index, search(), GP, later, LEAD, waited=True)
    assert isinstance(gone, GiveUp) and gone.reason == matching.UnresolvedReason.DEADLINE_CANNOT_BE_MET
    assert "waited" in gone.detail


def test_a_slot_held_for_another_request_is_waited_for() -> None:
    index = directory(("A", 0, [5], 0))
    index.mark_taken("A-0")
    decision = decide(index, search(), GP, NOW, LEAD)
    assert isinstance(decision, Wait) and decision.reason == WaitReason.CANDIDATES_BUSY


def test_a_practice_closed_now_is_waited_for_until_it_opens() -> None:
    night = datetime(2026, 12, 1, 21, 0, tzinfo=UTC)  # Tuesday 22:00 in Paris
    index = directory(("A", 0, [], 2))
    decision = decide(index, search(night), GP, night, LEAD)
    assert isinstance(decision, Wait) and decision.reason == WaitReason.NOT_YET_OPEN
    assert decision.look_again_at.astimezone(PARIS).strftime("%a %H:%M") == "Wed 08:00"
    morning = decision.look_again_at
    asked = decide(index, search(night), GP, morning, LEAD)
    assert isinstance(asked, Ask) and asked.candidates[0].professional.rpps == "A"


def test_without_waiting_the_first_version_gives_up_at_once() -> None:
    index = directory(("A", 0, [5], 0))
    index.busy.add("A")
    decision = decide(index, search(), GP, NOW, LEAD, Policy(wait=False))
    assert isinstance(decision, GiveUp) and decision.reason == matching.UnresolvedReason.CANDIDATES_BUSY
    night = datetime(2026, 12, 1, 21, 0, tzinfo=UTC)
    at_night = decide(directory(("B", 0, [], 2)), search(night), GP, night, LEAD, Policy(wait=False))
    assert isinstance(at_night, Ask)  # the first version asked at night, the time to answer running from opening


def test_each_reason_means_what_it_says() -> None:
    nobody = decide(DirectoryIndex(), search(), GP, NOW, LEAD)
    assert isinstance(nobody, GiveUp) and nobody.reason == matching.UnresolvedReason.NO_CANDIDATE_IN_RADIUS
    far = decide(directory(("A", 45, [5], 0)), search(), GP, NOW, LEAD)
    assert isinstance(far, GiveUp) and far.reason == matching.UnresolvedReason.NO_CANDIDATE_IN_RADIUS
    declined = decide(directory(("A", 0, [5], 0)), search(already_asked=frozenset({"A"})), GP, NOW, LEAD)
    assert isinstance(declined, GiveUp) and declined.reason == matching.UnresolvedReason.ALL_DECLINED
    too_late = decide(directory(("A", 0, [50], 0)), search(), GP, NOW, LEAD)
    assert isinstance(too_late, GiveUp) and too_late.reason == matching.UnresolvedReason.DEADLINE_CANNOT_BE_MET
    past = decide(directory(("A", 0, [5], 0)), search(), GP, NOW + timedelta(hours=48), LEAD)
    assert isinstance(past, GiveUp) and past.reason == matching.UnresolvedReason.DEADLINE_CANNOT_BE_MET
    saturday_evening = datetime(2026, 12, 5, 19, 0, tzinfo=UTC)  # 20:00 Paris, deadline Sunday 20:00
    pdsa = decide(
        directory(("A", 0, [], 2)),
        search(saturday_evening, deadline=saturday_evening + timedelta(hours=24)),
        GP,
        saturday_evening,
        LEAD,
    )
    assert isinstance(pdsa, GiveUp) and pdsa.reason == matching.UnresolvedReason.OUTSIDE_OPENING_HOURS
    assert "PDSA" in pdsa.detail


def test_a_waiting_request_never_waits_past_its_deadline() -> None:
    index = directory(("A", 0, [], 3))
    index.busy.add("A")
    decision = decide(index, search(), GP, NOW, LEAD)
    assert isinstance(decision, Wait)
    assert decision.look_again_at <= NOW + timedelta(hours=48)


def test_urgent_requests_then_earliest_deadlines_are_served_first() -> None:
    base = NOW
    waiting = [
        ("late-48h", "48h", base + timedelta(hours=40)),
        ("soon-48h", "48h", base + timedelta(hours=10)),
        ("urgent", "24h", base + timedelta(hours=20)),
    ]
    ordered = sorted(waiting, key=lambda w: serving_order(w[1], w[2], base, w[0]))
    assert [w[0] for w in ordered] == ["urgent", "soon-48h", "late-48h"]


def test_only_changes_within_reach_can_help_a_waiting_request() -> None:
    index = directory(("NEAR", 10, [5], 0), ("FAR", 50, [5], 0))
    assert index.within_reach({"NEAR"}, search())
    assert not index.within_reach({"FAR"}, search())
    assert not index.within_reach({"UNKNOWN"}, search())
    assert index.within_reach({"FAR"}, search(teleconsultation_ok=True))  # a teleconsultation reaches anyone


def test_a_busy_extra_patient_professional_is_waited_for_until_their_last_open_hour_with_room() -> None:
    index = directory(("A", 0, [], 2))
    index.busy.add("A")
    decision = decide(index, search(), GP, NOW, LEAD)
    # open until the deadline (Thursday 09:00): the patient could still be seen at 08:59
    assert isinstance(decision, Wait) and decision.look_again_at == NOW + timedelta(hours=48, minutes=-30, seconds=1)
    index.overflow_taken["A"] = {"2026-12-02": 2, "2026-12-03": 2}  # Wednesday and Thursday are full
    decision = decide(index, search(), GP, NOW, LEAD)
    assert isinstance(decision, Wait)
    assert decision.look_again_at.astimezone(PARIS).strftime("%a %H:%M:%S") == "Tue 19:30:01"


def _pause(index: DirectoryIndex, rpps: str, until: datetime) -> None:
    pro = index.professionals[rpps]
    index.put_professional(dataclasses.replace(pro, paused_until=until), [index.sites[(rpps, "main")]], 2)


def test_a_professional_back_from_a_pause_in_time_is_waited_for() -> None:
    index = directory(("A", 0, [5, 27], 0))  # slots today 14:00 and tomorrow 12:00 (Paris)
    tonight = datetime(2026, 12, 1, 23, 0, tzinfo=UTC)  # the pause ends at midnight in Paris
    _pause(index, "A", tonight)
    decision = decide(index, search(), GP, NOW, LEAD)
    assert isinstance(decision, Wait) and decision.reason == WaitReason.ON_PAUSE
    assert decision.look_again_at == tonight  # today's slot is lost to the pause; tomorrow's is not
    at_midnight = decide(index, search(), GP, tonight, LEAD)  # back, but not at work yet
    assert isinstance(at_midnight, Wait) and at_midnight.reason == WaitReason.NOT_YET_OPEN
    asked = decide(index, search(), GP, at_midnight.look_again_at, LEAD)
    assert isinstance(asked, Ask) and asked.candidates[0].slot_id == "A-1"


def test_a_pause_past_the_deadline_leaves_nobody() -> None:
    index = directory(("A", 0, [5, 27], 2))
    _pause(index, "A", NOW + timedelta(days=5))
    decision = decide(index, search(), GP, NOW, LEAD)
    assert isinstance(decision, GiveUp)
