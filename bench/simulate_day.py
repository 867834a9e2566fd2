"""A day of a département at epidemic peak, simulated, to compare how requests are handled.

A discrete-event simulation that drives the matcher's own decision core
(`services.matcher.domain.decision.decide`, the same function the running service calls) through
a whole day: requests arrive by an hourly profile (times an epidemic multiplier) from communes
drawn by population; general practitioners have their practices in the département's communes,
the reference opening hours, published unscheduled-care slots and a daily cap of extra patients;
each offer is answered as people do: accepted with some probability, refused, or never answered
(it lapses after the territory's time to answer, never past closing time), after a time drawn
from a log-normal distribution. The same seeded day is run under each policy:

- `today`: the first version: nobody free now → unresolved at once; one professional at a time;
- `wait`: requests wait for a busy or closed professional (the service's behaviour, one at a time);
- `wait+parallel2`, `wait+parallel3`: waiting, and two or three professionals asked at once (the
  first to accept takes the patient; the others' offers are withdrawn: wasted).

For each policy it prints the share of requests with an appointment before their deadline, the
median and 90th percentile time from request to confirmed appointment, offers sent per request
(the professionals' burden), the share of offers wasted (withdrawn), and how evenly the patients
spread over the professionals (Gini of patients per professional; 0 is perfectly even). Closing
lines, one per policy:

    simulate_day policy=… served_in_deadline=… median_min=… offers_per_request=… gini=…

    python bench/simulate_day.py                       # the default day (see --help for every parameter)
    python bench/simulate_day.py --epidemic 1 --seed 7 # an ordinary day
"""

from __future__ import annotations

import argparse
import functools
import heapq
import itertools
import math
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from services.common import geo
from services.common.clock import PARIS
from services.common.motives import catalogue, deadline_for
from services.matcher.domain import matching as d
from services.matcher.domain.decision import Ask, Decision, GiveUp, Policy, Wait, decide, serving_order
from services.matcher.domain.index import DirectoryIndex
from services.matcher.domain.opening_hours import REFERENCE_HOURS, first_open_time, open_intervals

DAY = datetime(2026, 12, 1, tzinfo=PARIS)  # a Tuesday, far from holidays and clock changes
LEAD = timedelta(minutes=30)
# share of the day's requests arriving in each hour (SAS lines: mornings and early evenings)
HOURLY = [1, 1, 1, 1, 1, 1, 2, 4, 8, 9, 8, 7, 6, 6, 6, 6, 6, 7, 7, 6, 4, 3, 2, 1]
POLICIES = {
    "today": Policy(wait=False, parallel_offers=1),
    "wait": Policy(wait=True, parallel_offers=1),
    "wait+parallel2": Policy(wait=True, parallel_offers=2),
    "wait+parallel3": Policy(wait=True, parallel_offers=3),
}


@dataclass
class Parameters:
    department: str = "79"
    gps: int = 30  # general practitioners taking part in the SAS
    requests_per_day: int = 150  # requests for a GP on an ordinary day
    epidemic: float = 3.0
    urgent_share: float = 0.1
    slot_share: float = 0.5  # GPs who publish unscheduled-care slots
    slots_per_day: int = 2  # on each working day, for those who publish
    overflow_share: float = 0.8  # GPs who take extra patients
    overflow_cap: int = 5  # extra patients a day, for those
    accept: float = 0.6  # probability that an answered offer is accepted
    no_answer: float = 0.15  # probability that an offer is never answered
    answer_median_min: float = 5.0  # time to answer, log-normal
    answer_sigma: float = 0.8
    timeout_min: float = 15.0  # the territory's time to answer
    seed: int = 1


@dataclass
class Request:
    request_id: str
    received_at: datetime
    urgency: str
    search: d.Search
    asked: set[str] = field(default_factory=set)
    pending: set[str] = field(default_factory=set)  # offer ids
    waiting: bool = False
    waited: bool = False
    confirmed_at: datetime | None = None
    unresolved: str | None = None


@dataclass
class Offer:
    offer_id: str
    request: Request
    candidate: d.Candidate
    state: str = "pending"  # pending | accepted | refused | expired | withdrawn


@dataclass
class Directory:
    professionals: list[tuple[d.Professional, d.Site]]
    slots: list[tuple[str, str, datetime]]  # slot_id, rpps, start


def build_directory(p: Parameters, rng: random.Random) -> Directory:
    communes = [c for c in geo.communes().values() if c.department == p.department and c.current == c.insee]
    weights = [max(c.population, 1) for c in communes]
    pros, slots = [], []
    window = list(open_intervals(REFERENCE_HOURS, DAY.astimezone(UTC), (DAY + timedelta(days=3)).astimezone(UTC)))
    for i, commune in enumerate(rng.choices(communes, weights=weights, k=p.gps)):
        rpps = f"GP{i:04d}"
        overflow = rng.random() < p.overflow_share
        pro = d.Professional(
            rpps, f"Dr {i}", "general_practitioner", accepts_overflow=overflow, overflow_daily_cap=p.overflow_cap
        )
        site = d.Site("main", "Cabinet", commune.insee, d.Place(commune.lat, commune.lon), commune.department)
        pros.append((pro, site))
        if rng.random() < p.slot_share:
            for day_start, day_end in window:
                if (day_end - day_start) < timedelta(hours=6):
                    continue  # Saturday mornings: no slots
                for k in range(p.slots_per_day):
                    minutes = rng.randrange(0, int((day_end - day_start).total_seconds() // 60) - 20, 5)
                    slots.append((f"{rpps}-{day_start:%d}-{k}", rpps, day_start + timedelta(minutes=minutes)))
    return Directory(pros, slots)


def arrivals(p: Parameters, rng: random.Random) -> list[tuple[datetime, geo.Commune, str]]:
    """Poisson arrivals hour by hour, the rate following HOURLY."""
    communes = [c for c in geo.communes().values() if c.department == p.department and c.current == c.insee]
    weights = [max(c.population, 1) for c in communes]
    total = p.requests_per_day * p.epidemic
    found = []
    for hour, share in enumerate(HOURLY):
        rate = total * share / sum(HOURLY)  # per hour
        t = 0.0
        while True:
            t += rng.expovariate(rate)
            if t >= 1:
                break
            at = (DAY + timedelta(hours=hour)).astimezone(UTC) + timedelta(hours=t)
            urgency = "24h" if rng.random() < p.urgent_share else "48h"
            found.append((at, rng.choices(communes, weights=weights)[0], urgency))
    return found


class Simulation:
    """One policy over the seeded day: the matcher's decisions, the professionals' answers."""

    def __init__(self, p: Parameters, policy: Policy, directory: Directory) -> None:
        self.p, self.policy = p, policy
        self.rng = random.Random(p.seed * 7919 + 1)  # the answers: the same draws for every policy
        self.index = DirectoryIndex()
        self.revision = itertools.count(1)
        for pro, site in directory.professionals:
            self.index.put_professional(pro, [site], next(self.revision))
        with self.index.bulk():
            for slot_id, rpps, start in directory.slots:
                self.index.put_slot(
                    slot_id,
                    rpps,
                    "main",
                    start,
                    start + timedelta(minutes=20),
                    "in_person",
                    "free",
                    next(self.revision),
                )
        self.events: list[tuple[datetime, int, Callable[[datetime], None]]] = []
        self.seq = itertools.count()
        self.requests: list[Request] = []
        self.offers: dict[str, Offer] = {}
        self.waiting: dict[str, Request] = {}
        self.patients: Counter[str] = Counter()
        self.steps = catalogue().motives["general"].steps_for(50, None, [])
        self.wakes: set[datetime] = set()
        self.decisions = 0

    def at(self, when: datetime, action: Callable[[datetime], None]) -> None:
        heapq.heappush(self.events, (when, next(self.seq), action))

    def run(self, arriving: list[tuple[datetime, geo.Commune, str]]) -> None:
        for n, (when, commune, urgency) in enumerate(arriving):
            self.at(when, functools.partial(self.arrive, request_id=f"R{n:05d}", commune=commune, urgency=urgency))
        while self.events:
            now, _, action = heapq.heappop(self.events)
            action(now)

    def wake(self, now: datetime) -> None:
        self.wakes.discard(now)
        self.serve_waiting(now)

    # --- the matcher's side --------------------------------------------------------------

    def arrive(self, now: datetime, request_id: str, commune: geo.Commune, urgency: str) -> None:
        search = d.Search(
            request_id=request_id,
            patient=d.Place(commune.lat, commune.lon),
            deadline=deadline_for(now, urgency),
            department=commune.department,
        )
        request = Request(request_id, now, urgency, search)
        self.requests.append(request)
        self.serve(now, request)

    def serve(self, now: datetime, request: Request) -> None:
        """What the cascade does: decide, then claim and offer, wait, or give up."""
        search = d.Search(**{**request.search.__dict__, "already_asked": frozenset(request.asked)})
        self.decisions += 1
        decision: Decision = decide(
            self.index, search, self.steps, now, LEAD, self.policy, len(request.pending), request.waited
        )
        if isinstance(decision, Ask):
            request.waiting = False
            self.waiting.pop(request.request_id, None)
            for candidate in decision.candidates[: decision.wanted]:
                self.offer(now, request, candidate)
        elif request.pending:
            return  # the offers out stand
        elif isinstance(decision, Wait):
            request.waiting = request.waited = True
            self.waiting[request.request_id] = request
            if decision.look_again_at not in self.wakes:
                self.wakes.add(decision.look_again_at)
                self.at(decision.look_again_at, self.wake)
        else:
            assert isinstance(decision, GiveUp)
            self.waiting.pop(request.request_id, None)
            request.unresolved = decision.reason

    def offer(self, now: datetime, request: Request, c: d.Candidate) -> None:
        rpps = c.professional.rpps
        offer = Offer(f"O{len(self.offers):06d}", request, c)
        self.offers[offer.offer_id] = offer
        request.pending.add(offer.offer_id)
        request.asked.add(rpps)
        self.index.busy.add(rpps)
        if c.slot_id:
            self.index.put_slot(
                c.slot_id,
                rpps,
                "main",
                c.start,
                c.start + timedelta(minutes=20),
                "in_person",
                "held",
                next(self.revision),
            )
        else:  # the claim counts a pending extra patient against the day's cap
            self._count_overflow(rpps, c.start, +1)
        # the professional's answer, once at work (an offer sent at night waits for the morning)
        timeout = timedelta(minutes=self.p.timeout_min)
        answer_by = d.answer_by(now, timeout, request.search.deadline, c.site)
        at_work = first_open_time(c.site.hours, now, answer_by, c.site.department) or now
        draw = self.rng.random()
        delay = timedelta(minutes=self.rng.lognormvariate(math.log(self.p.answer_median_min), self.p.answer_sigma))
        accept_draw = self.rng.random()
        if draw < self.p.no_answer or at_work + delay >= answer_by:
            self.at(answer_by, functools.partial(self.answer, offer=offer, answer="expired"))
        else:
            answer = "accepted" if accept_draw < self.p.accept else "refused"
            self.at(at_work + delay, functools.partial(self.answer, offer=offer, answer=answer))

    def answer(self, now: datetime, offer: Offer, answer: str) -> None:
        if offer.state != "pending":
            return  # withdrawn meanwhile: the page says the patient is taken
        request, c = offer.request, offer.candidate
        request.pending.discard(offer.offer_id)
        if answer == "accepted":
            offer.state = "accepted"
            request.confirmed_at = now
            self.patients[c.professional.rpps] += 1
            if c.slot_id:
                self._set_slot(c, "booked")
            for other_id in list(request.pending):  # the first acceptance wins
                self._end(now, self.offers[other_id], "withdrawn")
            request.pending.clear()
            self._free(c)
        else:
            self._end(now, offer, answer)
            self.serve(now, request)  # the next candidate (or, in parallel, a top-up)
        self.serve_waiting(now)

    def _end(self, now: datetime, offer: Offer, state: str) -> None:
        offer.state = state
        offer.request.pending.discard(offer.offer_id)
        c = offer.candidate
        if c.slot_id:
            self._set_slot(c, "free")
        else:
            self._count_overflow(c.professional.rpps, c.start, -1)
        self._free(c)

    def _free(self, c: d.Candidate) -> None:
        self.index.busy.discard(c.professional.rpps)

    def _set_slot(self, c: d.Candidate, state: str) -> None:
        assert c.slot_id
        end = c.start + timedelta(minutes=20)
        self.index.put_slot(
            c.slot_id, c.professional.rpps, "main", c.start, end, "in_person", state, next(self.revision)
        )

    def _count_overflow(self, rpps: str, start: datetime, change: int) -> None:
        taken = self.index.overflow_taken.setdefault(rpps, {})
        taken[d.paris_day(start)] = taken.get(d.paris_day(start), 0) + change

    def serve_waiting(self, now: datetime) -> None:
        if not self.policy.wait:
            return
        queue = sorted(
            self.waiting.values(),
            key=lambda r: serving_order(r.urgency, r.search.deadline, r.received_at, r.request_id),
        )
        for request in queue:
            if request.waiting and not request.pending:
                self.serve(now, request)

    # --- what it comes to ----------------------------------------------------------------

    def figures(self) -> dict[str, float]:
        requests = self.requests
        served = [r for r in requests if r.confirmed_at is not None]
        minutes = sorted((r.confirmed_at - r.received_at).total_seconds() / 60 for r in served if r.confirmed_at)
        offers = list(self.offers.values())
        per_pro = sorted(self.patients.get(f"GP{i:04d}", 0) for i in range(self.p.gps))
        return {
            "requests": len(requests),
            "served": len(served),
            "served_in_deadline": len(served) / len(requests) if requests else math.nan,
            "median_min": statistics.median(minutes) if minutes else math.nan,
            "p90_min": minutes[int(0.9 * (len(minutes) - 1))] if minutes else math.nan,
            "offers_per_request": len(offers) / len(requests) if requests else math.nan,
            "wasted_share": sum(o.state == "withdrawn" for o in offers) / len(offers) if offers else math.nan,
            "gini": gini(per_pro),
            "unresolved": sum(r.unresolved is not None for r in requests),
            "decisions": self.decisions,
        }


def gini(values: list[int]) -> float:
    """0 when every professional saw as many patients, towards 1 when one saw them all."""
    ordered, n = sorted(values), len(values)
    total = sum(ordered)
    if n == 0 or total == 0:
        return math.nan
    return sum((2 * (i + 1) - n - 1) * v for i, v in enumerate(ordered)) / (n * total)


def main() -> None:
    defaults = Parameters()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, value in defaults.__dict__.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value, help=f"default {value}")
    parser.add_argument("--policies", default=",".join(POLICIES), help="which to run, comma-separated")
    args = parser.parse_args()
    p = Parameters(**{k: getattr(args, k) for k in defaults.__dict__})
    rng = random.Random(p.seed)
    directory = build_directory(p, rng)
    arriving = arrivals(p, rng)
    print(
        f"Département {p.department}: {p.gps} GPs ({len(directory.slots)} slots over three days, "
        f"{sum(pro.accepts_overflow for pro, _ in directory.professionals)} taking up to {p.overflow_cap} extra "
        f"patients a day); {len(arriving)} requests in the day ({p.requests_per_day}/day x {p.epidemic:g}); "
        f"offers accepted {p.accept:.0%} of the time, never answered {p.no_answer:.0%}, answered in "
        f"{p.answer_median_min:g} min (median), lapsing after {p.timeout_min:g} min; seed {p.seed}\n"
    )
    header = (
        f"{'policy':<16}{'served':>8}{'in time':>9}{'median':>9}{'p90':>9}{'offers/req':>12}{'wasted':>8}{'gini':>7}"
    )
    print(header + "   (times: request to confirmed appointment, minutes)")
    results = {}
    for name in args.policies.split(","):
        started = time.perf_counter()
        sim = Simulation(p, POLICIES[name], directory)
        sim.run(arriving)
        f = results[name] = sim.figures()
        print(
            f"{name:<16}{f['served']:>8.0f}{f['served_in_deadline']:>9.1%}{f['median_min']:>9.0f}{f['p90_min']:>9.0f}"
            f"{f['offers_per_request']:>12.2f}{f['wasted_share']:>8.1%}{f['gini']:>7.2f}"
            f"   ({f['decisions']:.0f} decisions, {time.perf_counter() - started:.1f} s)"
        )
    if "today" in results:
        base = results["today"]["served"]
        print()
        for name, f in results.items():
            if name != "today":
                print(f"{name}: {f['served'] - base:+.0f} patients with an appointment compared with today's behaviour")
    print()
    for name, f in results.items():
        print(
            f"simulate_day policy={name} served_in_deadline={f['served_in_deadline']:.3f} "
            f"median_min={f['median_min']:.1f} offers_per_request={f['offers_per_request']:.2f} gini={f['gini']:.3f}"
        )


if __name__ == "__main__":
    main()
