"""The in-memory index finds exactly the candidates the plain rules rank first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.common.clock import paris_week
from services.matcher.domain import matching
from services.matcher.domain.index import DirectoryIndex, Territory
from services.matcher.domain.opening_hours import WeeklyHours

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)  # Tuesday 09:00 Paris
LEAD = timedelta(minutes=30)
CENTRE = matching.Place(46.2, -0.14)
SHORT_HOURS = WeeklyHours.parse({"mon": [["09:00", "12:00"]], "tue": [["14:00", "18:00"]], "thu": [["08:00", "19:00"]]})

professional = st.builds(
    lambda i, prof, cpts, overflow, cap, tele, paused, closed: matching.Professional(
        rpps=f"P{i}",
        name=f"Dr {i}",
        profession=prof,
        cpts_id=cpts,
        accepts_overflow=overflow,
        overflow_daily_cap=cap,
        teleconsultation=tele,
        paused_until=paused,
        no_overflow_on=closed,
    ),
    st.integers(),
    st.sampled_from(["general_practitioner", "nurse"]),
    st.sampled_from([None, "A", "B"]),
    st.booleans(),
    st.integers(0, 2),
    st.booleans(),
    st.sampled_from([None, None, NOW - timedelta(hours=1), NOW + timedelta(hours=5), NOW + timedelta(days=3)]),
    st.sampled_from([None, None, "2026-12-01", "2026-12-02"]),
)


@st.composite
def directories(draw: st.DrawFn) -> tuple[list[matching.Professional], list[matching.Site], list[matching.FreeSlot]]:
    count = draw(st.integers(1, 12))
    pros = [draw(professional).__class__(**{**_fields(draw(professional)), "rpps": f"P{i}"}) for i in range(count)]
    sites, slots = [], []
    for pro in pros:
        site = matching.Site(
            f"s-{pro.rpps}",
            "site",
            None,
            matching.Place(CENTRE.lat + draw(st.floats(-0.4, 0.4)), CENTRE.lon + draw(st.floats(-0.5, 0.5))),
            "79",
            draw(st.sampled_from([matching.REFERENCE_HOURS, SHORT_HOURS])),
            draw(st.sampled_from([(), ((NOW + timedelta(hours=20), NOW + timedelta(hours=30)),)])),
        )
        sites.append(site)
        for k in range(draw(st.integers(0, 4))):
            start = NOW + timedelta(minutes=draw(st.integers(0, 60 * 60)))
            slots.append(
                matching.FreeSlot(
                    f"{pro.rpps}-{k}",
                    pro,
                    site,
                    start,
                    start + timedelta(minutes=20),
                    draw(st.sampled_from(["in_person", "in_person", "teleconsultation"])),
                    draw(st.sampled_from([False, False, True])),  # held for another request's offer
                )
            )
    return pros, sites, slots


def _fields(pro: matching.Professional) -> dict[str, object]:
    return {f: getattr(pro, f) for f in pro.__slots__}  # type: ignore[attr-defined]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    directories(),
    st.booleans(),
    st.floats(5, 45),
    st.sampled_from([None, "A"]),
    st.integers(1, 6),
    st.sets(st.sampled_from([f"P{i}" for i in range(12)]), max_size=3),
    st.dictionaries(st.sampled_from([f"P{i}" for i in range(12)]), st.integers(0, 5), max_size=4),
    st.sets(st.sampled_from([f"P{i}" for i in range(12)]), max_size=3),
    st.booleans(),
    st.sampled_from([None, NOW, NOW + timedelta(hours=13)]),  # 09:00 (open) or 22:00 (closed) in Paris
    st.sampled_from([None, NOW + timedelta(hours=10), NOW + timedelta(hours=48)]),  # who is back from a pause by
)
def test_index_agrees_with_the_rules(
    directory: tuple[list[matching.Professional], list[matching.Site], list[matching.FreeSlot]],
    tele_ok: bool,
    radius: float,
    cpts: str | None,
    limit: int,
    asked: set[str],
    load: dict[str, int],
    busy: set[str],
    include_held: bool,
    asking_at: datetime | None,
    back_by: datetime | None,
) -> None:
    pros, sites, slots = directory
    index = DirectoryIndex()
    index.put_territory(Territory("A", "A", frozenset({"79174"})), 1)
    for pro, site in zip(pros, sites, strict=True):
        index.put_professional(pro, [site], revision=1)
    for slot in slots:
        index.put_slot(
            slot.slot_id,
            slot.professional.rpps,
            slot.site.site_id,
            slot.start,
            slot.end,
            slot.mode,
            "held" if slot.held else "free",
            revision=1,
        )
    week = paris_week(NOW)
    for rpps, n in load.items():
        index.week_load[(rpps, week)] = n
    search = matching.Search(
        request_id="R",
        patient=CENTRE,
        deadline=NOW + timedelta(hours=48),
        teleconsultation_ok=tele_ok,
        radius_km=radius,
        patient_cpts=cpts,
        already_asked=frozenset(asked),
        busy=frozenset(busy),
        include_held=include_held,
        asking_at=asking_at,
        back_by=back_by,
    )
    professions = ("general_practitioner",)
    expected = matching.rank(
        search,
        slots,
        [matching.OverflowOffer(p, s) for p, s in zip(pros, sites, strict=True)],
        NOW,
        LEAD,
        professions,
        load,
    )[:limit]
    found = index.candidates(search, professions, NOW, LEAD, limit)
    assert [(c.kind, c.professional.rpps, c.slot_id, c.score) for c in found] == [
        (c.kind, c.professional.rpps, c.slot_id, c.score) for c in expected
    ]


def test_an_older_revision_never_overwrites_a_newer_one() -> None:
    index = DirectoryIndex()
    pro = matching.Professional("P1", "Dr", "general_practitioner")
    site = matching.Site("s", "site", None, CENTRE)
    index.put_professional(pro, [site], 1)
    start = NOW + timedelta(hours=3)
    index.put_slot("x", "P1", "s", start, start + timedelta(minutes=20), "in_person", "held", revision=5)
    index.put_slot("x", "P1", "s", start, start + timedelta(minutes=20), "in_person", "free", revision=4)
    search = matching.Search(request_id="R", patient=CENTRE, deadline=NOW + timedelta(hours=48))
    assert index.candidates(search, ("general_practitioner",), NOW, LEAD) == []
    index.put_slot("x", "P1", "s", start, start + timedelta(minutes=20), "in_person", "free", revision=6)
    assert [c.slot_id for c in index.candidates(search, ("general_practitioner",), NOW, LEAD)] == ["x"]
    index.mark_taken("x")
    assert index.candidates(search, ("general_practitioner",), NOW, LEAD) == []
