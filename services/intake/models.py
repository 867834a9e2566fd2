"""The intake's tables (schema `intake`). The patient's contact is kept apart from the request."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, ColumnElement, DateTime, Identity, cast
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel, col

from services.common.tables import json_column, text_column, timestamp


class OrientationRequest(SQLModel, table=True):
    """A regulator's request, as received and as it progresses (no patient identity here)."""

    __tablename__ = "orientation_request"
    request_id: str = Field(primary_key=True)  # the id every service knows (see `internal_id`)
    organisation: str = text_column(nullable=False)  # the regulator's organisation: no other sees the request
    external_id: str = text_column(nullable=False)  # the regulator's own id, unique within its organisation
    client_id: str | None = text_column()  # the client that posted it: its callbacks are signed for it
    fingerprint: str
    received_at: datetime = timestamp()
    urgency: str
    motive: str
    commune_insee: str | None = None  # kept after erasure, like the age band
    age_band: str | None = (
        text_column()
    )  # services/common/patient.py; the exact age and coordinates go to the matcher only
    teleconsultation_ok: bool = False
    status: str
    deadline: datetime | None = timestamp(nullable=True)
    appointment: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))
    explanation: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSONB))
    reason: str | None = None
    detail: str | None = None
    alternatives: list[dict[str, Any]] | None = json_column()
    waiting: dict[str, Any] | None = json_column()  # while searching: why nobody is asked yet
    # while offered: the latest offer's {"name", "rpps", "answer_by"} (the console shows it)
    asked: dict[str, Any] | None = json_column()
    callback_url: str | None = None  # where the regulator wants status changes pushed
    correlation_id: str | None = None  # the regulator's, echoed on every message
    created_at: datetime = timestamp()
    updated_at: datetime = timestamp()
    contact_erased_at: datetime | None = timestamp(nullable=True)  # by retention, once no page shows it
    patient_erased_at: datetime | None = timestamp(nullable=True)  # every service's copy too (PatientErased)

    @staticmethod
    def appointment_start() -> ColumnElement[datetime]:
        """The appointment's time, as SQL (it is kept in the `appointment` JSON)."""
        return cast(col(OrientationRequest.appointment)["start"].astext, DateTime(timezone=True))


class PatientContact(SQLModel, table=True):
    """Who to call: shown to a professional only after they accepted (health data, GDPR art. 9)."""

    __tablename__ = "patient_contact"
    request_id: str = Field(primary_key=True, foreign_key="orientation_request.request_id")
    sealed: str | None = text_column()  # {"name", "phone"} encrypted under DATA_KEYS (services/common/sealing.py)
    name: str | None = None  # rows written before encryption, until the retention sweeper encrypts them
    phone: str | None = None


class CallbackDelivery(SQLModel, table=True):
    """A status change waiting to be pushed to the regulator (retried until it is taken)."""

    __tablename__ = "callback_delivery"
    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    event_id: str = Field(unique=True)
    request_id: str = Field(index=True)
    url: str
    payload: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    status: str = "pending"  # pending | delivered | failed
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: datetime = timestamp()
    created_at: datetime = timestamp()
    delivered_at: datetime | None = timestamp(nullable=True)


class RequestHistory(SQLModel, table=True):
    """Every status a request went through, for the regulator and the audit trail."""

    __tablename__ = "request_history"
    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    request_id: str = Field(index=True, foreign_key="orientation_request.request_id")
    status: str
    at: datetime = timestamp()
    reason: str | None = None
