"""The operations service's tables (schema `ops`): the read model the topics feed (each row holds
the facts its events carried, see read_model.py). Declared as the
migrations made them; tests/integration/test_tables.py checks they agree."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Column, DateTime, false
from sqlmodel import Field, SQLModel

from services.common.tables import json_column, timestamp


def _indexed_timestamp() -> datetime | None:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), index=True))  # type: ignore[no-any-return]


class RequestRow(SQLModel, table=True):
    """What the topics said of a request: received, searched, waiting, confirmed, unresolved,
    cancelled (no patient identity: the commune only)."""

    __tablename__ = "ops_request"
    request_id: str = Field(primary_key=True)
    received_at: datetime | None = _indexed_timestamp()
    commune_insee: str | None = None
    patient_cpts: str | None = None
    deadline: datetime | None = timestamp(nullable=True)
    confirmed_at: datetime | None = timestamp(nullable=True)
    appointment_start: datetime | None = timestamp(nullable=True)
    appointment_rpps: str | None = None
    appointment_cpts: str | None = None
    appointment_commune: str | None = None
    kind: str | None = None
    slot_id: str | None = None
    unresolved_at: datetime | None = timestamp(nullable=True)
    reason: str | None = None
    cancelled_at: datetime | None = timestamp(nullable=True)
    waiting_reason: str | None = None
    waiting_since: datetime | None = timestamp(nullable=True)
    channel: str | None = None  # "platform" for a booking by the national platform
    honoured: bool | None = None


class OfferRow(SQLModel, table=True):
    __tablename__ = "ops_offer"
    offer_id: str = Field(primary_key=True)
    request_id: str
    rpps: str | None = None
    cpts_id: str | None = None
    proposed_at: datetime | None = _indexed_timestamp()
    answer_by: datetime | None = timestamp(nullable=True)
    accepted_at: datetime | None = timestamp(nullable=True)
    refused_at: datetime | None = timestamp(nullable=True)
    refusal_reason: str | None = None
    expired_at: datetime | None = timestamp(nullable=True)
    withdrawn_at: datetime | None = timestamp(nullable=True)


class ProfessionalVersionRow(SQLModel, table=True):
    """A professional as announced at one time (participation is counted as it was then)."""

    __tablename__ = "ops_professional_version"
    rpps: str = Field(primary_key=True)
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), primary_key=True))
    profession: str
    cpts_id: str | None = None
    sas_participation: str
    active: bool
    name: str | None = None
    paused_until: datetime | None = timestamp(nullable=True)


class SlotRow(SQLModel, table=True):
    __tablename__ = "ops_slot"
    slot_id: str = Field(primary_key=True)
    rpps: str
    start: datetime | None = _indexed_timestamp()
    end: datetime | None = timestamp(nullable=True)
    state: str | None = None
    changed_at: datetime | None = timestamp(nullable=True)
    booked: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=false()))


class TerritoryRow(SQLModel, table=True):
    __tablename__ = "ops_territory"
    cpts_id: str = Field(primary_key=True)
    name: str
    communes: list[str] = json_column(nullable=False)
    changed_at: datetime = timestamp()
