"""What the service answers the platform, built with `fhir.resources` models (pure).

The platform speaks FHIR R4 (4.0.1). `fhir.resources` 8 ships models for R5 (its default) and
for R4B (4.3.0), not for R4 4.0.1 itself; we use the R4B models. For the resources exchanged here
(Bundle, Slot, Schedule, Practitioner, PractitionerRole, Location, HealthcareService,
Organization, Appointment, OperationOutcome, CapabilityStatement) R4B changed nothing in the
elements we emit or read, so what the models accept and produce is valid R4 on those elements;
the models would not catch an element that exists only in R4B (we emit none), and the
CapabilityStatement says `fhirVersion` 4.0.1 because that is what the platform gets.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fhir.resources.R4B.appointment import Appointment
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.healthcareservice import HealthcareService
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.practitionerrole import PractitionerRole
from fhir.resources.R4B.schedule import Schedule
from fhir.resources.R4B.slot import Slot

from services.common.clock import PARIS
from services.matcher.entrypoints.fhir import codes

MODELS_FHIR_VERSION = "4.3.0"  # fhir.resources.R4B


@dataclass(frozen=True)
class PublishedSlot:
    """A free slot as the platform sees it, with who publishes it and where."""

    slot_id: str
    start: datetime
    end: datetime
    mode: str
    rpps: str
    name: str
    profession: str
    site_id: str
    site_name: str
    address: dict[str, str] | None
    lat: float
    lon: float
    cpts_id: str
    cpts_name: str
    finess: str | None


@dataclass(frozen=True)
class BookedAppointment:
    """An appointment booked by the platform, as we keep it."""

    appointment_id: str
    identifier_system: str
    identifier_value: str
    status: str
    start: datetime
    end: datetime
    rpps: str
    slot_fhir_id: str
    operator: dict[str, str] | None


def _paris(at: datetime) -> str:
    """Times with the Paris offset, as the platform writes them (the same instant either way)."""
    return at.astimezone(PARIS).isoformat()


def _meta(kind: str, **extra: Any) -> dict[str, Any]:
    return {"profile": [codes.PROFILES[kind]], **extra}


def _coding(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def _practitioner_identifier(rpps: str) -> dict[str, Any]:
    return {
        "use": "official",
        "type": _coding(codes.IDENTIFIER_TYPE_SYSTEM, "IDNPS"),
        "system": codes.RPPS_SYSTEM,
        "value": codes.national_id(rpps),
    }


def slot_id_of(s: PublishedSlot) -> str:
    return codes.fhir_id("slot", s.slot_id)


def _ids(s: PublishedSlot) -> dict[str, str]:
    return {
        "slot": slot_id_of(s),
        "schedule": codes.fhir_id("sch", s.rpps, s.site_id),
        "practitioner": codes.fhir_id("pra", s.rpps),
        "role": codes.fhir_id("role", s.rpps, s.site_id),
        "service": codes.fhir_id("hs", s.cpts_id),
        "organization": codes.fhir_id("org", s.cpts_id),
    }


def slot(s: PublishedSlot) -> Slot:
    ids = _ids(s)
    service_types = [
        _coding(codes.ACT_CODE_SYSTEM, codes.MODE_CODES[s.mode]),
        {
            **_coding(codes.CATEGORY_SYSTEM, codes.CPTS_CATEGORY),
            "extension": [
                {
                    "url": codes.SERVICE_TYPE_REFERENCE,
                    "valueReference": {"reference": f"HealthcareService/{ids['service']}"},
                }
            ],
        },
    ]
    specialty = codes.SPECIALTIES.get(s.profession)
    return Slot.model_validate(
        {
            "id": ids["slot"],
            "meta": _meta("Slot", security=[{"system": codes.SLOT_TYPE_SYSTEM, "code": t} for t in codes.SLOT_TYPES]),
            "serviceType": service_types,
            "specialty": [_coding(codes.SPECIALTY_SYSTEM, specialty)] if specialty else None,
            "appointmentType": _coding(codes.APPOINTMENT_TYPE_SYSTEM, codes.ROUTINE),
            "schedule": {"reference": f"Schedule/{ids['schedule']}"},
            "status": "free",
            "start": _paris(s.start),
            "end": _paris(s.end),
        }
    )


def schedule(s: PublishedSlot) -> Schedule:
    ids = _ids(s)
    return Schedule.model_validate(
        {
            "id": ids["schedule"],
            "meta": _meta("Schedule"),
            "active": True,
            "actor": [
                {"reference": f"Practitioner/{ids['practitioner']}"},
                {"reference": f"PractitionerRole/{ids['role']}"},
            ],
        }
    )


def practitioner(s: PublishedSlot) -> Practitioner:
    return Practitioner.model_validate(
        {
            "id": _ids(s)["practitioner"],
            "meta": _meta("Practitioner"),
            "identifier": [_practitioner_identifier(s.rpps)],
            "active": True,
            "name": [{"text": s.name}],
        }
    )


def _address(s: PublishedSlot) -> dict[str, Any] | None:
    if not s.address:
        return None
    a = s.address
    return {
        "line": [a["line"]] if a.get("line") else None,
        "postalCode": a.get("postal_code") or None,
        "city": a.get("city") or None,
    }


def practitioner_role(s: PublishedSlot) -> PractitionerRole:
    """The professional at one practice; the practice (Location) travels contained in it."""
    ids = _ids(s)
    location = {
        "resourceType": "Location",
        "id": "location",
        "meta": _meta("Location"),
        "name": s.site_name,
        "address": _address(s),
        "position": {"longitude": round(s.lon, 6), "latitude": round(s.lat, 6)},
    }
    specialty = codes.SPECIALTIES.get(s.profession)
    return PractitionerRole.model_validate(
        {
            "id": ids["role"],
            "meta": _meta("PractitionerRole"),
            "contained": [location],
            "active": True,
            "practitioner": {"reference": f"Practitioner/{ids['practitioner']}"},
            "location": [{"reference": "#location"}],
            "specialty": [_coding(codes.SPECIALTY_SYSTEM, specialty)] if specialty else None,
        }
    )


def healthcare_service(s: PublishedSlot) -> HealthcareService:
    ids = _ids(s)
    return HealthcareService.model_validate(
        {
            "id": ids["service"],
            "meta": _meta("HealthcareService"),
            "active": True,
            "providedBy": {"reference": f"Organization/{ids['organization']}"},
            "category": [_coding(codes.CATEGORY_SYSTEM, codes.CPTS_CATEGORY)],
            "name": f"Soins non programmés — {s.cpts_name}",
        }
    )


def organization(s: PublishedSlot) -> Organization:
    identifier = (
        [
            {
                "use": "official",
                "type": _coding(codes.IDENTIFIER_TYPE_SYSTEM, "IDNST"),
                "system": codes.STRUCTURE_SYSTEM,
                "value": "1" + s.finess,
            }
        ]
        if s.finess
        else None
    )
    return Organization.model_validate(
        {
            "id": _ids(s)["organization"],
            "meta": _meta("Organization"),
            "identifier": identifier,
            "active": True,
            "type": [_coding(codes.CATEGORY_SYSTEM, codes.CPTS_CATEGORY)],
            "name": s.cpts_name,
        }
    )


_SCHEDULE = ("_include", "Slot:schedule")
_ACTORS = ("_include:iterate", "Schedule:actor")
_SERVICE = ("_include", "Slot:service-type-reference")
_ORGANIZATION = ("_include:iterate", "HealthcareService:organization")
# each included kind, its builder, and the _includes that bring it (an :iterate one needs its first step)
_INCLUDED = {
    "Schedule": (schedule, {_SCHEDULE}),
    "Practitioner": (practitioner, {_SCHEDULE, _ACTORS}),
    "PractitionerRole": (practitioner_role, {_SCHEDULE, _ACTORS}),
    "HealthcareService": (healthcare_service, {_SERVICE}),
    "Organization": (organization, {_SERVICE, _ORGANIZATION}),
}


def slot_bundle(base: str, found: Iterable[PublishedSlot], includes: frozenset[tuple[str, str]]) -> Bundle:
    """The `searchset` answer: the slots (`match`), then each included resource once (`include`)."""
    matches: list[dict[str, Any]] = []
    included: dict[tuple[str, str], dict[str, Any]] = {}
    for s in found:
        resource = slot(s)
        matches.append({"fullUrl": f"{base}/Slot/{resource.id}", "resource": resource, "search": {"mode": "match"}})
        for kind, (build, needs) in _INCLUDED.items():
            if needs <= includes:
                extra = build(s)
                key = (kind, str(extra.id))
                if key not in included:
                    included[key] = {
                        "fullUrl": f"{base}/{kind}/{extra.id}",
                        "resource": extra,
                        "search": {"mode": "include"},
                    }
    return Bundle.model_validate(
        {
            "meta": _meta("Bundle"),
            "type": "searchset",
            "total": len(matches),
            "link": [{"relation": "self", "url": f"{base}/Slot"}],
            "entry": matches + list(included.values()) or None,
        }
    )


def appointment(a: BookedAppointment) -> Appointment:
    operator = [{"url": codes.OPERATOR_EXTENSION, "valueReference": {"identifier": a.operator}}] if a.operator else None
    return Appointment.model_validate(
        {
            "id": a.appointment_id,
            "extension": operator,
            "identifier": [{"system": a.identifier_system, "value": a.identifier_value}],
            "status": a.status,
            "start": _paris(a.start),
            "end": _paris(a.end),
            "slot": [{"reference": f"Slot/{a.slot_fhir_id}"}],
            "participant": [
                {"actor": {"identifier": _practitioner_identifier(a.rpps)}, "status": "accepted"},
            ],
        }
    )


def outcome(code: str, diagnostics: str, expression: str | None = None) -> OperationOutcome:
    """An error the platform can read: `code` from the FHIR issue-type codes."""
    return OperationOutcome.model_validate(
        {
            "issue": [
                {
                    "severity": "error",
                    "code": code,
                    "diagnostics": diagnostics,
                    "expression": [expression] if expression else None,
                }
            ]
        }
    )


def capability_statement(base: str, now: datetime) -> CapabilityStatement:
    """What this server does: the CPTS agenda manager's part of the guide, and nothing more."""
    slot_params = [
        {"name": "start", "type": "date", "documentation": "the window: start=ge… and start=le…, both required"},
        {
            "name": "schedule.actor:Practitioner.identifier",
            "type": "token",
            "documentation": f"1 to 25 professionals, {codes.RPPS_SYSTEM}|8<RPPS>, comma-separated",
        },
        {"name": "status", "type": "token", "documentation": "free (the only value)"},
    ]
    return CapabilityStatement.model_validate(
        {
            "status": "active",
            "date": now.isoformat(),
            "kind": "instance",
            "name": "SASCPTSAgendaManager",
            "title": "SAS–CPTS orientation service as a CPTS agenda manager",
            "description": "Slot search and appointment booking for the national SAS platform, following the ANS "
            "guide 'Service d'Accès aux Soins' (ans.fhir.fr.sas 1.2.0), capability SAS-GestionnaireAgenda-CPTS.",
            "implementation": {"description": "SAS–CPTS orientation service", "url": base},
            "fhirVersion": codes.FHIR_VERSION,
            "format": ["application/fhir+json", "json"],
            "rest": [
                {
                    "mode": "server",
                    "security": {"description": "Authorization: Bearer <one of FHIR_API_KEYS>"},
                    "resource": [
                        {
                            "type": "Slot",
                            "supportedProfile": [codes.PROFILES["Slot"]],
                            "interaction": [{"code": "search-type"}],
                            "searchInclude": [
                                "Slot:schedule",
                                "Schedule:actor",
                                "Slot:service-type-reference",
                                "HealthcareService:organization",
                            ],
                            "searchParam": slot_params,
                        },
                        {
                            "type": "Appointment",
                            "interaction": [{"code": "create"}, {"code": "update"}, {"code": "read"}],
                            "conditionalUpdate": True,
                            "searchParam": [{"name": "identifier", "type": "token"}],
                        },
                    ],
                }
            ],
        }
    )
