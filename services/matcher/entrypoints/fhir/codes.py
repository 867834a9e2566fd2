"""Profiles, code systems and identifiers of the ANS "Service d'Accès aux Soins" guide
(package ans.fhir.fr.sas 1.2.0; see ../shared/INTEROP.md §1), and our resource ids."""

from __future__ import annotations

import hashlib
import re

FHIR_VERSION = "4.0.1"  # what the platform speaks; see resources.py for the models' own version
FHIR_JSON = "application/fhir+json"

_SAS_IG = "https://interop.esante.gouv.fr/ig/fhir/sas/StructureDefinition/"
_SAS_FR = "http://sas.fr/fhir/StructureDefinition/"
PROFILES = {
    "Bundle": _SAS_IG + "sas-cpts-bundle-aggregator",
    "Slot": _SAS_IG + "sas-cpts-slot-aggregator",
    "Schedule": _SAS_FR + "FrScheduleAgregateur",
    "Practitioner": _SAS_FR + "FrPractitionerAgregateur",
    "PractitionerRole": _SAS_FR + "FrPractitionerRoleExerciceAgregateur",
    "Location": _SAS_FR + "FrLocationAgregateur",
    "HealthcareService": _SAS_IG + "sas-cpts-healthcareservice-aggregator",
    "Organization": _SAS_IG + "sas-sos-organization-aggregator",
}

# Identifiers: a professional is "8" + RPPS under the RPPS OID (type IDNPS); the CPTS is
# "1" + FINESS under the structures' OID (type IDNST)
RPPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
STRUCTURE_SYSTEM = "urn:oid:1.2.250.1.71.4.2.2"
IDENTIFIER_TYPE_SYSTEM = "http://interopsante.org/fhir/CodeSystem/fr-v2-0203"
SAS_TECHNICAL_SYSTEM = "urn:oid:1.2.250.1.213.3.6"  # the regulator who booked, when no RPPS (type INTRN)

# Slot codes
SLOT_TYPE_SYSTEM = "https://mos.esante.gouv.fr/NOS/TRE_R314-TypeCreneau/FHIR/TRE-R314-TypeCreneau"
SLOT_TYPES = ("CPTS", "SNP")  # a CPTS's unscheduled-care slot (soins non programmés)
ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
MODE_CODES = {"in_person": "AMB", "teleconsultation": "VR"}  # HH (at home) is not offered by the service
CATEGORY_SYSTEM = "https://mos.esante.gouv.fr/NOS/TRE_R66-CategorieEtablissement/TRE_R66-CategorieEtablissement"
CPTS_CATEGORY = "604"
SERVICE_TYPE_REFERENCE = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Slot.serviceType"
SPECIALTY_SYSTEM = "https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale"
SPECIALTIES = {"general_practitioner": "SM54"}  # ordinal specialties exist for doctors only
APPOINTMENT_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0276"
ROUTINE = "ROUTINE"  # a slot that can be booked
OPERATOR_EXTENSION = "http://interopsante.org/fhir/StructureDefinition/FrAppointmentOperator"

_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def fhir_id(kind: str, *parts: str) -> str:
    """A FHIR id (letters, digits, '-' and '.', 64 at most) for one of our rows.

    Our ids also allow '_' and ':' and 100 characters: those that fit are kept readable, the
    others are hashed. Either way the same row always gets the same id."""
    readable = "-".join((kind, *parts))
    if _FHIR_ID.match(readable):
        return readable
    return f"{kind}-{hashlib.sha256('|'.join(parts).encode()).hexdigest()[:40]}"


def national_id(rpps: str) -> str:
    """The professional's national identifier (IDNPS): '8' followed by the RPPS number."""
    return "8" + rpps
