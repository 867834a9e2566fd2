"""The shared schema `access`: the API's clients (keys kept as hashes, never in clear) and people's
accounts with their sessions (passwords and tokens kept hashed)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Identity, false, func
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


class AccountRow(SQLModel, table=True):
    """A person's account: a CPTS's coordinator, a SAS administrator, or a regulator of an
    organisation (its console). An Argon2id hash, never the password."""

    __tablename__ = "account"
    email: str = Field(primary_key=True)
    password_hash: str
    role: str  # coordinator | sas_admin | regulator
    cpts_id: str | None = None  # a coordinator's
    organisation: str | None = None  # a regulator's: the requests it sees
    departments: list[str] | None = Field(default=None, sa_column=Column(ARRAY(TEXT)))  # a regulator's
    updated_at: datetime = timestamp()
    disabled: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=false()))


class SessionRow(SQLModel, table=True):
    """A logged-in browser: the token's hash, its CSRF token, when it ends."""

    __tablename__ = "account_session"
    token_hash: str = Field(primary_key=True)
    email: str = Field(index=True)
    csrf: str
    expires_at: datetime = timestamp()
    last_seen_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()))


class LoginAttemptRow(SQLModel, table=True):
    __tablename__ = "login_attempt"
    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    email: str = Field(index=True)
    client: str = Field(index=True)
    at: datetime = timestamp()
    ok: bool
