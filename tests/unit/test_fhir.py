"""The FHIR core without I/O: reading the platform's searches and bookings, building resources."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from services.matcher.entrypoints.fhir import codes, resources
from services.matcher.entrypoints.fhir.appointment import (
    Identifier,
    parse_booking,
    parse_identifier,
    parse_status_change,
)
from services.matcher.entrypoints.fhir.search import FhirInputError, parse_slot_search
from tests.fhir_checks import check_searchset, references, valid

PRO = f"{codes.RPPS_SYSTEM}|810000000001"
GUIDE_QUERY = [
    ("start", "ge2026-12-01T08:00:00+01:00"),
    ("start", "le2026-12-03T20:00:00+01:00"),
    ("schedule.actor:Practitioner.identifier", f"{PRO},{codes.RPPS_SYSTEM}|810000000002"),
    ("status", "free"),
    ("_include", "Slot:schedule"),
    ("_include:iterate", "Schedule:actor"),
    ("_include", "Slot:service-type-reference"),
    ("_include:iterate", "HealthcareService:organization"),
]


def test_the_guides_query_shape_is_understood() -> None:
    search = parse_slot_search(GUIDE_QUERY)
    assert search.rpps == ("10000000001", "10000000002")
    assert search.start_from == datetime(2026, 12, 1, 7, tzinfo=UTC)
    assert search.start_to == datetime(2026, 12, 3, 19, tzinfo=UTC)
    assert len(search.includes) == 4


def test_an_unencoded_plus_in_the_offset_is_read_as_a_plus() -> None:
    query = [("start", "ge2026-12-01T08:00:00 01:00"), ("start", "le2026-12-01T20:00:00 01:00"), (GUIDE_QUERY[2])]
    assert parse_slot_search(query).start_from == datetime(2026, 12, 1, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("change", "parameter"),
    [
        (lambda q: [p for p in q if p[1] != "le2026-12-03T20:00:00+01:00"], "start"),
        (lambda q: [*q, ("start", "ge2026-12-02T08:00:00+01:00")], "start"),
        (lambda q: [("start", "ge2026-12-01T08:00:00"), *q[1:]], "start"),  # no offset
        (lambda q: [("start", "ge2026-12-01"), *q[1:]], "start"),  # a date alone
        (lambda q: [("start", "ge2026-12-05T08:00:00+01:00"), *q[1:]], "start"),  # ends before it starts
        (lambda q: [("start", "ge2026-10-01T08:00:00+01:00"), *q[1:]], "start"),  # over 31 days
        (lambda q: [p for p in q if not p[0].startswith("schedule")], "schedule.actor:Practitioner.identifier"),
        (lambda q: [*q[:2], ("schedule.actor:Practitioner.identifier", "urn:oid:1.2.3|810000000001"), *q[3:]],
         "schedule.actor:Practitioner.identifier"),
        (lambda q: [*q[:2], ("schedule.actor:Practitioner.identifier", f"{codes.RPPS_SYSTEM}|10000000001"), *q[3:]],
         "schedule.actor:Practitioner.identifier"),
        (lambda q: [*q[:2], ("schedule.actor:Practitioner.identifier", ",".join([PRO] * 26)), *q[3:]],
         "schedule.actor:Practitioner.identifier"),
        (lambda q: [*q, ("status", "busy")], "status"),
        (lambda q: [*q, ("_include", "Slot:*")], "_include"),
        (lambda q: [*q, ("_count", "10")], "_count"),
        (lambda q: [*q, ("specialty", "SM54")], "specialty"),
    ],
)  # fmt: skip
def test_a_search_the_service_cannot_honour_names_the_parameter(change: Any, parameter: str) -> None:
    with pytest.raises(FhirInputError) as refused:
        parse_slot_search(change(GUIDE_QUERY))
    assert refused.value.parameter == parameter
    assert parameter.split(":")[0] in str(refused.value)


def published(rpps: str = "10000000001", slot_id: str = "s-1", **extra: Any) -> resources.PublishedSlot:
    start = datetime(2026, 12, 1, 16, tzinfo=UTC)
    values: dict[str, Any] = {
        "slot_id": slot_id,
        "start": start,
        "end": start + timedelta(minutes=20),
        "mode": "in_person",
        "rpps": rpps,
        "name": "Dr Martin",
        "profession": "general_practitioner",
        "site_id": "main",
        "site_name": "Cabinet du Lac",
        "address": {"line": "3 rue du Lac", "postal_code": "54000", "city": "Nancy"},
        "lat": 48.69,
        "lon": 6.18,
        "cpts_id": "cpts_nancy",  # '_' is not allowed in a FHIR id: hashed
        "cpts_name": "CPTS du Grand Nancy",
        "finess": "540012345",
    }
    values.update(extra)
    return resources.PublishedSlot(**values)


def test_a_searchset_is_valid_fhir_with_the_guides_profiles_and_codes() -> None:
    slots = [published(), published(slot_id="s-2", mode="teleconsultation"), published("10000000002", "s-3")]
    bundle = resources.slot_bundle("https://sas.example/fhir", slots, parse_slot_search(GUIDE_QUERY).includes)
    body = json.loads(bundle.model_dump_json(exclude_none=True))
    found = check_searchset(body)
    assert body["total"] == 3
    kinds = sorted(key.split("/")[0] for key in found)
    # one Schedule, Practitioner and PractitionerRole per professional and site; one service and CPTS
    assert kinds.count("Slot") == 3 and kinds.count("Schedule") == 2 and kinds.count("Practitioner") == 2
    assert kinds.count("HealthcareService") == 1 and kinds.count("Organization") == 1
    for resource in found.values():  # every reference resolves inside the Bundle
        for reference in references(resource):
            assert reference in found, reference
    modes = [s["serviceType"][0]["coding"][0]["code"] for k, s in found.items() if k.startswith("Slot/")]
    assert sorted(modes) == ["AMB", "AMB", "VR"]
    (organization,) = [v for k, v in found.items() if k.startswith("Organization/")]
    assert organization["identifier"][0]["value"] == "1540012345"
    assert organization["identifier"][0]["system"] == codes.STRUCTURE_SYSTEM
    (role, _) = [v for k, v in found.items() if k.startswith("PractitionerRole/")]
    assert role["contained"][0]["address"] == {"line": ["3 rue du Lac"], "postalCode": "54000", "city": "Nancy"}
    assert role["specialty"][0]["coding"][0] == {"system": codes.SPECIALTY_SYSTEM, "code": "SM54"}


def test_without_includes_only_the_slots_come_and_nothing_found_is_total_0() -> None:
    bare = json.loads(
        resources.slot_bundle("https://x/fhir", [published()], frozenset()).model_dump_json(exclude_none=True)
    )
    assert list(check_searchset(bare)) == ["Slot/slot-s-1"]
    empty = json.loads(resources.slot_bundle("https://x/fhir", [], frozenset()).model_dump_json(exclude_none=True))
    check_searchset(empty)
    assert empty["total"] == 0 and "entry" not in empty


def test_ids_are_fhir_ids_and_stable() -> None:
    assert codes.fhir_id("slot", "abc-1") == "slot-abc-1"
    hashed = codes.fhir_id("slot", "cpts_nancy:2026-12-01")
    assert hashed == codes.fhir_id("slot", "cpts_nancy:2026-12-01") and len(hashed) <= 64
    assert codes.fhir_id("slot", "x" * 100) != codes.fhir_id("slot", "x" * 99)
    assert all(ch.isalnum() or ch in "-." for ch in hashed)


def booking(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Appointment",
        "identifier": [{"system": "urn:oid:1.2.250.1.213.3.6.1", "value": "RDV-0001"}],
        "status": "booked",
        "start": "2026-12-01T17:00:00+01:00",
        "end": "2026-12-01T17:20:00+01:00",
        "slot": [{"reference": "Slot/slot-s-1"}],
        "participant": [
            {"actor": {"identifier": {"system": codes.RPPS_SYSTEM, "value": "810000000001"}}, "status": "accepted"}
        ],
        "extension": [
            {
                "url": codes.OPERATOR_EXTENSION,
                "valueReference": {"identifier": {"system": codes.SAS_TECHNICAL_SYSTEM, "value": "regul-42"}},
            }
        ],
    }
    body.update(changes)
    return body


def test_a_booking_is_read_from_the_platform_s_appointment() -> None:
    asked = parse_booking(booking())
    assert asked.identifier == Identifier("urn:oid:1.2.250.1.213.3.6.1", "RDV-0001")
    assert asked.rpps == "10000000001" and asked.slot_fhir_id == "slot-s-1"
    assert asked.start == datetime(2026, 12, 1, 16, tzinfo=UTC) and asked.end - asked.start == timedelta(minutes=20)
    assert asked.operator == {"system": codes.SAS_TECHNICAL_SYSTEM, "value": "regul-42"}


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ([], "resourceType"),
        ({"resourceType": "Slot"}, "resourceType"),
        (booking(identifier=[]), "Appointment.identifier"),
        (booking(status="proposed"), "Appointment.status"),
        (booking(start="2026-12-01T17:00:00"), "Appointment.start"),
        (booking(end="2026-12-01T16:00:00+01:00"), "Appointment.end"),
        (booking(participant=[{"actor": {"display": "x"}, "status": "accepted"}]), "Appointment.participant"),
        (booking(participant=[{"actor": {"identifier": {"system": codes.RPPS_SYSTEM, "value": "8123"}},
                               "status": "accepted"}]), "Appointment.participant"),
        (booking(start=42), "Appointment.start"),
        (booking(identifier=[{"system": "s", "value": "a\x00b"}]), "Appointment"),
        (booking(identifier=[{"system": "s", "value": "v" * 201}]), "identifier"),
    ],
)  # fmt: skip
def test_a_malformed_booking_names_what_is_wrong(body: Any, where: str) -> None:
    with pytest.raises(FhirInputError) as refused:
        parse_booking(body)
    assert refused.value.parameter.startswith(where), refused.value.parameter


def test_a_status_change_names_the_same_appointment_and_a_final_status() -> None:
    identifier = parse_identifier("urn:oid:1.2.250.1.213.3.6.1|RDV-0001")
    assert parse_status_change(booking(status="cancelled"), identifier) == "cancelled"
    without_identifier = {"resourceType": "Appointment", "status": "noshow", "participant": booking()["participant"]}
    assert parse_status_change(without_identifier, identifier) == "noshow"
    with pytest.raises(FhirInputError):
        parse_status_change(booking(status="booked"), identifier)
    with pytest.raises(FhirInputError):
        parse_status_change(booking(status="fulfilled"), parse_identifier("urn:x|OTHER"))
    for bad in ("RDV-0001", "|x", "x|"):
        with pytest.raises(FhirInputError):
            parse_identifier(bad)


def test_every_resource_emitted_besides_the_searchset_is_valid() -> None:
    now = datetime(2026, 12, 1, 8, tzinfo=UTC)
    statement = json.loads(resources.capability_statement("https://x/fhir", now).model_dump_json(exclude_none=True))
    CapabilityStatement.model_validate(statement)
    assert statement["fhirVersion"] == "4.0.1"
    (rest,) = statement["rest"]
    assert {res["type"] for res in rest["resource"]} == {"Slot", "Appointment"}
    booked = resources.BookedAppointment(
        "a1", "urn:x", "RDV-1", "booked", now, now + timedelta(minutes=20), "10000000001",
        "slot-s-1", {"system": codes.SAS_TECHNICAL_SYSTEM, "value": "regul-42"},
    )  # fmt: skip
    appointment = valid(json.loads(resources.appointment(booked).model_dump_json(exclude_none=True)))
    assert appointment["participant"][0]["actor"]["identifier"]["value"] == "810000000001"
    assert parse_booking(appointment).identifier == Identifier("urn:x", "RDV-1")  # what we answer, we can read
    outcome = valid(
        json.loads(resources.outcome("invalid", "start: required", "start").model_dump_json(exclude_none=True))
    )
    assert outcome["issue"][0]["expression"] == ["start"]
