"""What the platform asks of an appointment, read from its FHIR body (pure).

The body is first read by the `fhir.resources` Appointment model (structure and types), then
the few elements we act on are taken out: the platform's identifier, the times, the professional,
the slot if named, and the regulator who booked (FrAppointmentOperator).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fhir.resources.R4B.appointment import Appointment
from pydantic import ValidationError

from services.common.inputs import has_control_characters
from services.matcher.entrypoints.fhir.codes import OPERATOR_EXTENSION, RPPS_SYSTEM
from services.matcher.entrypoints.fhir.search import FhirInputError

IDENTIFIER_MAX = 200
FINAL_STATUSES = ("cancelled", "fulfilled", "noshow")


@dataclass(frozen=True)
class Identifier:
    system: str
    value: str


@dataclass(frozen=True)
class BookingAsked:
    identifier: Identifier
    start: datetime
    end: datetime
    rpps: str
    slot_fhir_id: str | None  # "Slot/<id>" named by the platform, if it did
    operator: dict[str, str] | None


def _read(body: Any) -> Appointment:
    if not isinstance(body, dict) or body.get("resourceType") != "Appointment":
        raise FhirInputError("resourceType", "the body must be a FHIR Appointment (resourceType Appointment)")
    if _has_control_characters(body):
        raise FhirInputError("Appointment", "control characters (NUL, tab, newline, …) are not allowed")
    try:
        return Appointment.model_validate(body)
    except ValidationError as error:
        first = error.errors()[0]
        where = "Appointment." + ".".join(str(p) for p in first["loc"])
        raise FhirInputError(where, f"{where}: {first['msg']}") from None


def _has_control_characters(value: Any) -> bool:
    if isinstance(value, str):
        return has_control_characters(value)
    if isinstance(value, list):
        return any(_has_control_characters(v) for v in value)
    if isinstance(value, dict):
        return any(_has_control_characters(k) or _has_control_characters(v) for k, v in value.items())
    return False


def parse_identifier(text: str) -> Identifier:
    """`system|value`, as in the conditional update's `identifier=` parameter."""
    system, bar, value = text.partition("|")
    if not bar or not system or not value:
        raise FhirInputError("identifier", "identifier: expected system|value")
    return _bounded(Identifier(system, value))


def _bounded(identifier: Identifier) -> Identifier:
    if len(identifier.system) > IDENTIFIER_MAX or len(identifier.value) > IDENTIFIER_MAX:
        raise FhirInputError("identifier", f"identifier: system and value of at most {IDENTIFIER_MAX} characters")
    return identifier


def _identifier(appointment: Appointment) -> Identifier | None:
    for found in appointment.identifier or []:
        if found.system and found.value:
            return _bounded(Identifier(str(found.system), str(found.value)))
    return None


def _professional(appointment: Appointment) -> str:
    for participant in appointment.participant or []:
        actor = participant.actor
        identifier = actor.identifier if actor is not None else None
        if identifier is not None and identifier.system == RPPS_SYSTEM and identifier.value:
            value = str(identifier.value)
            if len(value) == 12 and value.startswith("8") and value.isdigit():
                return value[1:]
            raise FhirInputError(
                "Appointment.participant", f"participant: expected 8<11-digit RPPS>, got {value[:40]!r}"
            )
    raise FhirInputError("Appointment.participant", f"participant: no professional identified under {RPPS_SYSTEM}")


def _operator(appointment: Appointment) -> dict[str, str] | None:
    for extension in appointment.extension or []:
        if extension.url == OPERATOR_EXTENSION:
            reference = extension.valueReference
            identifier = reference.identifier if reference is not None else None
            if identifier is not None and identifier.value:
                return {"system": str(identifier.system or ""), "value": str(identifier.value)[:IDENTIFIER_MAX]}
    return None


def parse_booking(body: Any) -> BookingAsked:
    appointment = _read(body)
    for name in ("start", "end"):  # the model would take a number as seconds since 1970
        if not isinstance(body.get(name), str):
            raise FhirInputError(f"Appointment.{name}", f"{name}: a dateTime with its offset, as a string")
    identifier = _identifier(appointment)
    if identifier is None:
        raise FhirInputError(
            "Appointment.identifier", "identifier: the platform's own id (system and value) is required"
        )
    if appointment.status != "booked":
        raise FhirInputError("Appointment.status", "status: an appointment is created booked")
    start, end = appointment.start, appointment.end
    if start is None or end is None or start.tzinfo is None or end.tzinfo is None:
        raise FhirInputError("Appointment.start", "start and end with their offset are required")
    if end <= start:
        raise FhirInputError("Appointment.end", "end must be after start")
    slot = None
    for reference in appointment.slot or []:
        slot = str(reference.reference or "").removeprefix("Slot/") or None
    return BookingAsked(identifier, start, end, _professional(appointment), slot, _operator(appointment))


def parse_status_change(body: Any, identifier: Identifier) -> str:
    """The new status of a conditional update: cancelled, fulfilled or noshow."""
    appointment = _read(body)
    named = _identifier(appointment)
    if named is not None and named != identifier:
        raise FhirInputError("Appointment.identifier", "identifier: the body names another appointment than the URL")
    if appointment.status not in FINAL_STATUSES:
        raise FhirInputError("Appointment.status", f"status: one of {', '.join(FINAL_STATUSES)}")
    return str(appointment.status)
