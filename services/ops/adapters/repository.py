"""The read model's writes and reads. Writes record the facts an event carried (an upsert per
event, conditional where two events may arrive in either order); reads give the indicators their
facts, the dashboard its live queue and the exports their rows. Plain SQL where one statement
answers a page (the live queue), Core statements otherwise."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Table, delete, exists, or_, select, text, update
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel, col

from services.common.clock import PARIS
from services.common.db import Database
from services.ops import indicators
from services.ops.adapters.models import (
    OfferRow,
    ProfessionalVersionRow,
    RequestRow,
    SlotRow,
    TerritoryRow,
)

READ_MODEL: tuple[type[SQLModel], ...] = (RequestRow, OfferRow, ProfessionalVersionRow, SlotRow, TerritoryRow)


def _table(model: type[SQLModel]) -> Table:
    return model.__table__  # type: ignore[attr-defined, no-any-return]


async def record(
    session: AsyncSession, model: type[SQLModel], values: dict[str, Any], *, unless_newer: str | None = None
) -> None:
    """The row with these values (inserted, or its columns updated); `unless_newer`: a column
    of instants, the row updated only when the event is at least as recent as what it holds."""
    table = _table(model)
    key = [c.name for c in table.primary_key]
    statement = insert(table).values(values)
    newer: ColumnElement[bool] | None = None
    if unless_newer is not None:
        held = table.c[unless_newer]
        newer = or_(held.is_(None), held <= statement.excluded[unless_newer])
    changes = {name: statement.excluded[name] for name in values if name not in key}
    await session.execute(statement.on_conflict_do_update(index_elements=key, set_=changes, where=newer))


async def record_once(session: AsyncSession, model: type[SQLModel], values: dict[str, Any]) -> None:
    """A row that never changes once written (a professional's version at one instant)."""
    await session.execute(insert(_table(model)).values(values).on_conflict_do_nothing())


async def slot_booked(session: AsyncSession, *, slot_id: str, rpps: str, request_id: str) -> None:
    """Booked, unless the request was cancelled (whichever event is read first)."""
    cancelled = exists().where(col(RequestRow.request_id) == request_id, col(RequestRow.cancelled_at).is_not(None))
    statement = insert(_table(SlotRow)).values(slot_id=slot_id, rpps=rpps, booked=~cancelled)
    await session.execute(
        statement.on_conflict_do_update(index_elements=["slot_id"], set_={"booked": statement.excluded.booked})
    )


async def slot_no_longer_booked(session: AsyncSession, *, request_id: str) -> None:
    """The slot a cancelled request had booked, if any, counts as booked no more."""
    booked_for = select(col(RequestRow.slot_id)).where(col(RequestRow.request_id) == request_id).scalar_subquery()
    await session.execute(update(SlotRow).where(col(SlotRow.slot_id) == booked_for).values(booked=False))


async def forget_everything(session: AsyncSession, *, consumer: str) -> None:
    """The read model emptied, and the consumer's memory of the events it handled (a rebuild)."""
    for model in READ_MODEL:
        await session.execute(delete(model))
    await session.execute(text("DELETE FROM processed_event WHERE consumer = :c"), {"c": consumer})


# --- reading it back -------------------------------------------------------------------------


def _status(r: Any) -> str:
    if r.cancelled_at:
        return "cancelled"
    if r.confirmed_at:
        return "confirmed"
    return "unresolved" if r.unresolved_at else "open"


def _outcome(o: Any) -> str:
    for outcome in ("accepted", "refused", "expired", "withdrawn"):
        if getattr(o, f"{outcome}_at"):
            return outcome
    return "pending"


def bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """From the start of `first` to the end of `last`, Paris days."""
    start = datetime.combine(first, datetime.min.time(), tzinfo=PARIS)
    return start, datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=PARIS)


Facts = tuple[
    list[indicators.RequestFacts],
    list[indicators.OfferFacts],
    list[indicators.ProfessionalVersion],
    list[indicators.SlotFacts],
]


async def facts(db: Database, first: date, last: date) -> Facts:
    """What the arithmetic needs for a period (requests from three days before: acts of the period)."""
    start, end = bounds(first, last)
    received = col(RequestRow.received_at)
    async with db.engine.connect() as conn:
        requests = await conn.execute(select(RequestRow).where(received >= start - timedelta(days=3), received < end))
        offers = await conn.execute(
            select(OfferRow).where(col(OfferRow.proposed_at) >= start, col(OfferRow.proposed_at) < end)
        )
        versions = await conn.execute(select(ProfessionalVersionRow).where(col(ProfessionalVersionRow.at) < end))
        slots = await conn.execute(select(SlotRow).where(col(SlotRow.start) >= start, col(SlotRow.start) < end))
    return (
        [_request_facts(r) for r in requests.all() if r.received_at],
        [
            indicators.OfferFacts(
                o.offer_id, o.request_id, o.rpps, o.cpts_id, o.proposed_at, _outcome(o), o.refusal_reason
            )
            for o in offers.all()
            if o.proposed_at
        ],
        [
            indicators.ProfessionalVersion(v.rpps, v.at, v.profession, v.cpts_id, v.sas_participation, v.active)
            for v in versions.all()
        ],
        [
            indicators.SlotFacts(s.slot_id, s.rpps, s.start, s.end, s.state == "withdrawn", bool(s.booked))
            for s in slots.all()
            if s.start
        ],
    )


def _request_facts(r: Any) -> indicators.RequestFacts:
    return indicators.RequestFacts(
        r.request_id,
        r.received_at,
        r.patient_cpts,
        _status(r),
        r.deadline,
        r.confirmed_at,
        r.appointment_start,
        r.appointment_rpps,
        r.appointment_cpts,
        r.kind,
        r.reason,
        r.commune_insee,
        r.appointment_commune,
        r.channel or "cascade",
        r.honoured,
    )


async def professional_names(db: Database) -> dict[str, str]:
    """Each professional's latest name, by RPPS (for the dashboard: people, not numbers)."""
    version = ProfessionalVersionRow
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            select(col(version.rpps), col(version.name))
            .where(col(version.name).is_not(None))
            .ext(distinct_on(col(version.rpps)))
            .order_by(col(version.rpps), col(version.at).desc())
        )
        return {r.rpps: r.name for r in rows.all()}


_KNOWN_CPTS = (
    "SELECT c.cpts_id, coalesce(t.name, c.cpts_id) AS name FROM ("
    "SELECT cpts_id FROM ops_territory UNION SELECT cpts_id FROM ops_professional_version "
    "WHERE cpts_id IS NOT NULL UNION SELECT patient_cpts FROM ops_request WHERE patient_cpts IS NOT NULL"
    ") c LEFT JOIN ops_territory t USING (cpts_id) ORDER BY 2"
)


async def known_cpts(db: Database) -> dict[str, str]:
    """The CPTS the read model has heard of, with their names: territories announced, and any
    CPTS a professional or a patient belongs to (named by its id until its territory is heard of)."""
    async with db.engine.connect() as conn:
        rows = await conn.execute(text(_KNOWN_CPTS))
        return {r.cpts_id: r.name for r in rows.all()}


async def territory(db: Database, cpts_id: str) -> tuple[str, list[str]]:
    """A CPTS's name and communes (its id and none until the matcher announced it)."""
    async with db.engine.connect() as conn:
        row = (
            await conn.execute(
                select(col(TerritoryRow.name), col(TerritoryRow.communes)).where(col(TerritoryRow.cpts_id) == cpts_id)
            )
        ).first()
    return (row.name, list(row.communes)) if row else (cpts_id, [])


# the live queue of a CPTS: requests in progress, offers waiting for an answer, latest outcomes
_OPEN_REQUESTS = (
    "SELECT r.request_id, r.received_at, r.deadline, r.commune_insee, "
    "EXISTS (SELECT 1 FROM ops_offer o WHERE o.request_id = r.request_id AND o.accepted_at IS NULL "
    "AND o.refused_at IS NULL AND o.expired_at IS NULL AND o.withdrawn_at IS NULL) AS offered, "
    "CASE WHEN r.waiting_since > coalesce((SELECT max(o.proposed_at) FROM ops_offer o "
    "WHERE o.request_id = r.request_id), '-infinity') THEN r.waiting_reason END AS waiting "
    "FROM ops_request r WHERE (r.patient_cpts = :c OR r.appointment_cpts = :c) AND r.confirmed_at IS NULL "
    "AND r.cancelled_at IS NULL AND r.unresolved_at IS NULL ORDER BY r.received_at"
)
_PENDING_OFFERS = (
    "SELECT request_id, rpps, answer_by, (SELECT v.name FROM ops_professional_version v WHERE v.rpps = o.rpps "
    "ORDER BY v.at DESC LIMIT 1) AS name FROM ops_offer o WHERE cpts_id = :c AND accepted_at IS NULL "
    "AND refused_at IS NULL AND expired_at IS NULL AND withdrawn_at IS NULL ORDER BY answer_by NULLS LAST"
)
_LATEST_OUTCOMES = (
    "SELECT request_id, CASE WHEN cancelled_at IS NOT NULL THEN 'cancelled' "
    "WHEN confirmed_at IS NOT NULL THEN 'confirmed' ELSE 'unresolved' END AS outcome, reason, "
    "greatest(cancelled_at, confirmed_at, unresolved_at) AS at, appointment_start, kind, appointment_rpps, "
    "(SELECT v.name FROM ops_professional_version v WHERE v.rpps = r.appointment_rpps "
    "ORDER BY v.at DESC LIMIT 1) AS name FROM ops_request r "
    "WHERE (patient_cpts = :c OR appointment_cpts = :c) AND (confirmed_at IS NOT NULL OR "
    "cancelled_at IS NOT NULL OR unresolved_at IS NOT NULL) ORDER BY at DESC LIMIT 15"
)


async def live(db: Database, cpts_id: str) -> tuple[list[Any], list[Any], list[Any]]:
    """The live queue's rows: open requests, pending offers, the 15 latest outcomes."""
    found: list[list[Any]] = []
    async with db.engine.connect() as conn:
        for sql in (_OPEN_REQUESTS, _PENDING_OFFERS, _LATEST_OUTCOMES):
            found.append(list((await conn.execute(text(sql), {"c": cpts_id})).all()))
    return found[0], found[1], found[2]


EXPORTS: dict[str, tuple[str, str, str]] = {  # table, date column, which rows are the CPTS's
    "requests": ("ops_request", "received_at", "(patient_cpts = :c OR appointment_cpts = :c)"),
    "offers": ("ops_offer", "proposed_at", "cpts_id = :c"),
    "slots": ("ops_slot", "start", "rpps IN (SELECT rpps FROM ops_professional_version WHERE cpts_id = :c)"),
    "professionals": ("ops_professional_version", "at", "cpts_id = :c"),
}


async def export_rows(
    db: Database, kind: str, cpts_id: str, first: date, last: date
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The CPTS's rows behind the figures, for a CSV (no patient identity is in the read model).
    `kind` is one of EXPORTS (the route checks it): the SQL names come from there, never from input."""
    table, column, mine = EXPORTS[kind]
    start, end = bounds(first, last)
    async with db.engine.connect() as conn:
        result = await conn.execute(
            text(f"SELECT * FROM {table} WHERE {column} >= :a AND {column} < :b AND {mine} ORDER BY {column}"),
            {"a": start - timedelta(days=3) if kind == "requests" else start, "b": end, "c": cpts_id},
        )
        return list(result.keys()), [tuple(r) for r in result.all()]
