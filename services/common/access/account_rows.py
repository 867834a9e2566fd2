"""People's accounts, their sessions and login attempts (the queries of accounts.py), in the shared
schema. Passwords and tokens arrive here hashed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlmodel import col

from services.common.access.models import AccountRow, LoginAttemptRow, SessionRow


async def put_account(
    session: AsyncSession,
    *,
    email: str,
    password_hash: str,
    role: str,
    cpts_id: str | None,
    organisation: str | None,
    departments: list[str] | None,
    now: datetime,
) -> None:
    """Created, or replaced and enabled again."""
    values = {
        "email": email,
        "password_hash": password_hash,
        "role": role,
        "cpts_id": cpts_id,
        "organisation": organisation,
        "departments": departments,
        "updated_at": now,
    }
    statement = upsert(AccountRow).values(values)
    changes = {name: statement.excluded[name] for name in values if name != "email"} | {"disabled": False}
    await session.execute(statement.on_conflict_do_update(index_elements=["email"], set_=changes))


async def end_sessions_of(session: AsyncSession, *, email: str) -> None:
    await session.execute(delete(SessionRow).where(col(SessionRow.email) == email))


async def failures_since(session: AsyncSession, *, email: str, client: str, since: datetime) -> tuple[int, int]:
    """Failed logins since `since`: for this address, and from this client."""
    failed = (~col(LoginAttemptRow.ok)) & (col(LoginAttemptRow.at) > since)
    counts = await session.execute(
        select(
            func.count().filter(col(LoginAttemptRow.email) == email),
            func.count().filter(col(LoginAttemptRow.client) == client),
        ).where(failed)
    )
    for_address, from_client = counts.one()
    return int(for_address), int(from_client)


async def password_hash_of(session: AsyncSession, *, email: str) -> tuple[str, str] | None:
    """The enabled account's password hash and role (None: no such account, or disabled)."""
    found = await session.execute(
        select(col(AccountRow.password_hash), col(AccountRow.role)).where(
            col(AccountRow.email) == email, ~col(AccountRow.disabled)
        )
    )
    row = found.first()
    return (row[0], row[1]) if row else None


async def record_attempt(session: AsyncSession, *, email: str, client: str, at: datetime, ok: bool) -> None:
    await session.execute(insert(LoginAttemptRow).values(email=email, client=client, at=at, ok=ok))


async def replace_hash(session: AsyncSession, *, email: str, old: str, new: str) -> None:
    """A stronger hash of the same password, unless the password changed meanwhile."""
    await session.execute(
        update(AccountRow)
        .where(col(AccountRow.email) == email, col(AccountRow.password_hash) == old)
        .values(password_hash=new)
    )


async def open_session(
    session: AsyncSession, *, token_hash: str, email: str, csrf: str, until: datetime, now: datetime
) -> None:
    await session.execute(
        insert(SessionRow).values(token_hash=token_hash, email=email, csrf=csrf, expires_at=until, last_seen_at=now)
    )


# one statement: the session found live and its last use written (at most once per `touch`)
_LIVE_SESSION = (
    "UPDATE account_session s SET last_seen_at = CASE WHEN s.last_seen_at < :touch "
    "THEN CAST(:now AS timestamptz) ELSE s.last_seen_at END "
    "FROM account a WHERE a.email = s.email AND s.token_hash = :t AND s.expires_at > :now "
    "AND s.last_seen_at > :idle AND NOT a.disabled "
    "RETURNING a.email, a.role, a.cpts_id, a.organisation, a.departments, s.csrf"
)


async def live_session(
    session: AsyncSession, *, token_hash: str, now: datetime, touch_before: datetime, idle_since: datetime
) -> Any:
    """The account and CSRF token of a live session (not expired, used since `idle_since`,
    account enabled), its last use written when older than `touch_before`; None otherwise."""
    found = await session.execute(
        text(_LIVE_SESSION), {"t": token_hash, "now": now, "touch": touch_before, "idle": idle_since}
    )
    return found.first()


async def all_accounts(conn: AsyncConnection) -> list[Any]:
    """Every account, enabled first (no password hash)."""
    found = await conn.execute(
        select(
            col(AccountRow.email),
            col(AccountRow.role),
            col(AccountRow.cpts_id),
            col(AccountRow.organisation),
            col(AccountRow.departments),
            col(AccountRow.disabled),
            col(AccountRow.updated_at),
        ).order_by(col(AccountRow.disabled), col(AccountRow.email))
    )
    return list(found.all())


async def disable(session: AsyncSession, *, email: str, now: datetime) -> bool:
    """False when there is no such account."""
    found = await session.execute(
        update(AccountRow).where(col(AccountRow.email) == email).values(disabled=True, updated_at=now)
    )
    return bool(found.rowcount)  # type: ignore[attr-defined]


async def end_session(session: AsyncSession, *, token_hash: str) -> None:
    await session.execute(delete(SessionRow).where(col(SessionRow.token_hash) == token_hash))


async def forget_before(session: AsyncSession, *, sessions_ended: datetime, attempts_before: datetime) -> None:
    """Sessions past their time, and login attempts older than the lockout window."""
    await session.execute(delete(SessionRow).where(col(SessionRow.expires_at) < sessions_ended))
    await session.execute(delete(LoginAttemptRow).where(col(LoginAttemptRow.at) < attempts_before))
