"""The coordinator's directory (annuaire): a CPTS's professionals as the read model knows them
(names, participation, slots), and pausing one — through the matcher, which owns the directory
(in the same process when it is hosted there, else over HTTP with the internal key)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol

import httpx
from sqlalchemy import text

from services.common.db import Database
from services.common.internal_client import InternalClient

PAGE = 50
PARTICIPATION_DAYS = 30

_LATEST = (
    "SELECT DISTINCT ON (rpps) rpps, name, profession, cpts_id, sas_participation, active, paused_until "
    "FROM ops_professional_version ORDER BY rpps, at DESC"
)
_LIST = (
    f"WITH latest AS ({_LATEST}) SELECT l.*, "
    "(SELECT count(*) FROM ops_slot s WHERE s.rpps = l.rpps AND s.start >= :now AND s.state = 'free' "
    "AND NOT s.booked) AS free_slots, "
    "(SELECT count(*) FROM ops_offer o WHERE o.rpps = l.rpps AND o.proposed_at >= :since) AS asked, "
    "(SELECT count(*) FROM ops_offer o WHERE o.rpps = l.rpps AND o.proposed_at >= :since "
    "AND o.accepted_at IS NOT NULL) AS accepted "
    "FROM latest l WHERE l.cpts_id = :c AND (:q = '' OR l.name ILIKE :like ESCAPE '\\' OR l.rpps LIKE :prefix) "
    "ORDER BY l.name NULLS LAST, l.rpps"
)
_OFFERS = (
    "SELECT o.proposed_at, o.accepted_at, o.refused_at, o.refusal_reason, o.expired_at, o.withdrawn_at "
    "FROM ops_offer o WHERE o.rpps = :r AND o.proposed_at >= :since ORDER BY o.proposed_at DESC"
)


class PauseRefused(Exception):
    """The matcher refused the pause (a date in the past, too far, an unknown professional)."""


class MatcherUnreachable(Exception):
    """The matcher did not answer: nothing changed; try again."""


class ProfessionalPauses(Protocol):
    async def pause(self, rpps: str, last_day: date | None, by: str) -> None:
        """Pause until the end of `last_day` (Paris), or end the pause (None); `by`: the account."""
        ...


class HttpPauses:
    """The matcher's internal route, through one HTTP client per process."""

    def __init__(self, base_url: str, key: str) -> None:
        self.matcher = InternalClient(base_url, key)

    async def pause(self, rpps: str, last_day: date | None, by: str) -> None:
        try:
            response = await self.matcher.request(
                "PUT",
                f"/internal/v1/professionals/{rpps}/pause",
                json={"until": last_day.isoformat() if last_day else None, "by": by},
                headers={"Accept-Language": "fr"},
            )
        except httpx.HTTPError as error:
            raise MatcherUnreachable(type(error).__name__) from error
        if response.status_code in (404, 422):
            raise PauseRefused(_detail(response))
        if response.status_code >= 300:
            raise MatcherUnreachable(f"HTTP {response.status_code}")

    async def close(self) -> None:
        await self.matcher.close()


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail") or response.status_code)
    except ValueError:
        return f"HTTP {response.status_code}"


@dataclass(frozen=True)
class Participation:
    asked: int
    accepted: int
    refused: dict[str, int]  # by reason
    expired: int
    latest: list[Any]  # the latest offers, newest first


def _like(query: str) -> str:
    return "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def listed(db: Database, cpts_id: str, query: str, page: int, now: datetime) -> tuple[int, list[Any]]:
    """One page of the CPTS's professionals (by name), searched by name or RPPS, with free
    slots to come and offers of the last 30 days."""
    params = {
        "c": cpts_id,
        "q": query,
        "like": _like(query),
        "prefix": query.replace("%", "").replace("_", "") + "%",
        "now": now,
        "since": now - timedelta(days=PARTICIPATION_DAYS),
    }
    async with db.engine.connect() as conn:
        total = (await conn.execute(text(f"SELECT count(*) FROM ({_LIST}) AS found"), params)).scalar_one()
        rows = await conn.execute(text(f"{_LIST} LIMIT {PAGE} OFFSET :skip"), {**params, "skip": page * PAGE})
        return int(total), list(rows.all())


async def cpts_of(db: Database, rpps: str) -> str | None:
    """The CPTS a professional belongs to now (None: unknown to the read model, or in none)."""
    async with db.engine.connect() as conn:
        found = await conn.execute(
            text("SELECT cpts_id FROM ops_professional_version WHERE rpps = :r ORDER BY at DESC LIMIT 1"), {"r": rpps}
        )
        return found.scalar()


async def card(db: Database, rpps: str, now: datetime) -> tuple[Any, list[Any], Participation] | None:
    """A professional's latest version, their slots of the coming week, their participation."""
    since = now - timedelta(days=PARTICIPATION_DAYS)
    async with db.engine.connect() as conn:
        found = (await conn.execute(text(f"SELECT * FROM ({_LATEST}) AS l WHERE rpps = :r"), {"r": rpps})).first()
        if found is None:
            return None
        slots = await conn.execute(
            text(
                'SELECT slot_id, start, "end", state, booked FROM ops_slot WHERE rpps = :r AND start >= :a '
                "AND start < :b AND state <> 'withdrawn' ORDER BY start LIMIT 200"
            ),
            {"r": rpps, "a": now - timedelta(hours=1), "b": now + timedelta(days=8)},
        )
        offers = list((await conn.execute(text(_OFFERS), {"r": rpps, "since": since})).all())
    refused: dict[str, int] = {}
    for o in offers:
        if o.refused_at is not None:
            refused[o.refusal_reason or "unspecified"] = refused.get(o.refusal_reason or "unspecified", 0) + 1
    participation = Participation(
        asked=len(offers),
        accepted=sum(o.accepted_at is not None for o in offers),
        refused=refused,
        expired=sum(o.expired_at is not None for o in offers),
        latest=offers[:10],
    )
    return found, list(slots.all()), participation
