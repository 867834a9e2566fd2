"""The directory's reads and writes of territories, professionals and their sites."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel, col, select

from services.matcher.adapters import models

Row = TypeVar("Row", bound=SQLModel)


def upsert(session: AsyncSession, row: Row | None, model: type[Row], values: dict[str, Any]) -> Row:
    """Update `row` with `values`, or create it when there is none yet."""
    if row is None:
        row = model(**values)
    else:
        for key, value in values.items():
            setattr(row, key, value)
    session.add(row)
    return row


async def any_territory(session: AsyncSession) -> bool:
    return (await session.execute(select(col(models.TerritoryRow.cpts_id)).limit(1))).first() is not None


async def sites_of(session: AsyncSession, *, rpps: str) -> dict[str, models.SiteRow]:
    """A professional's sites, open or closed, by site id."""
    rows = await session.execute(select(models.SiteRow).where(col(models.SiteRow.rpps) == rpps))
    return {site.site_id: site for site in rows.scalars()}


async def open_sites_of(session: AsyncSession, *, rpps: list[str]) -> dict[str, list[models.SiteRow]]:
    """These professionals' open sites, by professional, in site order."""
    found = await session.execute(
        select(models.SiteRow)
        .where(col(models.SiteRow.rpps).in_(rpps), col(models.SiteRow.active))
        .order_by(col(models.SiteRow.site_id))
    )
    sites: dict[str, list[models.SiteRow]] = {}
    for site in found.scalars():
        sites.setdefault(site.rpps, []).append(site)
    return sites


async def professionals_page(
    session: AsyncSession, *, cpts_id: str, profession: str | None, commune_insee: str | None, limit: int, offset: int
) -> tuple[int, list[models.ProfessionalRow]]:
    """A territory's professionals (of a profession, practising in a commune), by name: how
    many in all, and one page of them."""
    query = select(models.ProfessionalRow).where(col(models.ProfessionalRow.cpts_id) == cpts_id)
    if profession:
        query = query.where(col(models.ProfessionalRow.profession) == profession)
    if commune_insee:
        at_commune = select(models.SiteRow.rpps).where(
            col(models.SiteRow.commune_insee) == commune_insee, col(models.SiteRow.active)
        )
        query = query.where(col(models.ProfessionalRow.rpps).in_(at_commune))
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    page = (
        query.order_by(col(models.ProfessionalRow.name), col(models.ProfessionalRow.rpps)).limit(limit).offset(offset)
    )
    return int(total), list((await session.execute(page)).scalars())


async def cpts_of(session: AsyncSession, *, rpps: str) -> tuple[bool, str | None]:
    """Whether the professional is known, and their CPTS."""
    found = (
        await session.execute(select(models.ProfessionalRow.cpts_id).where(col(models.ProfessionalRow.rpps) == rpps))
    ).first()
    return (found is not None, found[0] if found else None)


async def channels_of(session: AsyncSession, *, rpps: str) -> list[dict[str, Any]]:
    """The professional's channels as stored (none for one not known yet)."""
    found = (
        await session.execute(select(models.ProfessionalRow.channels).where(col(models.ProfessionalRow.rpps) == rpps))
    ).first()
    return list(found[0] or []) if found else []


async def active_with_email(session: AsyncSession, *, email: str) -> list[models.ProfessionalRow]:
    """The active professionals who give this e-mail address (as theirs or as a channel), locked."""
    address = email.strip().lower()
    as_channel = func.jsonb_build_array(func.jsonb_build_object("type", "email", "destination", email.strip()))
    found = await session.execute(
        select(models.ProfessionalRow)
        .where(
            col(models.ProfessionalRow.active),
            (func.lower(col(models.ProfessionalRow.email)) == address)
            | col(models.ProfessionalRow.channels).op("@>")(as_channel),
        )
        .limit(5)
        .with_for_update()
    )
    return list(found.scalars())


async def keep_template(
    session: AsyncSession, *, rpps: str, site_id: str, rules: list[Any], weeks: int, now: Any
) -> None:
    """A site's weekly availability template kept (replacing the one it had)."""
    template = await session.get(models.AvailabilityTemplate, (rpps, site_id), with_for_update=True)
    upsert(
        session,
        template,
        models.AvailabilityTemplate,
        {"rpps": rpps, "site_id": site_id, "rules": rules, "weeks": weeks, "updated_at": now},
    )


async def templates(session: AsyncSession) -> list[models.AvailabilityTemplate]:
    return list((await session.execute(select(models.AvailabilityTemplate))).scalars())
