"""The regulator API (contract v1): push a request, follow it, cancel it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import structlog
from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, Field, HttpUrl, model_validator

from schemas.events import PatientDetails
from services.common import geo
from services.common.access.roles import Client, Role
from services.common.audit import CLIENT_IP, Actor
from services.common.deps import CallerDep, InternalKey, SettingsDep, allow, checked_destination, provided
from services.common.http import Problem, ProblemMap, invalid_field, problems
from services.common.inputs import IDENT, INSEE, PHONE, Ident, InputModel, Instant
from services.common.motives import catalogue
from services.intake import views
from services.intake.domain import CannotCancel, ReceivedAtOutOfRange, RequestConflict, RequestNotFound
from services.intake.models import OrientationRequest, RequestHistory
from services.intake.service import IntakeService, NewRequest


class ContactIn(InputModel):
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=40, pattern=PHONE)


class PatientIn(InputModel):
    model_config = ConfigDict(
        json_schema_extra={"anyOf": [{"required": ["commune_insee"]}, {"required": ["lat", "lon"]}]}
    )
    commune_insee: str | None = Field(default=None, pattern=INSEE)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    age: int | None = Field(default=None, ge=0, le=120)
    sex: Literal["F", "M"] | None = None
    treating_rpps: str | None = Field(
        default=None, pattern=r"^[0-9]{9,11}$", description="the patient's own doctor, told of the appointment"
    )
    red_flags: list[str] = Field(
        default_factory=list, max_length=50, description="codes from GET /v1/motives red_flags"
    )
    teleconsultation_ok: bool = False
    contact: ContactIn | None = None

    @model_validator(mode="after")
    def located(self) -> PatientIn:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon go together")
        if self.commune_insee is None and self.lat is None:
            raise ValueError("give commune_insee, or lat and lon")
        return self


class RequestIn(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "request_id": "SAS79-2026-000123",
                "received_at": "2026-11-24T10:12:00+01:00",
                "urgency": "48h",
                "motive": "general",
                "patient": {
                    "commune_insee": "79191",
                    "age": 67,
                    "teleconsultation_ok": False,
                    "contact": {"name": "…", "phone": "…"},
                },
            }
        }
    )
    request_id: str = Field(pattern=IDENT, description="the regulator's own id: idempotency key")
    received_at: Instant
    urgency: Literal["48h", "24h"] = "48h"
    motive: str = Field(default="general", max_length=100)
    patient: PatientIn
    callback_url: HttpUrl | None = Field(
        default=None,
        description="http(s), at most 2083 characters: status changes are POSTed there, signed and retried",
    )
    correlation_id: str | None = Field(default=None, max_length=200, description="echoed on every callback")


def to_new_request(
    body: RequestIn, caller: Client | None = None, organisation: str | None = None, posted_by: Actor | None = None
) -> NewRequest:
    """Check what the schema cannot (known motive, known commune) and locate the patient; the
    request is the caller's organisation's (a key's client), or `organisation`'s (the console)."""
    if body.motive not in catalogue().motives:
        raise invalid_field("motive", f"unknown motive {body.motive!r}; see GET /v1/motives")
    unknown_flags = sorted(set(body.patient.red_flags) - set(catalogue().red_flags))
    if unknown_flags:
        raise invalid_field("patient.red_flags", f"unknown red flags {unknown_flags}; see GET /v1/motives")
    patient = body.patient
    commune = geo.commune(patient.commune_insee or "")
    if patient.lat is not None and patient.lon is not None:
        commune = commune or geo.nearest_commune(patient.lat, patient.lon)
        if commune is None:
            raise invalid_field("patient", "no French commune within 30 km of these coordinates")
        lat, lon = patient.lat, patient.lon
    elif commune is None:
        raise invalid_field("patient.commune_insee", f"unknown INSEE commune code {patient.commune_insee!r}")
    else:
        lat, lon = commune.lat, commune.lon  # the commune's centre
    contact = patient.contact or ContactIn()
    return NewRequest(
        request_id=body.request_id,
        received_at=body.received_at,
        urgency=body.urgency,
        motive=body.motive,
        commune_insee=commune.current,
        details=PatientDetails(
            lat=lat,
            lon=lon,
            age=patient.age,
            sex=patient.sex,
            red_flags=sorted(set(patient.red_flags)),
            treating_rpps=patient.treating_rpps,
        ),
        callback_url=str(body.callback_url) if body.callback_url else None,
        correlation_id=body.correlation_id,
        teleconsultation_ok=patient.teleconsultation_ok,
        contact_name=contact.name,
        contact_phone=contact.phone,
        body=body.model_dump(mode="json"),
        organisation=caller.organisation if caller else organisation or "legacy",
        client_id=caller.client_id if caller else None,
        posted_by=posted_by or (Actor("client", caller.client_id) if caller else None),
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def request_view(request: OrientationRequest, history: list[RequestHistory]) -> dict[str, Any]:
    view: dict[str, Any] = {
        "request_id": request.external_id,  # the regulator's own id
        "status": request.status,
        "received_at": _iso(request.received_at),
        "urgency": request.urgency,
        "motive": request.motive,
        "deadline": _iso(request.deadline),
        "updated_at": _iso(request.updated_at),
        "history": [
            {"status": h.status, "at": _iso(h.at), **({"reason": h.reason} if h.reason else {})} for h in history
        ],
    }
    if request.appointment:
        view["appointment"] = request.appointment
    if request.reason:
        view["reason"], view["detail"] = request.reason, request.detail
    if request.alternatives:
        view["alternatives"] = request.alternatives
    if request.explanation:
        view["ranking"] = request.explanation
    if request.waiting and request.status == "searching":
        view["waiting"] = request.waiting  # why nobody is asked yet, and when it is looked at again
    if request.patient_erased_at:
        view["patient_erased_at"] = _iso(request.patient_erased_at)
    return view


IntakeDep = Annotated[IntakeService, Depends(provided(IntakeService))]
router = APIRouter(tags=["regulator"], dependencies=[allow(Role.REGULATOR)])
internal = APIRouter(include_in_schema=False, dependencies=[InternalKey])

# the intake's domain exceptions as problems (registered with the runtime: services/common/http.py)
PROBLEMS: ProblemMap = {
    RequestNotFound: lambda e: Problem(404, "Not Found", f"no request {e}"),
    RequestConflict: lambda e: Problem(409, "Conflict", f"request {e} was already received with a different body"),
    CannotCancel: lambda e: Problem(409, "Conflict", str(e)),
    ReceivedAtOutOfRange: lambda e: invalid_field("received_at", str(e)),
}


@router.post("/v1/requests", status_code=202, responses=problems(409), response_model=views.Accepted)
async def submit(body: RequestIn, service: IntakeDep, caller: CallerDep, settings: SettingsDep) -> JSONResponse:
    """A request of the caller's organisation (its own id: another organisation's same id is another request)."""
    structlog.contextvars.bind_contextvars(request_id=body.request_id)
    if body.callback_url:
        await checked_destination(settings, "callback_url", str(body.callback_url))
    request, _ = await service.submit(to_new_request(body, caller))
    return JSONResponse(
        {"request_id": request.external_id, "status": "received", "status_url": f"/v1/requests/{request.external_id}"},
        status_code=202,
    )


def owner_scope(caller: Client) -> str | None:
    """The organisation whose requests the caller sees: its own; an admin (None) every one."""
    return None if caller.is_admin else caller.organisation


@router.get(
    "/v1/requests/{request_id}",
    responses=problems(404),
    response_model=views.RequestView,
    response_model_exclude_unset=True,
)
async def status(request_id: Ident, service: IntakeDep, caller: CallerDep) -> dict[str, Any]:
    """Another organisation's request is answered 404, as if it did not exist."""
    structlog.contextvars.bind_contextvars(request_id=request_id)
    return request_view(*await service.get(request_id, owner_scope(caller), actor_of(caller)))


@router.post(
    "/v1/requests/{request_id}/cancel",
    responses=problems(404, 409),
    response_model=views.RequestView,
    response_model_exclude_unset=True,
)
async def cancel(request_id: Ident, service: IntakeDep, caller: CallerDep) -> dict[str, Any]:
    structlog.contextvars.bind_contextvars(request_id=request_id)
    await service.cancel(request_id, owner_scope(caller), actor_of(caller))
    return request_view(*await service.get(request_id, owner_scope(caller)))


@router.delete(
    "/v1/requests/{request_id}/patient",
    responses=problems(404),
    response_model=views.RequestView,
    response_model_exclude_unset=True,
)
async def erase_patient(request_id: Ident, service: IntakeDep, caller: CallerDep) -> dict[str, Any]:
    """Erase the patient's contact and details from every service and make the copies in the
    broker's topics unreadable; the request keeps its status, times, motive, urgency, commune
    and age band. Idempotent."""
    structlog.contextvars.bind_contextvars(request_id=request_id)
    await service.erase(request_id, owner_scope(caller), actor_of(caller))
    return request_view(*await service.get(request_id, owner_scope(caller)))


def actor_of(caller: Client) -> Actor:
    return Actor("client", caller.client_id)


@router.get("/v1/audit", responses=problems(404), response_model=views.AuditTrail, response_model_exclude_unset=True)
async def audit_trail(
    service: IntakeDep,
    caller: CallerDep,
    request_id: Annotated[str | None, Query(pattern=IDENT)] = None,
    action: Annotated[str | None, Query(pattern=r"^[a-z]+\.[a-z]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> dict[str, Any]:
    """Who did what to a request, oldest first: the owning organisation for its own requests
    (`request_id` needed), an admin for any filter. Another organisation's request: 404."""
    if request_id is None and not caller.is_admin:
        raise invalid_field("request_id", "a request_id is needed (an admin may leave it out)")
    return {"items": await service.audit_of(request_id, owner_scope(caller), action, limit)}


@internal.get("/internal/v1/requests/{request_id}/contact")
async def contact(
    request_id: Ident,
    service: IntakeDep,
    professional: Annotated[str, Query(pattern=r"^[0-9]{9,11}$")],
    shown_from: Annotated[str | None, Header(alias="X-Shown-From", max_length=64)] = None,
) -> dict[str, Any]:
    """The contact for the professional's page (the notifier says whose page, and from where)."""
    if shown_from:
        CLIENT_IP.set(shown_from)
    found = await service.contact(request_id, Actor("professional", professional))
    if found is None:
        raise Problem(404, "Not Found", f"no contact for request {request_id}")
    return {"name": found.name, "phone": found.phone}
