"""The matcher's tables (schema `matcher`): the directory and the state of each search."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKeyConstraint, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from services.common.tables import json_column, revision_column, text_column, timestamp


class TerritoryRow(SQLModel, table=True):
    """A CPTS and the communes it covers."""

    __tablename__ = "territory"
    cpts_id: str = Field(primary_key=True)
    name: str
    communes: list[str] = json_column(nullable=False)
    radius_km: float = 30.0
    offer_timeout_minutes: float = 15.0  # time a professional has to answer an offer
    parallel_offers: int = 1  # professionals asked at once; the first to accept takes the patient
    finess: str | None = None  # the CPTS's FINESS number (its national identifier for the SAS platform)
    updated_at: datetime = timestamp()
    revision: int | None = revision_column()  # set by the database on every write


class ProfessionalRow(SQLModel, table=True):
    __tablename__ = "professional"
    rpps: str = Field(primary_key=True)
    name: str
    profession: str
    cpts_id: str | None = None
    sas_participation: str = "none"
    accepts_overflow: bool = False
    overflow_daily_cap: int = 0
    email: str | None = None
    phone: str | None = None
    teleconsultation: bool = False  # takes overflow patients by teleconsultation too
    channels: list[dict[str, str]] | None = json_column()  # [{"type", "destination"}], in order
    active: bool = True
    # set by the professional on their own page (services/matcher/own_space.py)
    paused_until: datetime | None = timestamp(nullable=True)  # no offers before then (holidays)
    no_overflow_on: date | None = None  # a Paris day without extra patients ("pas aujourd'hui")
    links_valid_from: datetime | None = timestamp(nullable=True)  # links issued before: revoked
    link_sent_at: datetime | None = timestamp(nullable=True)  # the last "send me my link" e-mail
    updated_at: datetime = timestamp()
    revision: int | None = revision_column()


class SiteRow(SQLModel, table=True):
    """A practice site of a professional; its own weekly hours, or the reference hours."""

    __tablename__ = "site"
    rpps: str = Field(primary_key=True, foreign_key="professional.rpps")
    site_id: str = Field(primary_key=True)
    name: str
    commune_insee: str | None = None
    department: str | None = None
    lat: float
    lon: float
    opening_hours: dict[str, Any] | None = json_column()
    closures: list[dict[str, str]] | None = json_column()  # [{"start", "end", "reason"}], RFC 3339
    address: dict[str, str] | None = json_column()  # {"line", "postal_code", "city"}
    active: bool = True
    revision: int | None = revision_column()


class SlotState(StrEnum):
    FREE = "free"
    HELD = "held"  # offered to a professional, waiting for the answer
    BOOKED = "booked"
    WITHDRAWN = "withdrawn"


class Slot(SQLModel, table=True):
    """An unscheduled-care slot published by a professional."""

    __tablename__ = "slot"
    __table_args__ = (
        ForeignKeyConstraint(["rpps", "site_id"], ["site.rpps", "site.site_id"]),
        Index("slot_free_by_start", "start", postgresql_where="state = 'free'"),
    )
    slot_id: str = Field(primary_key=True)
    rpps: str
    site_id: str
    start: datetime = timestamp()
    end: datetime = timestamp()
    mode: str
    state: str = SlotState.FREE
    request_id: str | None = None
    offer_id: str | None = None
    updated_at: datetime = timestamp()
    revision: int | None = revision_column()


class AvailabilityTemplate(SQLModel, table=True):
    """A site's weekly availability, kept so that the weeks ahead are filled again every hour
    (rules as `domain.availability.raw_of` writes them)."""

    __tablename__ = "availability_template"
    rpps: str = Field(primary_key=True)
    site_id: str = Field(primary_key=True)
    rules: list[dict[str, Any]] = json_column(nullable=False)
    weeks: int
    updated_at: datetime = timestamp()


class PlatformAppointment(SQLModel, table=True):
    """A slot booked by the national SAS platform over FHIR (POST /fhir/Appointment).

    The slot itself is `booked` with `request_id` = `platform:<appointment_id>` and no offer."""

    __tablename__ = "platform_appointment"
    __table_args__ = (
        UniqueConstraint("identifier_system", "identifier_value", name="platform_appointment_identifier"),
    )
    appointment_id: str = Field(primary_key=True)
    identifier_system: str  # the platform's own id, used by its conditional updates
    identifier_value: str
    slot_id: str
    rpps: str
    start: datetime = timestamp()
    end: datetime = timestamp()
    status: str  # booked | cancelled | fulfilled | noshow
    operator: dict[str, str] | None = json_column()  # the regulator who booked: {"system", "value"}
    created_at: datetime = timestamp()
    updated_at: datetime = timestamp()


class SearchStatus(StrEnum):
    SEARCHING = "searching"
    WAITING = "waiting"  # nobody can be asked now; someone could still be in time (still "searching" outside)
    OFFERED = "offered"
    CONFIRMED = "confirmed"
    UNRESOLVED = "unresolved"
    CANCELLED = "cancelled"


class SearchRecord(SQLModel, table=True):
    """The matcher's copy of a request (no patient identity) and where its search stands."""

    __tablename__ = "search"
    request_id: str = Field(primary_key=True)
    received_at: datetime = timestamp()
    deadline: datetime = timestamp()
    urgency: str
    motive: str
    commune_insee: str | None = None
    lat: float
    lon: float
    age: int | None = None  # exact age, sex, red flags, treating doctor: until the patient's data is erased
    age_band: str | None = text_column()  # kept (services/common/patient.py)
    sex: str | None = None
    red_flags: list[str] | None = json_column()
    treating_rpps: str | None = None
    patient_erased_at: datetime | None = timestamp(nullable=True)  # then lat/lon are the commune's centre
    teleconsultation_ok: bool = False
    status: str
    attempts: int = 0
    wait_reason: str | None = None
    look_again_at: datetime | None = timestamp(nullable=True)
    waited: bool = False  # waited for someone at least once
    updated_at: datetime = timestamp()


class OfferState(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REFUSED = "refused"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"


class MatchOffer(SQLModel, table=True):
    """One candidate asked for one request, and why they were chosen."""

    __tablename__ = "match_offer"
    offer_id: str = Field(primary_key=True)
    request_id: str = Field(index=True)
    rpps: str = Field(index=True)
    site_id: str
    slot_id: str | None = None
    kind: str
    mode: str
    start: datetime = timestamp()
    window_end: datetime | None = timestamp(nullable=True)
    status: str = OfferState.PENDING
    explanation: list[dict[str, Any]] | None = json_column()
    answer_by: datetime = timestamp()  # it lapses then (the territory's time limit, never past closing time)
    created_at: datetime = timestamp()
    decided_at: datetime | None = timestamp(nullable=True)
    revision: int | None = revision_column()
