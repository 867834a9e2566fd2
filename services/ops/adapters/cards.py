"""The coordinator's directory as the read model knows it: a CPTS's professionals at their
latest version, with their slots and the offers they were asked (queries of services/ops/professionals.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text

from services.common.db import Database

PAGE = 50

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


def _like(query: str) -> str:
    return "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def professionals_page(
    db: Database, *, cpts_id: str, query: str, page: int, now: datetime, since: datetime
) -> tuple[int, list[Any]]:
    """One page of the CPTS's professionals (by name), searched by name or RPPS, with free
    slots to come and offers of the last 30 days."""
    params = {
        "c": cpts_id,
        "q": query,
        "like": _like(query),
        "prefix": query.replace("%", "").replace("_", "") + "%",
        "now": now,
        "since": since,
    }
    async with db.engine.connect() as conn:
        total = (await conn.execute(text(f"SELECT count(*) FROM ({_LIST}) AS found"), params)).scalar_one()
        rows = await conn.execute(text(f"{_LIST} LIMIT {PAGE} OFFSET :skip"), {**params, "skip": page * PAGE})
        return int(total), list(rows.all())


async def cpts_of(db: Database, *, rpps: str) -> str | None:
    """The CPTS a professional belongs to now (None: unknown to the read model, or in none)."""
    async with db.engine.connect() as conn:
        found = await conn.execute(
            text("SELECT cpts_id FROM ops_professional_version WHERE rpps = :r ORDER BY at DESC LIMIT 1"), {"r": rpps}
        )
        return found.scalar()


async def card_rows(
    db: Database, *, rpps: str, now: datetime, since: datetime
) -> tuple[Any, list[Any], list[Any]] | None:
    """A professional's latest version, their slots of the coming week, their offers since `since`."""
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
    return found, list(slots.all()), offers
