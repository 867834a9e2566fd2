"""The FHIR endpoint for the national SAS platform, under /fhir (see ../shared/INTEROP.md §1).

Every answer is `application/fhir+json`; every error an OperationOutcome (never problem+json:
the platform reads FHIR). Guarded by its own keys (FHIR_API_KEYS, bearer), apart from the
regulators'. The routes stay out of /docs: a FHIR server is described by its CapabilityStatement
(`GET /fhir/metadata`), which is what the platform reads.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fhir.resources.R4B.resource import Resource

from services.common.access.roles import Forbidden, Role
from services.common.db import database_away
from services.common.deps import SettingsDep, allow, provided, public
from services.common.http import Problem, failures_answered_by
from services.common.settings import Settings
from services.matcher.directory.errors import NotFound
from services.matcher.entrypoints.fhir import resources
from services.matcher.entrypoints.fhir.appointment import parse_booking, parse_identifier, parse_status_change
from services.matcher.entrypoints.fhir.codes import FHIR_JSON
from services.matcher.entrypoints.fhir.search import FhirInputError, parse_slot_search
from services.matcher.platform import BookingRefused, PlatformBookings

log = structlog.get_logger(__name__)


def fhir_response(resource: Resource, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = resource.model_dump_json(exclude_none=True)
    return Response(body, status_code=status, media_type=FHIR_JSON, headers=headers)


def _outcome(status: int, code: str, diagnostics: str, expression: str | None = None, **headers: str) -> Response:
    return fhir_response(resources.outcome(code, diagnostics, expression), status, headers or None)


def _answered(error: Exception) -> Response | None:
    """The OperationOutcome for a failure we know, or None (a bug: the 500 handler answers)."""
    if isinstance(error, FhirInputError):
        return _outcome(400, error.code, str(error), error.parameter)
    if isinstance(error, RequestValidationError):
        return _outcome(400, "invalid", "the request is malformed")
    if isinstance(error, NotFound):
        return _outcome(404, "not-found", str(error))
    if isinstance(error, BookingRefused):
        return _outcome(422, "business-rule", str(error))
    if isinstance(error, Problem) and error.status_code == 401:
        return _outcome(401, "security", str(error.detail), **{"WWW-Authenticate": "Bearer"})
    if isinstance(error, Forbidden):
        return _outcome(403, "forbidden", str(error))
    if database_away(error):
        log.warning("FHIR call while the database is away", error=type(error).__name__)
        return _outcome(503, "transient", "the service is briefly unavailable: try again", **{"Retry-After": "5"})
    return None


FhirRoute = failures_answered_by(lambda _, error: _answered(error))  # known failures: OperationOutcomes
REFUSAL_CODES = {413: "too-costly", 422: "invalid", 400: "invalid"}


def refusal(status: int, _: str, detail: str) -> Response:
    """What the input guard refuses before any route runs (a control character in the query, a
    body too large), as an OperationOutcome: the platform reads FHIR (services/common/http.py)."""
    return _outcome(status, REFUSAL_CODES.get(status, "invalid"), detail)


async def _json_body(request: Request) -> Any:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in (FHIR_JSON, "application/json"):
        raise FhirInputError("Content-Type", f"Content-Type: send {FHIR_JSON}")
    try:
        return json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise FhirInputError("body", "the body is not JSON") from None


BookingsDep = Annotated[PlatformBookings, Depends(provided(PlatformBookings))]
router = APIRouter(prefix="/fhir", include_in_schema=False, route_class=FhirRoute)


def _base(settings: Settings) -> str:
    return f"{settings.base_url}/fhir"


@router.get("/metadata", dependencies=[public("the capability statement, public as FHIR servers do")])
async def metadata(settings: SettingsDep, bookings: BookingsDep) -> Response:
    """What this server supports (public, as FHIR servers do)."""
    return fhir_response(resources.capability_statement(_base(settings), bookings.clock()))


@router.get("/Slot", dependencies=[allow(Role.PLATFORM)])
async def search_slots(request: Request, settings: SettingsDep, bookings: BookingsDep) -> Response:
    search = parse_slot_search(request.query_params.multi_items())
    found = await bookings.free_slots(search)
    return fhir_response(resources.slot_bundle(_base(settings), found, search.includes))


@router.post("/Appointment", dependencies=[allow(Role.PLATFORM)])
async def book(request: Request, settings: SettingsDep, bookings: BookingsDep) -> Response:
    """201 with Location for a new booking; the same identifier again: 200, the same appointment."""
    booked, created = await bookings.book(parse_booking(await _json_body(request)))
    location = f"{_base(settings)}/Appointment/{booked.appointment_id}"
    return fhir_response(resources.appointment(booked), 201 if created else 200, {"Location": location})


@router.get("/Appointment/{appointment_id}", dependencies=[allow(Role.PLATFORM)])
async def read(appointment_id: str, bookings: BookingsDep) -> Response:
    if len(appointment_id) > 64:
        raise NotFound(f"no appointment {appointment_id[:64]}")
    return fhir_response(resources.appointment(await bookings.get(appointment_id)))


@router.put("/Appointment", dependencies=[allow(Role.PLATFORM)])
async def update(request: Request, bookings: BookingsDep) -> Response:
    """Conditional update on the platform's identifier: cancelled, fulfilled or noshow."""
    parameters = request.query_params.multi_items()
    if [name for name, _ in parameters] != ["identifier"]:
        raise FhirInputError("identifier", "a conditional update takes one parameter: identifier=system|value")
    identifier = parse_identifier(parameters[0][1])
    status = parse_status_change(await _json_body(request), identifier)
    return fhir_response(resources.appointment(await bookings.set_status(identifier, status)))
