"""People's accounts: a CPTS's `coordinator` and the `sas_admin` (the operations pages, /ops) and a
SAS's `regulator` of one organisation (the console, /r). Passwords hashed with Argon2id,
sessions stored hashed, ended by a password reset, a disable, 12 hours after login or
SESSION_IDLE without use; logins rate-limited. One store for both doors (the shared schema),
each door letting in its own roles only (`Operator.opens`)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from services.common import audit
from services.common.access import account_rows as operators
from services.common.access.roles import DEPARTMENT
from services.common.audit import SYSTEM, Actor
from services.common.clock import Clock
from services.common.db import Database

SESSION_HOURS = 12
SESSION_IDLE = timedelta(minutes=30)  # a session unused this long ends (a shared computer left open)
TOUCH_EVERY = timedelta(minutes=1)  # how often a session's last use is written
FAILURES_PER_ACCOUNT = 5  # within LOCKOUT, for one e-mail address
FAILURES_PER_CLIENT = 20  # looser: behind a proxy, many people share one address
LOCKOUT = timedelta(minutes=15)
ROLES = ("coordinator", "sas_admin", "regulator")
OPERATIONS = ("coordinator", "sas_admin")  # the roles the operations pages let in
CONSOLE = ("regulator",)  # the roles the regulators' console lets in
# Argon2id with argon2-cffi's defaults (RFC 9106's second recommended profile: t=3, 64 MiB,
# p=4); the parameters are stored in each hash, so raising them later rehashes at the next login
HASHER = PasswordHasher()


def hash_password(password: str) -> str:
    """An Argon2id hash (CPU-heavy: called off the event loop, see `Accounts`)."""
    return HASHER.hash(password)


def _check_scrypt(password: str, stored: str) -> bool:
    """The hashes made before Argon2id (scrypt N=2^14), until their owner's next login."""
    try:
        _, salt, digest = stored.split("$")
        computed = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=2**14, r=8, p=1, dklen=32)
    except ValueError:
        return False
    return hmac.compare_digest(base64.b64encode(computed).decode(), digest)


def check_password(password: str, stored: str) -> bool:
    if stored.startswith("scrypt$"):
        return _check_scrypt(password, stored)
    try:
        return HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return stored.startswith("scrypt$") or HASHER.check_needs_rehash(stored)


_UNKNOWN_ACCOUNT = hash_password(secrets.token_urlsafe(16))  # checked against when no account has the address


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Operator:
    """The person behind a live session."""

    email: str
    role: str
    cpts_id: str | None
    csrf: str
    organisation: str | None = None  # a regulator's
    departments: tuple[str, ...] | None = None  # a regulator's; None: every one

    def may_see(self, cpts_id: str) -> bool:
        return self.role == "sas_admin" or (self.role == "coordinator" and self.cpts_id == cpts_id)


@dataclass(frozen=True)
class Account:
    email: str
    role: str
    cpts_id: str | None
    disabled: bool
    updated_at: datetime
    organisation: str | None = None
    departments: tuple[str, ...] | None = None


class InvalidAccount(ValueError):
    """What an account's role needs is missing, or what it may not have is there (said in words)."""


def checked_scope(
    role: str, cpts_id: str | None, organisation: str | None, departments: list[str] | None
) -> list[str] | None:
    """A coordinator has one CPTS; a sas_admin neither CPTS nor organisation; a regulator an
    organisation, and départements or none (every one). Returns the départements, sorted."""
    if role not in ROLES:
        raise InvalidAccount(f"role is one of {', '.join(ROLES)}")
    if role == "coordinator" and (not cpts_id or organisation or departments):
        raise InvalidAccount("a coordinator has one cpts_id, and no organisation or departments")
    if role == "sas_admin" and (cpts_id or organisation or departments):
        raise InvalidAccount("a sas_admin has no cpts_id, organisation or departments")
    if role == "regulator":
        if cpts_id or not organisation:
            raise InvalidAccount("a regulator has an organisation (its requests), and no cpts_id")
        wrong = [d for d in departments or [] if not re.fullmatch(DEPARTMENT, d)]
        if wrong:
            raise InvalidAccount(f"unknown départements {wrong}")
    return sorted(set(departments)) if departments else None


class TooManyAttempts(Exception):
    pass


class WrongDoor(Exception):
    """Right password, but this account logs in elsewhere (a regulator at /ops, say): its role."""


class Accounts:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db, self.clock = db, clock

    async def put(
        self,
        email: str,
        password: str,
        role: str,
        cpts_id: str | None = None,
        by: Actor = SYSTEM,
        organisation: str | None = None,
        departments: list[str] | None = None,
    ) -> None:
        """Create or update an account; a new password ends every session it had (on record).
        InvalidAccount when the role's scope is wrong (`checked_scope`)."""
        departments = checked_scope(role, cpts_id, organisation, departments)
        hashed = await asyncio.to_thread(hash_password, password)
        email = email.lower()
        async with self.db.transaction() as tx:
            await operators.put_account(
                tx.session,
                email=email,
                password_hash=hashed,
                role=role,
                cpts_id=cpts_id,
                organisation=organisation,
                departments=departments,
                now=self.clock(),
            )
            await operators.end_sessions_of(tx.session, email=email)
            await audit.record(tx.session, by, "account.saved", None, self.clock(), detail=f"{email} {role}")

    async def log_in(self, email: str, password: str, client: str, roles: Sequence[str] = OPERATIONS) -> str | None:
        """A new session token, or None for wrong credentials; TooManyAttempts when locked out;
        WrongDoor when the account's role is not one of `roles` (the door asked at).
        The password is checked between two transactions, off the event loop (Argon2id is slow
        on purpose); an old scrypt hash is replaced by an Argon2id one at a successful login."""
        email, now = email.lower(), self.clock()
        async with self.db.transaction() as tx:
            for_address, from_client = await operators.failures_since(
                tx.session, email=email, client=client, since=now - LOCKOUT
            )
            if for_address >= FAILURES_PER_ACCOUNT or from_client >= FAILURES_PER_CLIENT:
                raise TooManyAttempts(email)
            found = await operators.password_hash_of(tx.session, email=email)
        stored, role = found or (_UNKNOWN_ACCOUNT, "")
        # an unknown address costs the same hashing as a wrong password: timing says nothing
        ok = await asyncio.to_thread(check_password, password, stored) and found is not None
        upgraded = await asyncio.to_thread(hash_password, password) if ok and needs_rehash(stored) else None
        opens = ok and role in roles
        async with self.db.transaction() as tx:
            await operators.record_attempt(tx.session, email=email, client=client, at=now, ok=ok)
            if opens:
                if upgraded:
                    await operators.replace_hash(tx.session, email=email, old=stored, new=upgraded)
                token = secrets.token_urlsafe(32)
                await operators.open_session(
                    tx.session,
                    token_hash=_hash(token),
                    email=email,
                    csrf=secrets.token_urlsafe(24),
                    until=now + timedelta(hours=SESSION_HOURS),
                    now=now,
                )
        if ok and not opens:
            raise WrongDoor(role)  # the right password, at another door: nothing opened
        return token if opens else None

    async def operator(self, token: str | None, roles: Sequence[str] = OPERATIONS) -> Operator | None:
        """The operator of a live session: not expired, used within SESSION_IDLE, account enabled,
        its role one of `roles` (the door asking). Its last use is written at most once a minute
        (one statement)."""
        if not token:
            return None
        now = self.clock()
        async with self.db.transaction() as tx:
            row = await operators.live_session(
                tx.session,
                token_hash=_hash(token),
                now=now,
                touch_before=now - TOUCH_EVERY,
                idle_since=now - SESSION_IDLE,
            )
        if row is None or row.role not in roles:
            return None
        departments = tuple(row.departments) if row.departments is not None else None
        return Operator(row.email, row.role, row.cpts_id, row.csrf, row.organisation, departments)

    async def listed(self) -> list[Account]:
        """Every account, for the SAS's accounts page (no password hash leaves this module)."""
        async with self.db.engine.connect() as conn:
            rows = await operators.all_accounts(conn)
        return [
            Account(
                r.email,
                r.role,
                r.cpts_id,
                r.disabled,
                r.updated_at,
                r.organisation,
                tuple(r.departments) if r.departments is not None else None,
            )
            for r in rows
        ]

    async def disable(self, email: str, by: Actor = SYSTEM) -> bool:
        """The account can no longer log in and its sessions end now; False when there is none.
        Setting a password again (`put`) enables it."""
        email = email.lower()
        async with self.db.transaction() as tx:
            found = await operators.disable(tx.session, email=email, now=self.clock())
            await operators.end_sessions_of(tx.session, email=email)
            await audit.record(tx.session, by, "account.disabled", None, self.clock(), detail=email)
            return found

    async def log_out(self, token: str) -> None:
        async with self.db.transaction() as tx:
            await operators.end_session(tx.session, token_hash=_hash(token))

    async def forget_expired(self) -> None:
        """Drop sessions past their time and login attempts older than the lockout window."""
        now = self.clock()
        async with self.db.transaction() as tx:
            await operators.forget_before(tx.session, sessions_ended=now, attempts_before=now - LOCKOUT)
