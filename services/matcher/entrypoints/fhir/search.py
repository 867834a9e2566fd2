"""The platform's slot search, read from its query string (pure).

The guide's CPTS search: a window on `start` (both ends), 1 to 25 professionals by national
identifier, `status=free`, and four `_include`s. Anything else is refused with the name of the
parameter at fault: a platform that believes a filter was applied must not get more than it asked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.matcher.entrypoints.fhir.codes import RPPS_SYSTEM

MAX_PROFESSIONALS = 25
MAX_WINDOW = timedelta(days=31)
INCLUDES = {
    ("_include", "Slot:schedule"),
    ("_include:iterate", "Schedule:actor"),
    ("_include", "Slot:service-type-reference"),
    ("_include:iterate", "HealthcareService:organization"),
}
PRACTITIONER = "schedule.actor:Practitioner.identifier"
_RPPS = re.compile(r"^8([0-9]{11})$")
_MAX_VALUE = 2000


class FhirInputError(ValueError):
    """What the platform sent cannot be used; `parameter` names the part at fault."""

    def __init__(self, parameter: str, message: str, code: str = "invalid") -> None:
        super().__init__(message)
        self.parameter = parameter
        self.code = code  # the FHIR issue type: invalid, or not-supported


@dataclass(frozen=True)
class SlotSearch:
    start_from: datetime
    start_to: datetime
    rpps: tuple[str, ...]
    includes: frozenset[tuple[str, str]]


def _instant(parameter: str, text: str) -> datetime:
    # '+' of the offset arrives as a space when the platform did not percent-encode it
    text = text.replace(" ", "+")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        value = None
    if value is None or value.tzinfo is None or "T" not in text:
        raise FhirInputError(parameter, f"{parameter}: expected a date-time with its offset, got {text[:40]!r}")
    return value


def _window(values: list[str]) -> tuple[datetime, datetime]:
    bounds: dict[str, datetime] = {}
    for value in values:
        prefix, moment = value[:2], value[2:]
        if prefix not in ("ge", "le") or prefix in bounds:
            raise FhirInputError("start", "start: give the window as one start=ge… and one start=le…")
        bounds[prefix] = _instant("start", moment)
    if set(bounds) != {"ge", "le"}:
        raise FhirInputError("start", "start: both start=ge… and start=le… are required")
    if bounds["le"] < bounds["ge"]:
        raise FhirInputError("start", "start: the window ends before it starts")
    if bounds["le"] - bounds["ge"] > MAX_WINDOW:
        raise FhirInputError("start", f"start: the window is longer than {MAX_WINDOW.days} days")
    return bounds["ge"], bounds["le"]


def _professionals(values: list[str]) -> tuple[str, ...]:
    pairs = [pair.strip() for value in values for pair in value.split(",")]
    if not pairs or not all(pairs):
        raise FhirInputError(PRACTITIONER, f"{PRACTITIONER}: 1 to {MAX_PROFESSIONALS} system|value pairs are required")
    if len(pairs) > MAX_PROFESSIONALS:
        raise FhirInputError(PRACTITIONER, f"{PRACTITIONER}: at most {MAX_PROFESSIONALS} professionals per search")
    found: list[str] = []
    for pair in pairs:
        system, bar, value = pair.partition("|")
        match = _RPPS.match(value)
        if not bar or system != RPPS_SYSTEM or match is None:
            raise FhirInputError(
                PRACTITIONER, f"{PRACTITIONER}: expected {RPPS_SYSTEM}|8<11-digit RPPS>, got {pair[:60]!r}"
            )
        found.append(match.group(1))
    return tuple(dict.fromkeys(found))


def parse_slot_search(parameters: Iterable[tuple[str, str]]) -> SlotSearch:
    """The search asked, or FhirInputError naming the first parameter that cannot be honoured."""
    starts: list[str] = []
    practitioners: list[str] = []
    includes: set[tuple[str, str]] = set()
    for name, value in parameters:
        if len(value) > _MAX_VALUE:
            raise FhirInputError(name[:60], f"{name[:60]}: value too long")
        if name == "start":
            starts.append(value)
        elif name == PRACTITIONER:
            practitioners.append(value)
        elif name == "status":
            if value != "free":
                raise FhirInputError("status", "status: only free slots are published (status=free)")
        elif name in ("_include", "_include:iterate"):
            if (name, value) not in INCLUDES:
                raise FhirInputError(name, f"{name}={value[:60]} is not supported", "not-supported")
            includes.add((name, value))
        else:
            raise FhirInputError(name[:60], f"unsupported search parameter: {name[:60]}", "not-supported")
    start_from, start_to = _window(starts)
    return SlotSearch(start_from, start_to, _professionals(practitioners), frozenset(includes))
