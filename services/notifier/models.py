"""The notifier's tables (schema `notifier`): offers as the professional sees them, messages
sent to professionals, and the audit trail of who saw and decided what."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Column, Identity, Index
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from services.common.tables import json_column, text_column, timestamp


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
    channels: list[dict[str, str]] | None = json_column()  # [{"type", "destination"}], in order
    site: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    kind: str
    mode: str
    start: datetime = timestamp()
    window_end: datetime | None = timestamp(nullable=True)
    choices: list[list[str]] | None = json_column()  # overflow: open periods [start, end], RFC 3339
    deadline: datetime = timestamp()
    motive: str
    protocol: str | None = None
    patient_age_band: str | None = text_column()  # services/common/patient.py: never the exact age
    patient_commune_insee: str | None = None
    distance_km: float
    expires_at: datetime = timestamp()
    status: str = OfferStatus.PENDING
    token_hash: str = Field(unique=True)
    reminded_at: datetime | None = timestamp(nullable=True)
    chosen_start: datetime | None = timestamp(nullable=True)
    decided_at: datetime | None = timestamp(nullable=True)
    decision_reason: str | None = None
    withdrawal_cause: str | None = None  # cancelled | taken | directory | handled (see OfferWithdrawn)
    created_at: datetime = timestamp()


class NotificationStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class Notification(SQLModel, table=True):
    """A message to a professional, handed to the sender once the transaction that wrote it
    committed; retries and next channels by the dispatcher (messages.py)."""

    __tablename__ = "notification"
    __table_args__ = (Index("notification_pending", "id", postgresql_where="status = 'pending'"),)
    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    offer_id: str = Field(index=True)
    purpose: str  # offer | reminder | withdrawn | treating_doctor | platform_booked | platform_cancelled
    channel: str | None = None  # (first version: one e-mail; now see channels)
    recipient: str | None = None
    recipient_name: str | None = None
    channels: list[dict[str, str]] | None = json_column()  # tried in order, each until it works or gives up
    channel_index: int = 0  # the channel being tried
    delivered: list[str] | None = json_column()  # the channel types that took the message
    status: str = NotificationStatus.PENDING
    attempts: int = 0  # on the current channel
    last_error: str | None = None
    next_attempt_at: datetime = timestamp()
    created_at: datetime = timestamp()
    sent_at: datetime | None = timestamp(nullable=True)


class DeliveryAttempt(SQLModel, table=True):
    """Every try on every channel, successful or not."""

    __tablename__ = "delivery_attempt"
    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    notification_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    offer_id: str = Field(index=True)
    channel: str
    at: datetime = timestamp()
    ok: bool
    error: str | None = None


class AuditEntry(SQLModel, table=True):
    """Append-only: who viewed, accepted or refused which offer, and when."""

    __tablename__ = "audit_entry"
    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    at: datetime = timestamp()
    offer_id: str = Field(index=True)
    request_id: str
    actor: str  # the professional's RPPS, "system", or "platform" (the national SAS platform)
    # viewed | accepted | refused | expired | withdrawn | notified;
    # by the platform: booked | cancelled | fulfilled | noshow
    action: str
    detail: str | None = None


class LinkMessage(SQLModel, table=True):
    """An e-mail with a professional's personal link, asked for by e-mail address ("send me my
    link"): the link itself is signed when the e-mail is written, never stored."""

    __tablename__ = "link_message"
    __table_args__ = (Index("link_message_pending", "id", postgresql_where="status = 'pending'"),)
    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    rpps: str
    name: str
    email: str
    status: str = NotificationStatus.PENDING
    attempts: int = 0
    last_error: str | None = None
    requested_at: datetime = timestamp()
    next_attempt_at: datetime = timestamp()
    sent_at: datetime | None = timestamp(nullable=True)
