"""Tables every service has in its own schema: the outbox and the processed-event inbox."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Identity, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


def timestamp(nullable: bool = False) -> Any:
    """A timezone-aware timestamp column (every instant is stored with its offset)."""
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


def json_column(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(JSONB, nullable=nullable))


def text_column(nullable: bool = True) -> Any:
    """A column the migration made `text` (a `str` field is `varchar` otherwise)."""
    return Field(default=None, sa_column=Column(Text, nullable=nullable))


def revision_column() -> Any:
    """A row's revision, set by the database on every write (matcher_0002's trigger)."""
    return Field(default=None, sa_column=Column(BigInteger, nullable=False))


class OutboxMessage(SQLModel, table=True):
    """An event committed with the state change that caused it, waiting for the relay."""

    __tablename__ = "outbox_message"
    seq: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    event_id: uuid.UUID = Field(unique=True)
    topic: str
    key: str
    value: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    published_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class ProcessedEvent(SQLModel, table=True):
    """An event id a consumer has handled: a redelivery of it does nothing."""

    __tablename__ = "processed_event"
    consumer: str = Field(primary_key=True)
    event_id: str = Field(primary_key=True)
    processed_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
