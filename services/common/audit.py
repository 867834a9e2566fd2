"""The audit trail of patient data (contract v2, "Patient data"): who did what to which request,
when, from where. One append-only table, `access.audit_entry`, shared by the services: each
writes its entries in the same transaction as what it records (the table is reached by its
schema-qualified name from any service's connection), and the database refuses to update,
delete or truncate it (triggers, access_0003).

Actors: `client` (an API client's id), `account` (an operations account's e-mail),
`professional` (an RPPS, through their link), `system` (a service on its own).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

ActorKind = Literal["client", "account", "professional", "system"]
TABLE = "access.audit_entry"


@dataclass(frozen=True)
class Actor:
    kind: ActorKind
    id: str


SYSTEM = Actor("system", "sas-orientation")
# the address of the HTTP call being handled (set for every call: services/common/http.py)
CLIENT_IP: ContextVar[str | None] = ContextVar("client_ip", default=None)


async def record(
    session: AsyncSession,
    actor: Actor,
    action: str,
    request_id: str | None,
    at: datetime,
    ip: str | None = None,
    detail: str | None = None,
) -> None:
    """One entry, in the caller's transaction (it is kept only if what it records is); the
    address is the HTTP call's unless given."""
    await session.execute(
        text(
            f"INSERT INTO {TABLE} (at, actor_kind, actor_id, action, request_id, ip, detail) "
            "VALUES (:at, :kind, :actor, :action, :request_id, :ip, :detail)"
        ),
        {
            "at": at,
            "kind": actor.kind,
            "actor": actor.id[:200],
            "action": action,
            "request_id": request_id,
            "ip": ip or CLIENT_IP.get(),
            "detail": detail,
        },
    )


async def entries(
    conn: AsyncConnection | AsyncSession,
    request_ids: list[str] | None,
    action: str | None = None,
    limit: int = 500,
    actor_id: str | None = None,
    until: datetime | None = None,
    newest_first: bool = False,
) -> list[dict[str, Any]]:
    """Entries oldest first (or the newest, newest first): of these requests (None: of every
    request, for an admin), of one action, one actor, up to a time."""
    where: list[str] = ["TRUE"]
    values: dict[str, Any] = {"n": limit}
    if actor_id:
        where.append("actor_id = :actor")
        values["actor"] = actor_id
    if until is not None:
        where.append("at <= :until")
        values["until"] = until
    if request_ids is not None:
        where.append("request_id = ANY(:ids)")
        values["ids"] = request_ids
    if action:
        where.append("action = :action")
        values["action"] = action
    order = "DESC" if newest_first else "ASC"
    rows = await conn.execute(
        text(
            f"SELECT at, actor_kind, actor_id, action, request_id, ip, detail FROM {TABLE} "
            f"WHERE {' AND '.join(where)} ORDER BY at {order}, id {order} LIMIT :n"
        ),
        values,
    )
    return [
        {
            "at": r.at.isoformat(),
            "actor": {"kind": r.actor_kind, "id": r.actor_id},
            "action": r.action,
            "request_id": r.request_id,
            "ip": r.ip,
            **({"detail": r.detail} if r.detail else {}),
        }
        for r in rows
    ]
