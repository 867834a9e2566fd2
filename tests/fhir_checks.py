"""Checks of what the FHIR endpoint emits, shared by the unit and end-to-end tests: every
resource read back by its `fhir.resources` model, the guide's profiles and codes, and every
reference of the searchset resolved inside the Bundle."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle

from services.matcher.entrypoints.fhir import codes


def codings(concept: dict[str, Any]) -> set[tuple[str, str]]:
    return {(x["system"], x["code"]) for x in concept.get("coding", [])}


def valid(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource, read by its own model (raises when it is not valid FHIR)."""
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    for contained in resource.get("contained", []):
        valid(contained)
    return resource


def check_slot(slot: dict[str, Any]) -> None:
    assert slot["meta"]["profile"] == [codes.PROFILES["Slot"]]
    assert {(s["system"], s["code"]) for s in slot["meta"]["security"]} == {
        (codes.SLOT_TYPE_SYSTEM, "CPTS"),
        (codes.SLOT_TYPE_SYSTEM, "SNP"),
    }
    mode, category = slot["serviceType"]
    assert codings(mode) <= {(codes.ACT_CODE_SYSTEM, "AMB"), (codes.ACT_CODE_SYSTEM, "VR")} and codings(mode)
    assert codings(category) == {(codes.CATEGORY_SYSTEM, "604")}
    (extension,) = category["extension"]
    assert extension["url"] == codes.SERVICE_TYPE_REFERENCE
    assert extension["valueReference"]["reference"].startswith("HealthcareService/")
    assert codings(slot["appointmentType"]) == {(codes.APPOINTMENT_TYPE_SYSTEM, "ROUTINE")}
    assert slot["status"] == "free"


def check_searchset(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The Bundle checked whole; returns its resources by `Type/id`."""
    Bundle.model_validate(body)
    assert body["type"] == "searchset" and body["meta"]["profile"] == [codes.PROFILES["Bundle"]]
    entries = body.get("entry", [])
    assert body["total"] == sum(e["search"]["mode"] == "match" for e in entries)
    found = {}
    for entry in entries:
        resource = valid(entry["resource"])
        kind = resource["resourceType"]
        assert resource["meta"]["profile"] == [codes.PROFILES[kind]], kind
        assert entry["fullUrl"].endswith(f"/{kind}/{resource['id']}")
        assert entry["search"]["mode"] == ("match" if kind == "Slot" else "include")
        found[f"{kind}/{resource['id']}"] = resource
        if kind == "Slot":
            check_slot(resource)
        if kind == "PractitionerRole":
            (location,) = resource["contained"]
            assert location["resourceType"] == "Location" and location["meta"]["profile"] == [
                codes.PROFILES["Location"]
            ]
            assert resource["location"] == [{"reference": f"#{location['id']}"}]
        if kind == "Practitioner":
            (identifier,) = resource["identifier"]
            assert identifier["system"] == codes.RPPS_SYSTEM and identifier["value"].startswith("8")
            assert codings(identifier["type"]) == {(codes.IDENTIFIER_TYPE_SYSTEM, "IDNPS")}
    return found


def references(resource: dict[str, Any]) -> list[str]:
    """Every literal reference in a resource (contained ones excepted)."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("reference"), str) and not value["reference"].startswith("#"):
                found.append(value["reference"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(resource)
    return found
