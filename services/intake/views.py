"""What the regulator API answers, as models: the OpenAPI document then describes every body, and
the API fuzzer checks each answer against it (tests/e2e/test_api_fuzz.py). Keys the request does
not have yet are left out of the answer (the routes answer with `response_model_exclude_unset`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.events import Alternative, CandidateExplanation, ProfessionalRef, SiteRef

Status = Literal["received", "searching", "offered", "confirmed", "unresolved", "cancelled"]


class View(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Accepted(View):
    """A request taken: it is followed at `status_url`."""

    request_id: str
    status: Literal["received"]
    status_url: str


class HistoryItem(View):
    status: Status
    at: str
    reason: str | None = None


class Appointment(View):
    professional: ProfessionalRef
    site: SiteRef
    start: str
    kind: Literal["slot", "overflow"]
    mode: Literal["in_person", "teleconsultation"]


class Waiting(View):
    """Why nobody is asked yet, since when, and when the request is looked at again."""

    reason: str
    detail: str
    since: str
    look_again_at: str


class RequestView(View):
    """A request as its organisation sees it (its own id)."""

    request_id: str
    status: Status
    received_at: str | None
    urgency: str
    motive: str
    deadline: str | None
    updated_at: str | None
    history: list[HistoryItem]
    appointment: Appointment | None = Field(default=None, description="when confirmed")
    reason: str | None = Field(default=None, description="when unresolved or cancelled: a code")
    detail: str | None = Field(default=None, description="the reason in words")
    alternatives: list[Alternative] | None = Field(default=None, description="when unresolved: what to try")
    ranking: list[CandidateExplanation] | None = Field(default=None, description="why the candidates ranked so")
    waiting: Waiting | None = Field(default=None, description="while searching with nobody to ask yet")
    patient_erased_at: str | None = Field(default=None, description="once the patient's data was erased")


class Actor(View):
    kind: Literal["client", "account", "professional", "system"]
    id: str


class AuditItem(View):
    at: str
    actor: Actor
    action: str
    request_id: str | None
    ip: str | None
    detail: str | None = None


class AuditTrail(View):
    items: list[AuditItem]
