"""Runs the worked scenarios of tests/scenarios/worked_scenarios.md through the matcher's rules."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from services.common import geo
from services.common.clock import PARIS, paris_week
from services.common.motives import catalogue, deadline_for, effective_urgency
from services.matcher.domain import matching
from services.matcher.domain.decision import Ask, GiveUp, decide
from services.matcher.domain.index import DirectoryIndex, Territory

TABLE = Path(__file__).parents[1] / "scenarios" / "worked_scenarios.md"
MONDAY = date(2026, 11, 30)
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
PROFESSIONS = {
    "GP": "general_practitioner",
    "dentist": "dentist",
    "pharmacist": "pharmacist",
    "nurse": "nurse",
    "physio": "physiotherapist",
}
LEAD = timedelta(minutes=30)


@dataclass
class Row:
    number: str
    situation: str
    request: str
    patient: str
    directory: str
    expected: str


def rows() -> list[Row]:
    found = []
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[0].isdigit():
            found.append(Row(*cells))
    return found


def when(text: str) -> datetime:
    """`Tue 14:00` (week of 30 November 2026) or `2026-12-25 10:00`, Paris time."""
    day_text, clock = text.split()
    day = MONDAY + timedelta(days=DAYS.index(day_text)) if day_text in DAYS else date.fromisoformat(day_text)
    hour, minute = map(int, clock.split(":"))
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=PARIS)


def commune(text: str) -> geo.Commune:
    """`Melle` (in Deux-Sèvres) or `Strasbourg (67)`."""
    match = re.fullmatch(r"(.+?)(?: \((\w+)\))?", text.strip())
    assert match
    name, department = match.group(1), match.group(2) or "79"
    found = [
        c for c in geo.communes().values() if c.name == name and c.department == department and c.current == c.insee
    ]
    assert len(found) == 1, f"commune {text!r}"
    return found[0]


@dataclass
class Directory:
    index: DirectoryIndex = field(default_factory=DirectoryIndex)
    names: dict[str, str] = field(default_factory=dict)  # letter -> rpps


def directory(text: str, now: datetime) -> Directory:
    built = Directory()
    revision = 0
    for entry in filter(None, (e.strip() for e in text.split(";"))):
        letter, _, rest = entry.partition(":")
        items = [i.strip() for i in rest.split(",")]
        revision += 1
        head = items[0].split(" ", 1)
        if head[0] == "territory":
            spec = re.fullmatch(r"(.+?)(?: radius (\d+))?", head[1])
            assert spec
            communes = frozenset(commune(n).insee for n in spec.group(1).split("+"))
            built.index.put_territory(Territory(letter, letter, communes, float(spec.group(2) or 30)), revision)
            continue
        rpps = f"9{len(built.names):010d}"
        built.names[letter] = rpps
        place = commune(head[1])
        fields: dict[str, object] = {"cpts_id": None, "accepts_overflow": False, "overflow_daily_cap": 0}
        slots, closures = [], []
        for item in items[1:]:
            word, _, value = item.partition(" ")
            if word == "slot":
                slots.append(("in_person", when(value)))
            elif word == "tele":
                slots.append(("teleconsultation", when(value.removeprefix("slot "))))
            elif word == "overflow":
                fields |= {"accepts_overflow": True, "overflow_daily_cap": int(value)}
            elif word == "taken":
                day_text, count = value.rsplit(" ", 1)
                taken_day = when(f"{day_text} 12:00").date().isoformat()
                built.index.overflow_taken.setdefault(rpps, {})[taken_day] = int(count)
            elif word == "cpts":
                fields["cpts_id"] = value
            elif word == "load":
                built.index.week_load[(rpps, paris_week(now))] = int(value)
            elif word == "busy":
                built.index.busy.add(rpps)
            elif word == "closed":
                start, end = value.split(" to ")
                closures.append((when(start), when(end)))
            else:
                raise AssertionError(f"unknown directory item {item!r}")
        pro = matching.Professional(rpps, f"Dr {letter}", PROFESSIONS[head[0]], **fields)  # type: ignore[arg-type]
        site = matching.Site(
            "main",
            f"Cabinet {letter}",
            place.insee,
            matching.Place(place.lat, place.lon),
            place.department,
            closures=tuple(closures),
        )
        built.index.put_professional(pro, [site], revision)
        for n, (mode, start) in enumerate(slots):
            built.index.put_slot(f"{letter}{n}", rpps, "main", start, start + timedelta(minutes=20), mode, "free", 1)
    return built


def shown(at: datetime) -> str:
    local = at.astimezone(PARIS)
    in_week = MONDAY <= local.date() < MONDAY + timedelta(days=7)
    return f"{DAYS[local.weekday()]} {local:%H:%M}" if in_week else f"{local:%Y-%m-%d %H:%M}"


def outcome(row: Row) -> str:
    request = [r.strip() for r in row.request.split(",")]
    now = when(request[0])
    urgency = next((r for r in request[1:] if r in ("24h", "48h")), "48h")
    motive_code = next((r for r in request[1:] if r not in ("24h", "48h")), "general")
    motive = catalogue().motives[motive_code]
    patient = [p.strip() for p in row.patient.split(",")]
    place = commune(patient[0])
    age = sex = None
    flags: list[str] = []
    tele, asked_letters = False, []
    for item in patient[1:]:
        word, _, value = item.partition(" ")
        if word == "age":
            age = int(value)
        elif word in ("F", "M"):
            sex = word
        elif word == "flags":
            flags = value.split("+")
        elif word == "tele":
            tele = True
        elif word == "asked":
            asked_letters.append(value)
    built = directory(row.directory, now)
    territory = built.index.territory_of(place.insee)
    search = matching.Search(
        request_id="R",
        patient=matching.Place(place.lat, place.lon),
        deadline=deadline_for(now, effective_urgency(urgency, motive)),
        teleconsultation_ok=tele,
        radius_km=territory.radius_km if territory else matching.DEFAULT_RADIUS_KM,
        patient_cpts=territory.cpts_id if territory else None,
        department=place.department,
        already_asked=frozenset(built.names[a] for a in asked_letters),
    )
    decision = decide(built.index, search, motive.steps_for(age, sex, flags), now, LEAD)
    if isinstance(decision, GiveUp):
        return f"unresolved {decision.reason}"
    if not isinstance(decision, Ask):
        waited = f"wait {decision.reason}"
        return f"{waited} {shown(decision.look_again_at)}" if decision.reason == "not_yet_open" else waited
    best = decision.candidates[0]
    letter = {rpps: letter for letter, rpps in built.names.items()}[best.professional.rpps]
    return f"{best.kind} {letter} {shown(best.start)}"


@pytest.mark.parametrize("row", rows(), ids=lambda r: f"{r.number}-{r.situation}")
def test_worked_scenario(row: Row) -> None:
    assert outcome(row) == row.expected, row.situation


def test_the_table_has_all_its_rows() -> None:
    assert len(rows()) == 37
