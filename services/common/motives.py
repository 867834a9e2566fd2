"""Motive codes and who may take them: the versioned configuration in data/motives.json.

Each motive lists steps in order of preference: the professions of a step, and for a
cooperation protocol its inclusion and exclusion criteria (age range, sex, red flags the
regulator reports). The matcher asks the first step whose criteria the request meets and
that has a candidate, then the next. A GP is always the last step, so a request that every
protocol excludes goes to a GP. A motive may imply an urgency (dental pain: 24 h).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

MOTIVES_FILE = Path(__file__).parent / "data" / "motives.json"
PROFESSIONS = ("general_practitioner", "dentist", "pharmacist", "nurse", "physiotherapist", "midwife")
GP_STEP_PROFESSIONS = ("general_practitioner",)
URGENCY_DELAYS = {"48h": timedelta(hours=48), "24h": timedelta(hours=24)}


@dataclass(frozen=True)
class Step:
    professions: tuple[str, ...]
    protocol: str | None = None
    age_min: int | None = None
    age_max: int | None = None
    sexes: tuple[str, ...] | None = None
    exclude: frozenset[str] = frozenset()

    def admits(self, age: int | None, sex: str | None, red_flags: Collection[str]) -> bool:
        """Does a request meet this step's criteria? Unknown facts never meet a criterion."""
        if self.age_min is not None and (age is None or age < self.age_min):
            return False
        if self.age_max is not None and (age is None or age > self.age_max):
            return False
        if self.sexes is not None and sex not in self.sexes:
            return False
        return not self.exclude & set(red_flags)


@dataclass(frozen=True)
class Motive:
    code: str
    label: str
    label_en: str
    steps: tuple[Step, ...]
    urgency: str | None = None

    @property
    def professions(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p for step in self.steps for p in step.professions))

    def steps_for(self, age: int | None, sex: str | None, red_flags: Collection[str]) -> list[Step]:
        """The steps this request may go through, in order; always ends with a GP."""
        steps = [s for s in self.steps if s.admits(age, sex, red_flags)]
        if not steps or steps[-1].professions != GP_STEP_PROFESSIONS:
            steps.append(Step(GP_STEP_PROFESSIONS))
        return steps


@dataclass(frozen=True)
class MotiveCatalogue:
    version: str
    motives: dict[str, Motive]
    red_flags: dict[str, str]


def effective_urgency(given: str, motive: Motive | None) -> str:
    """The stricter of the regulator's urgency and the one the motive implies."""
    return "24h" if "24h" in (given, motive.urgency if motive else None) else "48h"


def deadline_for(received_at: datetime, urgency: str) -> datetime:
    """The absolute instant by which the patient must be seen (48 h, or 24 h when urgent).

    Computed in UTC: Python adds a timedelta to a zone-aware datetime on the wall clock, which
    would make a 48 h window across a daylight-saving change 47 or 49 real hours.
    """
    return received_at.astimezone(UTC) + URGENCY_DELAYS[urgency]


@cache
def catalogue() -> MotiveCatalogue:
    raw = json.loads(MOTIVES_FILE.read_text(encoding="utf-8"))
    red_flags = dict(raw["red_flags"])
    motives = {}
    for code, m in raw["motives"].items():
        steps = tuple(
            Step(
                tuple(s["professions"]),
                s.get("protocol"),
                s.get("age_min"),
                s.get("age_max"),
                tuple(s["sexes"]) if "sexes" in s else None,
                frozenset(s.get("exclude", ())),
            )
            for s in m["steps"]
        )
        motive = Motive(code, m["label"], m["label_en"], steps, m.get("urgency"))
        for step in steps:
            if set(step.professions) - set(PROFESSIONS) or step.exclude - set(red_flags):
                raise ValueError(f"motive {code}: unknown professions or red flags in {step}")
        motives[code] = motive
    return MotiveCatalogue(raw["version"], motives, red_flags)
