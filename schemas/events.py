"""Event contracts shared by the services, version 1.

Every message on Kafka is a CloudEvents 1.0 envelope in structured JSON mode whose `subject`
is the request id (also the Kafka key, so that one request's events keep their order).
The `data` models below carry no patient identity: no name, no phone. The patient's contact
stays in the intake's database.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

TYPE_PREFIX = "fr.sas.orientation."


class EventData(BaseModel):
    """Base of every event payload; `EVENT_TYPE` is the CloudEvents `type`, `subject()` its subject
    and the Kafka key (so that the events of one subject keep their order)."""

    # Consumers ignore fields they do not know: adding a field is not a breaking change.
    model_config = ConfigDict(extra="ignore", frozen=True)
    EVENT_TYPE: ClassVar[str] = ""

    @classmethod
    def type_name(cls) -> str:
        return cls.EVENT_TYPE

    def subject(self) -> str:
        raise NotImplementedError


class RequestEventData(EventData):
    """An event about one orientation request: its subject is the request id."""

    request_id: str

    def subject(self) -> str:
        return self.request_id


def _event(name: str) -> str:
    return f"{TYPE_PREFIX}{name}.v1"


# --- small value objects -------------------------------------------------------------------


class ProfessionalRef(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    rpps: str
    name: str
    profession: str


class Address(BaseModel):
    """A practice's postal address."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    line: str = ""
    postal_code: str = ""
    city: str = ""


class SiteRef(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    site_id: str
    name: str
    commune_insee: str | None = None
    lat: float
    lon: float
    # the regulator tells the patient where to go (named apart from any patient address, which no event carries)
    practice_address: Address | None = None


class CandidateExplanation(BaseModel):
    """Why a candidate ranked where it did (stored with the decision)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    rpps: str
    kind: Literal["slot", "overflow"]
    slot_id: str | None = None
    start: AwareDatetime
    distance_km: float
    score: float
    terms: dict[str, float]


class Channel(BaseModel):
    """One way to reach a professional, in the order the directory lists them."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    type: Literal["email", "sms", "webhook"]
    destination: str = Field(description="e-mail address, phone number, or the webhook's URL")
    secret_version: int | None = Field(default=None, description="webhook: the version of its signing secret")
    previous_until: AwareDatetime | None = Field(
        default=None, description="webhook: the secret's previous version also signs until then (a rotation)"
    )


class Period(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    start: AwareDatetime
    end: AwareDatetime


Kind = Literal["slot", "overflow"]
Mode = Literal["in_person", "teleconsultation"]
Urgency = Literal["48h", "24h"]
WithdrawalCause = Literal["cancelled", "taken", "directory", "handled"]


# --- intake → matcher (topic `requests`) ---------------------------------------------------


class PatientDetails(BaseModel):
    """What the matcher needs to know of the patient beyond the commune. Never carried in clear:
    events hold it sealed under the request's own key (`sealed_patient`), which erasure destroys
    (services/common/sealing.py)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    lat: float
    lon: float
    age: int | None = None
    sex: Literal["F", "M"] | None = None
    red_flags: list[str] = Field(default_factory=list, description="codes of GET /v1/motives red_flags")
    treating_rpps: str | None = Field(default=None, description="the patient's own doctor (médecin traitant)")


class RequestReceived(RequestEventData):
    """A regulator pushed a new orientation request. Version 2: the patient's details are sealed
    (version 1 carried them in clear, where no erasure could reach them)."""

    EVENT_TYPE: ClassVar[str] = f"{TYPE_PREFIX}request.received.v2"
    received_at: AwareDatetime
    urgency: Urgency
    motive: str
    commune_insee: str = Field(description="the patient's commune (given, or the nearest to the coordinates)")
    age_band: str | None = Field(default=None, description="see services/common/patient.py: `<2`, `2-17`, `18-29`…")
    teleconsultation_ok: bool = False
    sealed_patient: str | None = Field(
        default=None, description="PatientDetails, sealed under the request's key; unreadable once erased"
    )


class RequestCancelled(RequestEventData):
    """The regulator cancelled the request."""

    EVENT_TYPE: ClassVar[str] = _event("request.cancelled")
    cancelled_at: AwareDatetime


class PatientErased(RequestEventData):
    """The patient's contact and details were erased (asked, or retention): every service drops
    its copies; the request's key is gone already, so its sealed data cannot be opened."""

    EVENT_TYPE: ClassVar[str] = _event("patient.erased")
    erased_at: AwareDatetime


# --- matcher → intake, notifier (topic `matching`) ------------------------------------------


class SearchStarted(RequestEventData):
    """The matcher is looking for a candidate (first time, or after a refusal)."""

    EVENT_TYPE: ClassVar[str] = _event("search.started")
    deadline: AwareDatetime
    attempt: int
    cpts_id: str | None = Field(default=None, description="the CPTS whose territory holds the patient's commune")


class OfferProposed(RequestEventData):
    """A candidate was chosen and (for a slot) held: ask that professional."""

    EVENT_TYPE: ClassVar[str] = _event("offer.proposed")
    offer_id: str
    professional: ProfessionalRef
    professional_cpts_id: str | None = None
    email: str | None = None
    phone: str | None = None
    channels: list[Channel] = Field(default_factory=list, description="how to reach them, in order")
    answer_by: AwareDatetime | None = Field(
        default=None, description="the offer lapses then: the territory's time limit, never past closing time"
    )
    site: SiteRef
    kind: Kind
    mode: Mode
    start: AwareDatetime = Field(description="the slot's start, or the earliest time for overflow")
    choices: list[Period] = Field(
        default_factory=list, description="overflow only: the open periods the professional may choose a time in"
    )
    window_end: AwareDatetime | None = Field(
        default=None, description="overflow only: the latest time the patient may be seen"
    )
    slot_id: str | None = None
    deadline: AwareDatetime
    motive: str
    protocol: str | None = Field(default=None, description="the cooperation protocol the offer falls under")
    patient_age_band: str | None = None
    patient_commune_insee: str | None = None
    distance_km: float
    explanation: list[CandidateExplanation] = Field(default_factory=list)


class OfferWithdrawn(RequestEventData):
    """A pending (or just accepted) offer no longer stands: cancellation, directory change, or
    (parallel offers) another professional accepted first."""

    EVENT_TYPE: ClassVar[str] = _event("offer.withdrawn")
    offer_id: str
    reason: str
    cause: WithdrawalCause | None = Field(
        default=None,
        description="cancelled by the regulator; taken by another professional first; voided by a directory "
        "change; the request was already handled",
    )


class RequestWaiting(RequestEventData):
    """Nobody can be asked now, but someone could still see the patient before the deadline: the
    request waits (still `searching`) and is offered as soon as someone is free or open."""

    EVENT_TYPE: ClassVar[str] = _event("request.waiting")
    reason: Literal["candidates_busy", "not_yet_open", "on_pause"]
    detail: str
    look_again_at: AwareDatetime = Field(description="when it is looked at again at the latest")
    deadline: AwareDatetime


class AppointmentConfirmed(RequestEventData):
    """The professional accepted; the slot is booked (or the overflow counted)."""

    EVENT_TYPE: ClassVar[str] = _event("appointment.confirmed")
    offer_id: str
    professional: ProfessionalRef
    professional_cpts_id: str | None = None
    site: SiteRef
    start: AwareDatetime
    kind: Kind
    mode: Mode
    slot_id: str | None = None
    sealed_treating_doctor: str | None = Field(
        default=None,
        description="TreatingDoctor sealed under the request's key: the patient's own doctor, when in the "
        "directory, told of the appointment",
    )
    motive: str | None = None


class TreatingDoctor(BaseModel):
    """The patient's own doctor ("médecin traitant") and how to reach them: who it is says
    something of the patient, so it travels sealed (AppointmentConfirmed)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    professional: ProfessionalRef
    channels: list[Channel] = Field(default_factory=list)


class Alternative(BaseModel):
    """Something the regulator may try when the rules found nobody."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    kind: Literal["teleconsultation", "outside_radius"]
    detail: str
    rpps: str | None = None
    name: str | None = None
    profession: str | None = None
    start: AwareDatetime | None = None
    distance_km: float | None = None
    cpts_id: str | None = None


class RequestUnresolved(RequestEventData):
    """No professional can be found before the deadline, with the reason."""

    EVENT_TYPE: ClassVar[str] = _event("request.unresolved")
    reason: str
    detail: str
    alternatives: list[Alternative] = Field(default_factory=list)


class OfferInvalidated(RequestEventData):
    """A directory change voided a pending offer (slot withdrawn, hours changed, professional
    gone): the matcher withdraws it and goes on with the next candidate."""

    EVENT_TYPE: ClassVar[str] = _event("offer.invalidated")
    offer_id: str
    reason: str


# --- notifier → matcher (topic `offers`) -----------------------------------------------------


class OfferAccepted(RequestEventData):
    EVENT_TYPE: ClassVar[str] = _event("offer.accepted")
    offer_id: str
    rpps: str
    start: AwareDatetime
    accepted_at: AwareDatetime


class OfferRefused(RequestEventData):
    EVENT_TYPE: ClassVar[str] = _event("offer.refused")
    offer_id: str
    rpps: str
    reason: str | None = None
    refused_at: AwareDatetime


class OfferExpired(RequestEventData):
    EVENT_TYPE: ClassVar[str] = _event("offer.expired")
    offer_id: str
    rpps: str
    expired_at: AwareDatetime


# --- matcher → anyone (topic `matching`): bookings made by the national SAS platform ----------


class PlatformAppointmentBooked(RequestEventData):
    """The national SAS platform booked a published slot over FHIR (POST /fhir/Appointment).

    A booking is a regulated request of its own, received and confirmed at once: its
    `request_id` is `platform:<appointment_id>`; no intake request and no patient contact stand
    behind it (the regulator gives the patient the appointment)."""

    EVENT_TYPE: ClassVar[str] = _event("platform.appointment.booked")
    appointment_id: str
    platform_identifier: str = Field(description="the platform's own id of the appointment, system|value")
    professional: ProfessionalRef
    professional_cpts_id: str | None = None
    email: str | None = None
    channels: list[Channel] = Field(default_factory=list, description="how to reach them, in order")
    site: SiteRef
    slot_id: str
    start: AwareDatetime
    end: AwareDatetime
    mode: Mode
    booked_at: AwareDatetime
    operator: str | None = Field(default=None, description="the regulator who booked, system|value")


class PlatformAppointmentChanged(RequestEventData):
    """The platform set a booking's outcome: cancelled (the slot is free again), fulfilled or noshow."""

    EVENT_TYPE: ClassVar[str] = _event("platform.appointment.changed")
    appointment_id: str
    slot_id: str
    rpps: str
    status: Literal["cancelled", "fulfilled", "noshow"]
    changed_at: AwareDatetime


class ProfessionalLinkRequested(EventData):
    """A professional asked for their personal link by e-mail ("envoyez-moi mon lien"): the
    notifier sends one to this address (the event carries no link: the notifier signs it)."""

    EVENT_TYPE: ClassVar[str] = _event("professional.link_requested")
    rpps: str
    name: str
    email: str
    requested_at: AwareDatetime

    def subject(self) -> str:
        return f"professional:{self.rpps}"


# --- matcher → anyone (topic `directory`): what the indicators count ------------------------


class ProfessionalChanged(EventData):
    """A professional was registered or changed (participation in the SAS, CPTS, activity)."""

    EVENT_TYPE: ClassVar[str] = _event("professional.changed")
    rpps: str
    name: str
    profession: str
    cpts_id: str | None = None
    sas_participation: Literal["individual", "via_cpts", "none"]
    active: bool
    paused_until: AwareDatetime | None = Field(default=None, description="asked for nothing before then")
    changed_at: AwareDatetime

    def subject(self) -> str:
        return f"professional:{self.rpps}"


class TerritoryChanged(EventData):
    """A CPTS's territory was registered or changed: its name and communes (the dashboards draw it)."""

    EVENT_TYPE: ClassVar[str] = _event("territory.changed")
    cpts_id: str
    name: str
    communes: list[str] = Field(description="INSEE codes of the communes it covers")
    changed_at: AwareDatetime

    def subject(self) -> str:
        return f"territory:{self.cpts_id}"


class SlotChanged(EventData):
    """A slot was published, changed or withdrawn (holds and bookings travel as offers)."""

    EVENT_TYPE: ClassVar[str] = _event("slot.changed")
    slot_id: str
    rpps: str
    start: AwareDatetime
    end: AwareDatetime
    mode: Mode
    state: Literal["free", "withdrawn"]
    changed_at: AwareDatetime

    def subject(self) -> str:
        return f"slot:{self.slot_id}"


EVENT_MODELS: tuple[type[EventData], ...] = (
    RequestReceived,
    RequestCancelled,
    PatientErased,
    SearchStarted,
    RequestWaiting,
    OfferProposed,
    OfferWithdrawn,
    AppointmentConfirmed,
    RequestUnresolved,
    OfferInvalidated,
    OfferAccepted,
    OfferRefused,
    OfferExpired,
    ProfessionalChanged,
    SlotChanged,
    TerritoryChanged,
    PlatformAppointmentBooked,
    PlatformAppointmentChanged,
    ProfessionalLinkRequested,
)
EVENT_TYPES: dict[str, type[EventData]] = {m.type_name(): m for m in EVENT_MODELS}


class CloudEvent(BaseModel):
    """The envelope of every message (CloudEvents 1.0, structured JSON mode)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    specversion: Literal["1.0"] = "1.0"
    id: str
    type: str
    source: str
    time: AwareDatetime
    subject: str
    datacontenttype: Literal["application/json"] = "application/json"
    data: dict[str, Any]

    @classmethod
    def wrap(cls, data: EventData, *, source: str, time: datetime) -> CloudEvent:
        return cls(
            id=str(uuid.uuid4()),
            type=data.type_name(),
            source=source,
            time=time,
            subject=data.subject(),
            data=data.model_dump(mode="json"),
        )

    def payload(self) -> EventData:
        """The typed payload; raises UnknownEventType or pydantic.ValidationError."""
        model = EVENT_TYPES.get(self.type)
        if model is None:
            raise UnknownEventType(self.type)
        return model.model_validate(self.data)


class UnknownEventType(ValueError):
    def __init__(self, event_type: str) -> None:
        super().__init__(f"unknown event type {event_type!r}")
        self.event_type = event_type


class DeadLetter(BaseModel):
    """What a consumer could not handle, with why; published on the dead-letter topic."""

    model_config = ConfigDict(extra="forbid")
    consumer: str
    topic: str
    partition: int
    offset: int
    key: str | None
    value: str
    reason: str
    failed_at: AwareDatetime
    attempts: int
