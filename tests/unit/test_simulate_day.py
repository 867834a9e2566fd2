"""The day simulator (bench/simulate_day.py) runs the matcher's decision core to the end of a day
with every request ended and no professional or slot given twice."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from bench.simulate_day import POLICIES, Parameters, Simulation, arrivals, build_directory, gini


@pytest.mark.parametrize("policy", list(POLICIES))
def test_every_request_ends_and_nothing_is_given_twice(policy: str) -> None:
    p = Parameters(gps=8, requests_per_day=30, epidemic=2, seed=3)
    rng = random.Random(p.seed)
    directory = build_directory(p, rng)
    arriving = arrivals(p, rng)
    sim = Simulation(p, POLICIES[policy], directory)
    sim.run(arriving)

    assert len(sim.requests) == len(arriving) > 0
    assert sim.waiting == {}  # nobody left waiting once the day's deadlines have passed
    for request in sim.requests:  # confirmed or unresolved, never left waiting or with an offer out
        assert (request.confirmed_at is None) != (request.unresolved is None), request
        assert not request.pending
        if request.confirmed_at:
            assert request.confirmed_at <= request.search.deadline
    accepted = Counter(o.request.request_id for o in sim.offers.values() if o.state == "accepted")
    assert max(accepted.values(), default=1) == 1  # one appointment per request
    booked = Counter(o.candidate.slot_id for o in sim.offers.values() if o.state == "accepted" and o.candidate.slot_id)
    assert max(booked.values(), default=1) == 1  # one booking per slot
    assert all(o.state != "pending" for o in sim.offers.values())
    if POLICIES[policy].parallel_offers == 1:
        assert all(o.state != "withdrawn" for o in sim.offers.values())
    figures = sim.figures()
    assert figures["served"] == sum(accepted.values())


def test_gini() -> None:
    assert gini([2, 2, 2, 2]) == 0
    assert gini([0, 0, 0, 8]) == 0.75
