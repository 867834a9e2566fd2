"""The clients' table (schema `access`): keys kept as hashes, never in clear."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column
from sqlalchemy.dialects.postgresql import ARRAY, TEXT
from sqlmodel import Field, SQLModel

from services.common.tables import timestamp


class ApiClient(SQLModel, table=True):
    """One caller of the API. `key_hash` is the SHA-256 of its key (a 192-bit random value, so a
    fast hash is enough); its `signing_secret` signs the pushes it receives (Standard Webhooks)."""

    __tablename__ = "api_client"
    client_id: str = Field(primary_key=True)
    name: str
    role: str
    organisation: str
    departments: list[str] | None = Field(default=None, sa_column=Column(ARRAY(TEXT)))  # None: every one
    cpts_ids: list[str] = Field(default_factory=list, sa_column=Column(ARRAY(TEXT), nullable=False))
    key_hash: str = Field(unique=True)
    signing_secret: str
    previous_signing_secret: str | None = None  # still signed with until `previous_secret_until`
    previous_secret_until: datetime | None = timestamp(nullable=True)
    source: str = "api"  # api | cli | environment
    created_at: datetime = timestamp()
    revoked_at: datetime | None = timestamp(nullable=True)
    last_used_at: datetime | None = timestamp(nullable=True)
