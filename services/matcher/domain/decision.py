"""What to do with a request now: ask someone, wait, or give up, and why (pure).

`decide()` is the matcher's whole judgement. It takes the request (as a `matching.Search` and the
steps of its motive), the directory's state (the in-memory `DirectoryIndex`: who has slots, who
takes extra patients, who is busy) and `now`, and returns a decision. The cascade
(`services/matcher/allocation/cascade.py`) only claims, records and emits what it says; the worked
scenarios, the national benchmark and the day simulator call the same function.

The rules:
- **Ask** the best candidates who can be asked now, in the motive's steps order (the first step
  with someone available): not already asked for this request, not busy with another request's
  offer, a slot not held for someone else and, when the policy waits, a practice open now so that
  the professional is at work to answer. `policy.parallel_offers` professionals are asked at once.
- **Wait** (the policy's default) when nobody can be asked now but someone could still see the
  patient before the deadline: they are busy with another request's offer, their slot is held,
  their practice is closed now and opens in time, or they are on pause and back in time. The
  decision says when to look again at the latest (an opening, the end of a pause, the last moment
  a candidate can still be offered, the deadline); any change in the directory or in an offer
  wakes the request sooner.
- **Give up** when nobody can: `deadline_cannot_be_met` (someone is in reach but nobody can see
  the patient before the deadline, or it is too late), `outside_opening_hours` (no practice
  opening hours remain before the deadline: the out-of-hours service's time), `all_declined`
  (everyone who could was asked and refused or did not answer), `no_candidate_in_radius`
  (nobody of a suitable profession offers care within reach at all).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from services.common.motives import Step
from services.matcher.domain import matching
from services.matcher.domain.index import DirectoryIndex, candidates_by_step
from services.matcher.domain.opening_hours import REFERENCE_HOURS, first_open_time, open_intervals

SPARE_CANDIDATES = 4  # beyond those wanted, in case some were taken meanwhile by another process
WAIT_CANDIDATES = 10  # candidates looked at to decide whether, and until when, to wait
REACH_HORIZON = timedelta(days=14)  # "someone is in reach": any slot or extra patient within this
URGENT = "24h"


@dataclass(frozen=True)
class Policy:
    """How a territory handles requests (the day simulator compares them)."""

    wait: bool = True  # wait for busy or closed candidates; False: give up at once (the first version)
    parallel_offers: int = 1  # professionals asked at once; the first to accept takes the patient


class WaitReason(StrEnum):
    CANDIDATES_BUSY = "candidates_busy"  # every suitable candidate has an offer pending or a slot held
    NOT_YET_OPEN = "not_yet_open"  # the suitable candidates' practices are closed now and open in time
    ON_PAUSE = "on_pause"  # the suitable candidates are on pause now and back in time


@dataclass(frozen=True)
class Ask:
    """Ask `wanted` professionals, trying `candidates` in order (best first)."""

    step: Step
    candidates: list[matching.Candidate]
    wanted: int


@dataclass(frozen=True)
class Wait:
    reason: WaitReason
    detail: str
    look_again_at: datetime  # at the latest; a change that could help wakes the request sooner


@dataclass(frozen=True)
class GiveUp:
    reason: matching.UnresolvedReason
    detail: str


Decision = Ask | Wait | GiveUp


def decide(
    index: DirectoryIndex,
    search: matching.Search,
    steps: list[Step],
    now: datetime,
    lead: timedelta,
    policy: Policy = Policy(),
    pending: int = 0,
    waited: bool = False,
) -> Decision:
    """The decision for one request that has `pending` offers out (see the module's rules).

    `search.busy` adds professionals to those the index knows busy (claims that just failed);
    `waited` says the request waited for someone before (time ran out on them, if nobody is left).
    """
    wanted = max(1, policy.parallel_offers - pending)
    busy = search.busy | frozenset(index.busy)
    now_search = dataclasses.replace(search, busy=busy, include_held=False, asking_at=now if policy.wait else None)
    for step, found in candidates_by_step(index, now_search, steps, now, lead, wanted + SPARE_CANDIDATES):
        return Ask(step, found, wanted)
    if policy.wait:
        waiting = _wait(index, search, busy, steps, now, lead)
        if waiting is not None:
            return waiting
    return GiveUp(*why_none(index, search, steps, now, lead, waited))


def serving_order(urgency: str, deadline: datetime, received_at: datetime, request_id: str) -> tuple[object, ...]:
    """Waiting requests are served urgent (24 h) first, then by the earliest deadline."""
    return (urgency != URGENT, deadline, received_at, request_id)


def _wait(
    index: DirectoryIndex,
    search: matching.Search,
    busy: frozenset[str],
    steps: list[Step],
    now: datetime,
    lead: timedelta,
) -> Wait | None:
    """Whom the request could wait for, and until when at the latest; None when nobody."""
    back_by = search.deadline - lead
    anyone = dataclasses.replace(search, busy=frozenset(), include_held=True, asking_at=None, back_by=back_by)
    found = [c for _, cs in candidates_by_step(index, anyone, steps, now, lead, WAIT_CANDIDATES) for c in cs]
    if not found:
        return None
    away = [c for c in found if matching.paused(c.professional, now)]
    taken = [c for c in found if c not in away and (c.professional.rpps in busy or _held(index, c))]
    closed = [c for c in found if c not in taken and c not in away]
    times = [_last_chance(index, c, search.deadline, lead) for c in found]
    times += [c.professional.paused_until for c in away if c.professional.paused_until]
    openings = [first_open_time(c.site.hours, now, search.deadline, c.site.department, c.site.closures) for c in closed]
    times += [t for t in openings if t is not None]
    times.append(search.deadline - lead + timedelta(seconds=1))
    look_again_at = max(min(times), now + timedelta(seconds=1))
    if taken:
        return Wait(
            WaitReason.CANDIDATES_BUSY,
            f"{len(taken)} professional(s) who could see the patient are answering other requests; "
            "the request is offered as soon as one is free",
            look_again_at,
        )
    if not closed:
        back = min(c.professional.paused_until or look_again_at for c in away)
        return Wait(
            WaitReason.ON_PAUSE,
            f"the professionals who could see the patient are on pause; the first is back at {back.isoformat()}",
            look_again_at,
        )
    first = min((t for t in openings if t is not None), default=look_again_at)
    return Wait(
        WaitReason.NOT_YET_OPEN,
        f"the practices that could see the patient are closed now; the first opens at {first.isoformat()}",
        look_again_at,
    )


def _held(index: DirectoryIndex, c: matching.Candidate) -> bool:
    entry = index.slots.get(c.slot_id) if c.slot_id else None
    return entry is not None and entry.state != "free"


def _last_chance(index: DirectoryIndex, c: matching.Candidate, deadline: datetime, lead: timedelta) -> datetime:
    """Just after the last instant this candidate can still be offered (the appointment must
    start `lead` after the offer): a slot's start, or the end of the last open period, on a day
    with room, in which an extra patient can be seen."""
    if c.kind == "slot":
        return c.start - lead + timedelta(seconds=1)
    taken = index.overflow_taken.get(c.professional.rpps, {})
    last = c.start
    for _, end in open_intervals(c.site.hours, c.start, deadline, c.site.department, c.site.closures):
        day = matching.paris_day(end - timedelta(seconds=1))
        if matching.overflow_room(c.professional, day, taken.get(day, 0)):
            last = end
    return last - lead + timedelta(seconds=1)


def why_none(
    index: DirectoryIndex,
    search: matching.Search,
    steps: list[Step],
    now: datetime,
    lead: timedelta,
    waited: bool = False,
) -> tuple[matching.UnresolvedReason, str]:
    """The reason, in the contract's codes, why nobody can see the patient before the deadline."""
    R = matching.UnresolvedReason
    from_ = matching.earliest_start(now, lead)
    if from_ >= search.deadline:
        return R.DEADLINE_CANNOT_BE_MET, f"the deadline {search.deadline.isoformat()} cannot be met any more"
    if first_open_time(REFERENCE_HOURS, from_, search.deadline, search.department) is None:
        return R.OUTSIDE_OPENING_HOURS, (
            "no practice opening hours remain before the deadline: this falls to the PDSA "
            "(permanence des soins ambulatoires), the out-of-hours service"
        )

    def anyone(**changes: object) -> bool:
        wide = dataclasses.replace(search, busy=frozenset(), include_held=True, asking_at=None, **changes)  # type: ignore[arg-type]
        return next(candidates_by_step(index, wide, steps, now, lead, 1), None) is not None

    if anyone():
        return R.CANDIDATES_BUSY, "every professional who could see the patient is answering another request"
    if search.already_asked and anyone(already_asked=frozenset()):
        return R.ALL_DECLINED, (
            f"{len(search.already_asked)} professional(s) were asked and none accepted; nobody else is available"
        )
    if waited:
        return R.DEADLINE_CANNOT_BE_MET, (
            f"the professionals the request waited for cannot see the patient before the deadline "
            f"{search.deadline.isoformat()} any more"
        )
    if anyone(already_asked=frozenset(), deadline=now + REACH_HORIZON):
        return R.DEADLINE_CANNOT_BE_MET, (
            f"professionals within {search.radius_km:g} km take SAS patients, "
            f"but none can see this patient before the deadline {search.deadline.isoformat()}"
        )
    return R.NO_CANDIDATE_IN_RADIUS, (
        f"no free slot or willing professional within {search.radius_km:g} km before the deadline"
    )
