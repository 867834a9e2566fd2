"""What GET /v1/indicators answers, as a model: the OpenAPI document describes every figure and
the API fuzzer checks the answers against it. The arithmetic is in indicators.py."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class View(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ByChannel(View):
    cascade: int
    platform: int


class Honoured(View):
    honoured: int
    not_honoured: int
    not_reported: int


class Minutes(View):
    median: float | None
    p90: float | None


class Offers(View):
    accepted: int
    refused: dict[str, int] = Field(description="by reason")
    expired: int
    withdrawn: int


class BookedOfPublished(View):
    booked: int
    published: int


class SlotUtilisation(View):
    booked: int
    published: int
    share: float | None
    by_professional_and_week: dict[str, dict[str, BookedOfPublished]] = Field(description="RPPS → ISO week → slots")


class VisibleHours(View):
    hours: float
    threshold_met: bool


class Remuneration(View):
    """Avenant 9 helpers for one GP of the CPTS."""

    declared_participation: bool
    regulated_consultations_by_week: dict[str, int]
    visible_slot_hours_by_week: dict[str, VisibleHours]
    overflow_patients_by_quarter: dict[str, int]


class Indicators(View):
    """National indicators 1 and 2 and the coordinators' figures for one CPTS and period."""

    cpts_id: str
    first: str = Field(alias="from")
    last: str = Field(alias="to")
    definition_version: str
    doctors_participating_in_sas: int
    sas_requests_with_appointment: int
    requests_received: int
    requests_confirmed: int
    requests_unresolved: dict[str, int] = Field(description="by reason")
    requests_cancelled: int
    sas_requests_with_appointment_by_channel: ByChannel
    appointments_honoured: Honoured
    minutes_to_appointment: Minutes
    share_within_deadline: float | None
    share_acts_friday_saturday_or_holiday_eve: float | None
    offers: Offers
    slot_utilisation: SlotUtilisation
    from_outside_territory: int
    remuneration: dict[str, Remuneration] = Field(description="by RPPS")
    definitions: dict[str, str]
