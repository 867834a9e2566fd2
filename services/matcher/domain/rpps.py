"""Reading the national directory's public extraction (RPPS, `PS_LibreAcces_Personne_activite`): pure.

One row per activity, `|`-separated, one header line; columns are read by their header name,
never by position (the file has more columns than these, and their order has changed before).
The national file is over a gigabyte: rows are read one at a time and only the professionals of
the territory's communes and of the professions the service orients to are kept.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

ID_TYPE, ID = "Type d'identifiant PP", "Identifiant PP"
TITLE, LAST, FIRST = "Libellé civilité d'exercice", "Nom d'exercice", "Prénom d'exercice"
PROFESSION, SKILL = "Code profession", "Code savoir-faire"
STRUCTURE, COMPANY, SIGN = "Identifiant technique de la structure", "Raison sociale site", "Enseigne commerciale site"
NUMBER, REPEAT = "Numéro Voie (coord. structure)", "Indice répétition voie (coord. structure)"
STREET_TYPE, STREET = "Libellé type de voie (coord. structure)", "Libellé Voie (coord. structure)"
POSTCODE, COMMUNE, CITY = (
    "Code postal (coord. structure)",
    "Code commune (coord. structure)",
    "Libellé commune (coord. structure)",
)
PHONE, EMAIL = "Téléphone (coord. structure)", "Adresse e-mail (coord. structure)"
REQUIRED = (ID_TYPE, ID, LAST, FIRST, PROFESSION, SKILL, STRUCTURE, COMPANY, POSTCODE, COMMUNE, CITY)

# Code profession → the service's profession; a physician (10) only for general medicine (SM54)
PROFESSIONS = {
    "21": "pharmacist",
    "40": "dentist",
    "50": "midwife",
    "60": "nurse",
    "70": "physiotherapist",
}
PHYSICIAN, GENERAL_MEDICINE = "10", "SM54"
_NOT_ID = re.compile(r"[^A-Za-z0-9._:\-]")


class InvalidExtraction(Exception):
    """Not the expected file: a column the import needs is missing."""


@dataclass(frozen=True)
class Practice:
    """Where a professional practises (a `structure` of the directory)."""

    site_id: str
    name: str
    commune_insee: str
    address: dict[str, str]  # line, postal_code, city
    phone: str | None
    email: str | None


@dataclass
class Listed:
    """A professional as the national directory lists them, with their practices in the territory."""

    rpps: str
    name: str
    profession: str
    practices: list[Practice] = field(default_factory=list)


@dataclass
class Reading:
    professionals: dict[str, Listed] = field(default_factory=dict)
    skipped: Counter[str] = field(default_factory=Counter)  # reason → rows
    rows: int = 0


def read_extraction(lines: Iterable[str], communes: Collection[str]) -> Reading:
    """The professionals of `communes` in the extraction's rows, and why the other rows were skipped."""
    reader = csv.DictReader(lines, delimiter="|", quoting=csv.QUOTE_NONE)
    missing = [name for name in REQUIRED if name not in (reader.fieldnames or [])]
    if missing:
        raise InvalidExtraction(f"not an RPPS extraction: missing columns {', '.join(missing)}")
    reading = Reading()
    for row in reader:
        reading.rows += 1
        reason = _skip_reason(row, communes)
        if reason:
            reading.skipped[reason] += 1
            continue
        rpps, profession = (row[ID] or "").strip(), _profession(row) or ""
        listed = reading.professionals.setdefault(rpps, Listed(rpps, _name(row), profession))
        practice = _practice(row)
        if all(p.site_id != practice.site_id for p in listed.practices):
            listed.practices.append(practice)
    return reading


def _skip_reason(row: dict[str, str | None], communes: Collection[str]) -> str | None:
    if (row.get(ID_TYPE) or "").strip() != "8" or not (row.get(ID) or "").strip().isdigit():
        return "not an RPPS identifier (ADELI or malformed)"
    if _profession(row) is None:
        code = (row.get(PROFESSION) or "").strip()
        return "specialist physician" if code == PHYSICIAN else "profession the service does not orient to"
    commune = (row.get(COMMUNE) or "").strip()
    if not commune:
        return "no commune code for the practice"
    if commune not in communes:
        return "practice outside the territory"
    return None


def _profession(row: dict[str, str | None]) -> str | None:
    code = (row.get(PROFESSION) or "").strip()
    if code == PHYSICIAN:
        return "general_practitioner" if (row.get(SKILL) or "").strip() == GENERAL_MEDICINE else None
    return PROFESSIONS.get(code)


def _name(row: dict[str, str | None]) -> str:
    title = (row.get(TITLE) or "").strip()
    parts = ["Dr" if title == "Docteur" else title, (row.get(FIRST) or "").strip(), (row.get(LAST) or "").strip()]
    return " ".join(p for p in parts if p)[:200]


def _practice(row: dict[str, str | None]) -> Practice:
    def get(name: str) -> str:
        return (row.get(name) or "").strip()

    structure = _NOT_ID.sub("", get(STRUCTURE))[:90] or _NOT_ID.sub("", get(POSTCODE) + get(STREET))[:90]
    street = " ".join(p for p in (get(NUMBER), get(REPEAT), get(STREET_TYPE), get(STREET)) if p)
    return Practice(
        site_id=f"rpps-{structure or 'practice'}",
        name=(get(SIGN) or get(COMPANY) or f"Cabinet {get(CITY)}".strip())[:200],
        commune_insee=get(COMMUNE),
        address={"line": street[:200], "postal_code": get(POSTCODE)[:10], "city": get(CITY)[:100]},
        phone=get(PHONE)[:40] or None,
        email=get(EMAIL)[:200] or None,
    )
