"""The clients, kept in schema `access` of the shared database and read by every process.

A key is looked up by its hash, then kept by the process while it hears every change of the
clients (services/common/access/known.py): a revocation takes effect in every process within
the time a notification takes; `last_used_at` is written at most once a minute per client. Keys from the environment
(`REGULATOR_API_KEYS`, `ADMIN_API_KEYS`, `FHIR_API_KEYS`) are clients too: recorded at start
under an id derived from the key, and ended by removing them from the environment.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select

from services.common import audit
from services.common.access.known import KnownClients
from services.common.access.models import ApiClient
from services.common.access.roles import Client, Role
from services.common.audit import Actor
from services.common.clock import Clock, utcnow
from services.common.db import Database, database_away
from services.common.db_listener import DatabaseListener

MIGRATIONS = Path(__file__).parent / "migrations"
KEY_PREFIX = "sask_"
TOUCH_EVERY = timedelta(minutes=1)
ROTATION_OVERLAP = timedelta(hours=24)  # a rotated signing secret still signs this long


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(24)  # 192 random bits


def new_signing_secret() -> str:
    """A secret in the Standard Webhooks form (`whsec_` + base64 of 32 random bytes)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Created:
    """What the creator is shown once: the key and the signing secret are kept nowhere in clear
    but the secret (needed to sign), and the key only as its hash."""

    client: Client
    key: str
    signing_secret: str


@dataclass(frozen=True)
class EnvironmentKey:
    """A key given in the environment, the role it has and the organisation it speaks for."""

    key: str
    role: Role
    organisation: str | None = None

    @property
    def client_id(self) -> str:
        return f"env-{self.role}-{key_hash(self.key)[:12]}"


def environment_keys(regulator: str, admin: str, platform: str) -> list[EnvironmentKey]:
    """The comma-separated settings as keys. A regulator entry `organisation:key` names its
    organisation; a bare key is an organisation of its own (its requests seen by no other key)."""
    found = []
    for role, listed in ((Role.REGULATOR, regulator), (Role.ADMIN, admin), (Role.PLATFORM, platform)):
        for entry in (e.strip() for e in listed.split(",")):
            if not entry:
                continue
            organisation, _, key = entry.rpartition(":") if role == Role.REGULATOR else ("", "", entry)
            found.append(EnvironmentKey(key.strip(), role, organisation.strip() or None))
    return found


def client_of(row: ApiClient) -> Client:
    return Client(
        client_id=row.client_id,
        name=row.name,
        role=Role(row.role),
        organisation=row.organisation,
        departments=tuple(row.departments) if row.departments is not None else None,
        cpts_ids=tuple(row.cpts_ids),
    )


class UnknownClient(Exception):
    pass


class ClientRegistry:
    def __init__(
        self,
        db: Database,
        environment: Sequence[EnvironmentKey] = (),
        clock: Clock = utcnow,
        listener: DatabaseListener | None = None,
    ) -> None:
        """`listener`: the process's listening connection (services/common/db_listener.py)."""
        self.db = db
        self.environment = list(environment)
        self.environment_hashes = {key_hash(env.key) for env in self.environment}
        self.clock = clock
        self.known = KnownClients(
            db, keep_for=TOUCH_EVERY, listener=listener
        )  # verified lately, forgotten at any change

    async def start(self) -> None:
        """Bring the schema up to date and record the environment's keys as clients."""
        await self.db.migrate(MIGRATIONS)
        await self.known.listen()
        now = self.clock()
        async with self.db.transaction() as tx:
            for env in self.environment:
                organisation = (env.organisation or env.client_id) if env.role == Role.REGULATOR else ""
                values: dict[str, Any] = {
                    "client_id": env.client_id,
                    "name": f"{env.role} key from the environment",
                    "role": str(env.role),
                    "organisation": organisation,
                    "departments": None,
                    "cpts_ids": [],
                    "key_hash": key_hash(env.key),
                    "signing_secret": "",  # the environment's clients are signed for with CALLBACK_SECRET
                    "source": "environment",
                    "created_at": now,
                }
                await tx.session.execute(
                    insert(ApiClient)
                    .values(values)
                    .on_conflict_do_update(
                        index_elements=["client_id"],
                        set_={"organisation": organisation, "revoked_at": None},
                    )
                )

    async def create(
        self,
        name: str,
        role: Role,
        organisation: str | None = None,
        departments: Iterable[str] | None = None,
        cpts_ids: Iterable[str] = (),
        source: str = "api",
        by: Actor = audit.SYSTEM,
    ) -> Created:
        key, secret = new_key(), new_signing_secret()
        row = ApiClient(
            client_id="cli_" + secrets.token_hex(8),
            name=name,
            role=str(role),
            organisation=(organisation or name) if role == Role.REGULATOR else (organisation or ""),
            departments=sorted(set(departments)) if departments is not None and role == Role.REGULATOR else None,
            cpts_ids=sorted(set(cpts_ids)) if role == Role.DIRECTORY else [],
            key_hash=key_hash(key),
            signing_secret=secret,
            source=source,
            created_at=self.clock(),
        )
        async with self.db.transaction() as tx:
            tx.session.add(row)
            await tx.session.flush()
            detail = f"{row.client_id} {row.role} {row.organisation}".strip()
            await audit.record(tx.session, by, "client.created", None, self.clock(), detail=detail)
        return Created(client_of(row), key, secret)

    async def authenticate(self, key: str) -> Client | None:
        """The client of this key, if it is known and not revoked. Tried twice when the database
        dropped the connection: after a restart the pool's first connection is a dead one."""
        if not key or len(key) > 200:
            return None
        hashed, now = key_hash(key), self.clock()
        known = self.known.client(hashed, now)
        if known is not None:
            return known
        await self.known.listen()
        generation = self.known.generation()
        try:
            client = await self._authenticate(key)
        except Exception as error:
            if not database_away(error):
                raise
            client = await self._authenticate(key)
        if client is not None:
            self.known.keep("key", hashed, client, now, generation)
        return client

    async def _authenticate(self, key: str) -> Client | None:
        async with self.db.transaction() as tx:
            row = (
                await tx.session.execute(
                    select(ApiClient).where(
                        col(ApiClient.key_hash) == key_hash(key), col(ApiClient.revoked_at).is_(None)
                    )
                )
            ).scalar_one_or_none()
            if row is None:
                return None
            if row.source == "environment" and row.key_hash not in self.environment_hashes:
                return None  # a key taken out of this process's environment ends with it
            now = self.clock()
            if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
                row.last_used_at = now
            return client_of(row)

    async def all(self) -> list[ApiClient]:
        async with self.db.transaction() as tx:
            rows = await tx.session.execute(select(ApiClient).order_by(col(ApiClient.created_at)))
            return list(rows.scalars().all())

    async def revoke(self, client_id: str, by: Actor = audit.SYSTEM) -> ApiClient:
        """The key answers 401 from now on: here at once, in the other processes when the change
        reaches them (milliseconds: services/common/access/known.py)."""
        async with self.db.transaction() as tx:
            row = await tx.session.get(ApiClient, client_id, with_for_update=True)
            if row is None:
                raise UnknownClient(client_id)
            if row.revoked_at is None:
                row.revoked_at = self.clock()
                await audit.record(tx.session, by, "client.revoked", None, self.clock(), detail=client_id)
        self.known.forget()  # at once here; the other processes when the trigger's notification reaches them
        return row

    async def rotate_signing_secret(
        self, client_id: str, overlap: timedelta = ROTATION_OVERLAP, by: Actor = audit.SYSTEM
    ) -> str:
        """A new signing secret; the old one still signs (a second signature) for `overlap`."""
        secret = new_signing_secret()
        async with self.db.transaction() as tx:
            row = await tx.session.get(ApiClient, client_id, with_for_update=True)
            if row is None or row.revoked_at is not None:
                raise UnknownClient(client_id)
            row.previous_signing_secret = row.signing_secret or None
            row.previous_secret_until = self.clock() + overlap
            row.signing_secret = secret
            await audit.record(tx.session, by, "client.secret_rotated", None, self.clock(), detail=client_id)
        self.known.forget()
        return secret

    async def signing_secrets(self, client_id: str) -> list[str]:
        """The secrets a push to this client is signed with: the current one, and the previous
        one while its overlap lasts (both signatures are sent). Empty: sign with the default."""
        now = self.clock()
        kept = self.known.get("secrets", client_id, now)
        if kept is None:
            generation = self.known.generation()
            async with self.db.transaction() as tx:
                row = await tx.session.get(ApiClient, client_id)
            if row is None:
                return []
            kept = (row.signing_secret, row.previous_signing_secret, row.previous_secret_until)
            self.known.keep("secrets", client_id, kept, now, generation)
        current, previous, until = kept
        found = [current] if current else []
        if previous and until and until > now:
            found.append(previous)
        return found

    async def dispose(self) -> None:
        await self.known.close()
        await self.db.dispose()
