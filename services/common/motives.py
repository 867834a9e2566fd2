"""Motive codes and the professions that may take them (versioned configuration, data/motives.json).

The professions are listed in order of preference: the first is asked before the others.
Inclusion and exclusion criteria of the cooperation protocols come with the matching engine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

MOTIVES_FILE = Path(__file__).parent / "data" / "motives.json"
PROFESSIONS = ("general_practitioner", "dentist", "pharmacist", "nurse", "physiotherapist", "midwife")


@dataclass(frozen=True)
class Motive:
    code: str
    label: str
    label_en: str
    professions: tuple[str, ...]
    urgency: str | None = None


@dataclass(frozen=True)
class MotiveCatalogue:
    version: str
    motives: dict[str, Motive]


@cache
def catalogue() -> MotiveCatalogue:
    raw = json.loads(MOTIVES_FILE.read_text(encoding="utf-8"))
    motives = {
        code: Motive(code, m["label"], m["label_en"], tuple(m["professions"]), m.get("urgency"))
        for code, m in raw["motives"].items()
    }
    for m in motives.values():
        unknown = set(m.professions) - set(PROFESSIONS)
        if unknown:
            raise ValueError(f"motive {m.code}: unknown professions {sorted(unknown)}")
    return MotiveCatalogue(raw["version"], motives)
