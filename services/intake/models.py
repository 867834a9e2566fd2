"""The intake's tables (schema `intake`). The patient's contact is kept apart from the request."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Identity
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from services.common.tables import json_column, timestamp


class OrientationRequest(SQLModel, table=True):
    """A regulator's request, as received and as it progresses (no patient identity here)."""

    __tablename__ = "orientation_request"
    request_id: str = Field(primary_key=True)  # the id every service knows (see `internal_id`)
    organisation: str  # the regulator's organisation: no other sees the request
    external_id: str  # the regulator's own id, unique within its organisation
    client_id: str | None = None  # the client that posted it: its callbacks are signed for it
    fingerprint: str
    received_at: datetime = timestamp()
    urgency: str
    motive: str
    commune_insee: str | None = None
    lat: float
    lon: float
    age: int | None = None
    teleconsultation_ok: bool = False
    status: str
    deadline: datetime | None = timestamp(nullable=True)
    appointment: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))
    explanation: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSONB))
    reason: str | None = None
    detail: str | None = None
    alternatives: list[dict[str, Any]] | None = json_column()
    waiting: dict[str, Any] | None = json_column()  # while searching: why nobody is asked yet
    callback_url: str | None = None  # where the regulator wants status changes pushed
    correlation_id: str | None = None  # the regulator's, echoed on every message
    created_at: datetime = timestamp()
    updated_at: datetime = timestamp()


class PatientContact(SQLModel, table=True):
    """Who to call: shown to a professional only after they accepted (health data, GDPR art. 9)."""

    __tablename__ = "patient_contact"
    request_id: str = Field(primary_key=True, foreign_key="orientation_request.request_id")
    name: str | None = None
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
