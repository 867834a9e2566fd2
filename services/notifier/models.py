"""The notifier's tables (schema `notifier`): offers as the professional sees them, messages
sent to professionals, and the audit trail of who saw and decided what."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Column, Identity, Index
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from services.common.tables import timestamp


class OfferStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"  # by the professional; the matcher then books
    CONFIRMED = "confirmed"  # the matcher booked it
    REFUSED = "refused"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"


class Offer(SQLModel, table=True):
    __tablename__ = "offer"
    __table_args__ = (Index("offer_pending_expiry", "expires_at", postgresql_where="status = 'pending'"),)
    offer_id: str = Field(primary_key=True)
    request_id: str = Field(index=True)
    rpps: str
    professional_name: str
    profession: str
    email: str | None = None
    phone: str | None = None
    site: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    kind: str
    mode: str
    start: datetime = timestamp()
    window_end: datetime | None = timestamp(nullable=True)
    deadline: datetime = timestamp()
    motive: str
    patient_age: int | None = None
    patient_commune_insee: str | None = None
    distance_km: float
    expires_at: datetime = timestamp()
    status: str = OfferStatus.PENDING
    token_hash: str = Field(unique=True)
    chosen_start: datetime | None = timestamp(nullable=True)
    decided_at: datetime | None = timestamp(nullable=True)
    decision_reason: str | None = None
    created_at: datetime = timestamp()


class NotificationStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class Notification(SQLModel, table=True):
    """A message to a professional, sent by the dispatcher after the offer is committed."""

    __tablename__ = "notification"
    __table_args__ = (Index("notification_pending", "id", postgresql_where="status = 'pending'"),)
    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    offer_id: str = Field(index=True)
    purpose: str  # offer | withdrawn
    channel: str  # email
    recipient: str
    status: str = NotificationStatus.PENDING
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: datetime = timestamp()
    created_at: datetime = timestamp()
    sent_at: datetime | None = timestamp(nullable=True)


class AuditEntry(SQLModel, table=True):
    """Append-only: who viewed, accepted or refused which offer, and when."""

    __tablename__ = "audit_entry"
    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    at: datetime = timestamp()
    offer_id: str = Field(index=True)
    request_id: str
    actor: str  # the professional's RPPS, or "system"
    action: str  # viewed | accepted | refused | expired | withdrawn | notified
    detail: str | None = None
