"""Operations accounts: who may see which CPTS's figures (roles `coordinator` of one CPTS,
`sas_admin` of all), passwords hashed with scrypt, sessions stored hashed, logins rate-limited."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text

from services.common.clock import Clock
from services.common.db import Database

SESSION_HOURS = 12
FAILURES_PER_ACCOUNT = 5  # within LOCKOUT, for one e-mail address
FAILURES_PER_CLIENT = 20  # looser: behind a proxy, many people share one address
LOCKOUT = timedelta(minutes=15)
ROLES = ("coordinator", "sas_admin")


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def check_password(password: str, stored: str) -> bool:
    try:
        _, salt, _ = stored.split("$")
    except ValueError:
        return False
    return hmac.compare_digest(hash_password(password, base64.b64decode(salt)), stored)


_UNKNOWN_ACCOUNT = hash_password(secrets.token_urlsafe(16))  # checked against when no account has the address


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Operator:
    email: str
    role: str
    cpts_id: str | None
    csrf: str

    def may_see(self, cpts_id: str) -> bool:
        return self.role == "sas_admin" or self.cpts_id == cpts_id


@dataclass(frozen=True)
class Account:
    email: str
    role: str
    cpts_id: str | None
    disabled: bool
    updated_at: datetime


class TooManyAttempts(Exception):
    pass


class Accounts:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db, self.clock = db, clock

    async def put(self, email: str, password: str, role: str, cpts_id: str | None) -> None:
        if role not in ROLES or (role == "coordinator") != bool(cpts_id):
            raise ValueError("a coordinator has one cpts_id; a sas_admin has none")
        async with self.db.transaction() as tx:
            await tx.session.execute(
                text(
                    "INSERT INTO ops_account (email, password_hash, role, cpts_id, updated_at) "
                    "VALUES (:e, :h, :r, :c, :now) ON CONFLICT (email) DO UPDATE SET "
                    "password_hash = excluded.password_hash, role = excluded.role, cpts_id = excluded.cpts_id, "
                    "updated_at = excluded.updated_at, disabled = false"
                ),
                {"e": email.lower(), "h": hash_password(password), "r": role, "c": cpts_id, "now": self.clock()},
            )

    async def log_in(self, email: str, password: str, client: str) -> str | None:
        """A new session token, or None for wrong credentials; TooManyAttempts when locked out."""
        email, now = email.lower(), self.clock()
        async with self.db.transaction() as tx:
            counts = (
                await tx.session.execute(
                    text(
                        "SELECT count(*) FILTER (WHERE email = :e), count(*) FILTER (WHERE client = :c) "
                        "FROM ops_login_attempt WHERE NOT ok AND at > :since"
                    ),
                    {"since": now - LOCKOUT, "e": email, "c": client},
                )
            ).one()
            if counts[0] >= FAILURES_PER_ACCOUNT or counts[1] >= FAILURES_PER_CLIENT:
                raise TooManyAttempts(email)
            row = (
                await tx.session.execute(
                    text("SELECT password_hash FROM ops_account WHERE email = :e AND NOT disabled"), {"e": email}
                )
            ).first()
            # an unknown address costs the same hashing as a wrong password: timing says nothing
            ok = check_password(password, row.password_hash if row else _UNKNOWN_ACCOUNT) and row is not None
            await tx.session.execute(
                text("INSERT INTO ops_login_attempt (email, client, at, ok) VALUES (:e, :c, :now, :ok)"),
                {"e": email, "c": client, "now": now, "ok": ok},
            )
            if not ok:
                return None
            token = secrets.token_urlsafe(32)
            await tx.session.execute(
                text("INSERT INTO ops_session (token_hash, email, csrf, expires_at) VALUES (:t, :e, :csrf, :until)"),
                {
                    "t": _hash(token),
                    "e": email,
                    "csrf": secrets.token_urlsafe(24),
                    "until": now + timedelta(hours=SESSION_HOURS),
                },
            )
            return token

    async def operator(self, token: str | None) -> Operator | None:
        if not token:
            return None
        async with self.db.engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT a.email, a.role, a.cpts_id, s.csrf "
                        "FROM ops_session s JOIN ops_account a ON a.email = s.email "
                        "WHERE s.token_hash = :t AND s.expires_at > :now AND NOT a.disabled"
                    ),
                    {"t": _hash(token), "now": self.clock()},
                )
            ).first()
        return Operator(row.email, row.role, row.cpts_id, row.csrf) if row else None

    async def listed(self) -> list[Account]:
        """Every account, for the SAS's accounts page (no password hash leaves this module)."""
        async with self.db.engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT email, role, cpts_id, disabled, updated_at FROM ops_account ORDER BY disabled, email")
            )
            return [Account(r.email, r.role, r.cpts_id, r.disabled, r.updated_at) for r in rows.all()]

    async def disable(self, email: str) -> bool:
        """The account can no longer log in and its sessions end now; False when there is none.
        Setting a password again (`put`) enables it."""
        async with self.db.transaction() as tx:
            found = await tx.session.execute(
                text("UPDATE ops_account SET disabled = true, updated_at = :now WHERE email = :e"),
                {"e": email.lower(), "now": self.clock()},
            )
            await tx.session.execute(text("DELETE FROM ops_session WHERE email = :e"), {"e": email.lower()})
            return bool(found.rowcount)  # type: ignore[attr-defined]

    async def log_out(self, token: str) -> None:
        async with self.db.transaction() as tx:
            await tx.session.execute(text("DELETE FROM ops_session WHERE token_hash = :t"), {"t": _hash(token)})

    async def forget_expired(self) -> None:
        """Drop sessions past their time and login attempts older than the lockout window."""
        now = self.clock()
        async with self.db.transaction() as tx:
            await tx.session.execute(text("DELETE FROM ops_session WHERE expires_at < :now"), {"now": now})
            await tx.session.execute(text("DELETE FROM ops_login_attempt WHERE at < :old"), {"old": now - LOCKOUT})
