"""The directory the matcher owns: territories, professionals with their sites, slots."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import func, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel, col, select

from schemas.events import (
    OfferInvalidated,
    ProfessionalChanged,
    ProfessionalLinkRequested,
    SlotChanged,
    TerritoryChanged,
)
from schemas.topics import Topics
from services.common import audit, geo
from services.common.audit import Actor
from services.common.clock import PARIS
from services.common.db import Database, Transaction
from services.matcher import models, repository
from services.matcher.domain import matching
from services.matcher.domain.availability import Recurring, expand, raw_of, rule_of
from services.matcher.domain.rpps import Listed

Row = TypeVar("Row", bound=SQLModel)


class UnknownReference(Exception):
    """A slot names a professional or a site the directory does not have."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class SlotBusy(Exception):
    """The slot is held for a pending offer or booked: it cannot be changed or withdrawn now."""


class NotFound(Exception):
    pass


class SlotOverlap(Exception):
    """The professional already has a slot (not withdrawn) at that time."""


@dataclass(frozen=True)
class SiteInput:
    site_id: str
    name: str
    commune_insee: str | None
    department: str | None
    lat: float
    lon: float
    opening_hours: dict[str, Any] | None
    closures: list[dict[str, str]] | None = None
    address: dict[str, str] | None = None  # line, postal_code, city


def _upsert(session: AsyncSession, row: Row | None, model: type[Row], values: dict[str, Any]) -> Row:
    """Update `row` with `values`, or create it when there is none yet."""
    if row is None:
        row = model(**values)
    else:
        for key, value in values.items():
            setattr(row, key, value)
    session.add(row)
    return row


class Directory:
    """Directory writes. Each one refreshes this process's candidate index before it returns
    (other matcher processes hear of it through PostgreSQL notifications), and voids the
    pending offers it makes impossible (the cascade then goes on, see OfferInvalidated)."""

    def __init__(
        self,
        db: Database,
        clock: Callable[[], datetime],
        topics: Topics,
        on_change: Callable[[list[str]], Awaitable[None]],
    ) -> None:
        self.db = db
        self.clock = clock
        self.topics = topics
        self.on_change = on_change

    async def put_territory(
        self,
        cpts_id: str,
        name: str,
        communes: list[str],
        radius_km: float,
        offer_timeout_minutes: float = 15.0,
        parallel_offers: int = 1,
        finess: str | None = None,
    ) -> tuple[models.TerritoryRow, bool]:
        async with self.db.transaction() as tx:
            territory = await tx.session.get(models.TerritoryRow, cpts_id, with_for_update=True)
            created = territory is None
            fields = {
                "name": name,
                "communes": communes,
                "radius_km": radius_km,
                "offer_timeout_minutes": offer_timeout_minutes,
                "parallel_offers": parallel_offers,
                "finess": finess,
                "updated_at": self.clock(),
            }
            territory = _upsert(tx.session, territory, models.TerritoryRow, {"cpts_id": cpts_id, **fields})
            now = territory.updated_at
            announced = TerritoryChanged(cpts_id=cpts_id, name=name, communes=communes, changed_at=now)
            tx.emit(self.topics.directory, announced, now)
        await self.on_change([f"territory:{cpts_id}"])
        return territory, created

    async def get_territory(self, cpts_id: str) -> models.TerritoryRow:
        async with self.db.transaction() as tx:
            found = await tx.session.get(models.TerritoryRow, cpts_id)
        if found is None:
            raise NotFound(f"no territory {cpts_id}")
        return found

    async def put_professional(
        self, rpps: str, fields: dict[str, Any], sites: list[SiteInput]
    ) -> tuple[models.ProfessionalRow, list[models.SiteRow], bool]:
        """Create or replace a professional and their sites; a site left out is deactivated
        (its free slots withdrawn), since slots and past offers still refer to it."""
        now = self.clock()
        async with self.db.transaction() as tx:
            pro = await tx.session.get(models.ProfessionalRow, rpps, with_for_update=True)
            created = pro is None
            pro = _upsert(
                tx.session, pro, models.ProfessionalRow, {"rpps": rpps, "active": True, **fields, "updated_at": now}
            )
            await tx.session.flush()
            existing = await repository.sites_of(tx.session, rpps=rpps)
            kept: list[models.SiteRow] = []
            for given in sites:
                values = {
                    "rpps": rpps,
                    "site_id": given.site_id,
                    "name": given.name,
                    "commune_insee": given.commune_insee,
                    "department": given.department,
                    "lat": given.lat,
                    "lon": given.lon,
                    "opening_hours": given.opening_hours,
                    "closures": given.closures,
                    "address": given.address,
                    "active": True,
                }
                kept.append(_upsert(tx.session, existing.pop(given.site_id, None), models.SiteRow, values))
            for gone in existing.values():
                gone.active = False
                await self._withdraw_free_slots(tx, rpps, gone.site_id, now)
            if not pro.active:
                await self._withdraw_free_slots(tx, rpps, None, now)
            await tx.session.flush()
            await self._void_impossible_offers(tx, rpps, now)
            self._announce_professional(tx, pro, now)
        await self.on_change([f"professional:{rpps}", f"load:{rpps}"])
        return pro, kept, created

    async def import_listed(self, listed: Listed, cpts_id: str) -> str:
        """Create or update a professional from the national directory: `created`, `updated` or
        `unchanged`. Only what the directory knows changes — name, profession, the practices it
        lists (sites `rpps-…`, a practice it no longer lists is closed); a professional's own
        settings (participation, overflow, caps, channels, sites entered by hand) are left as
        they are. A new professional does not take part in the SAS until someone says so."""
        now = self.clock()
        async with self.db.transaction() as tx:
            pro = await tx.session.get(models.ProfessionalRow, listed.rpps, with_for_update=True)
            created = pro is None
            if pro is None:
                email = next((p.email for p in listed.practices if p.email), None)
                pro = models.ProfessionalRow(
                    rpps=listed.rpps,
                    name=listed.name,
                    profession=listed.profession,
                    cpts_id=cpts_id,
                    email=email,
                    channels=[{"type": "email", "destination": email}] if email else [],
                    updated_at=now,
                )
                tx.session.add(pro)
                await tx.session.flush()
            changed = created or (pro.name, pro.profession) != (listed.name, listed.profession)
            pro.name, pro.profession = listed.name, listed.profession
            existing = await repository.sites_of(tx.session, rpps=listed.rpps)
            for practice in listed.practices:
                place = geo.commune(practice.commune_insee)
                if place is None:
                    continue
                values = {
                    "name": practice.name,
                    "commune_insee": place.current,
                    "department": place.department,
                    "lat": place.lat,
                    "lon": place.lon,
                    "address": practice.address,
                    "active": True,
                }
                site = existing.pop(practice.site_id, None)
                if site is None or any(getattr(site, k) != v for k, v in values.items()):
                    changed = True
                    _upsert(
                        tx.session, site, models.SiteRow, {"rpps": listed.rpps, "site_id": practice.site_id, **values}
                    )
            for gone in existing.values():
                if gone.site_id.startswith("rpps-") and gone.active:  # no longer listed: closed
                    changed, gone.active = True, False
                    await self._withdraw_free_slots(tx, listed.rpps, gone.site_id, now)
            if changed:
                pro.updated_at = now
                await tx.session.flush()
                await self._void_impossible_offers(tx, listed.rpps, now)
                self._announce_professional(tx, pro, now)
        if changed:
            await self.on_change([f"professional:{listed.rpps}"])
        return "created" if created else "updated" if changed else "unchanged"

    async def deactivate_professional(self, rpps: str) -> None:
        """The professional stops taking SAS patients: free slots withdrawn, pending offer voided."""
        now = self.clock()
        async with self.db.transaction() as tx:
            pro = await tx.session.get(models.ProfessionalRow, rpps, with_for_update=True)
            if pro is None:
                raise NotFound(f"no professional {rpps}")
            pro.active, pro.updated_at = False, now
            await self._withdraw_free_slots(tx, rpps, None, now)
            await tx.session.flush()
            await self._void_impossible_offers(tx, rpps, now)
            self._announce_professional(tx, pro, now)
        await self.on_change([f"professional:{rpps}"])

    async def change_settings(
        self, rpps: str, fields: dict[str, Any], recorded: tuple[Actor, str] | None = None
    ) -> models.ProfessionalRow:
        """A professional's own settings (pause, extra patients, channels, links), from their page
        or a coordinator: they take effect for the next match. `recorded`: who did it and the
        audit trail's action for it."""
        now = self.clock()
        async with self.db.transaction() as tx:
            pro = await tx.session.get(models.ProfessionalRow, rpps, with_for_update=True)
            if pro is None:
                raise NotFound(f"no professional {rpps}")
            if recorded is not None:
                by, action = recorded
                shown = ", ".join(f"{k}={v.isoformat() if hasattr(v, 'isoformat') else v}" for k, v in fields.items())
                await audit.record(tx.session, by, action, None, now, detail=f"{rpps} {shown}")
            for key, value in fields.items():
                setattr(pro, key, value)
            pro.updated_at = now
            await tx.session.flush()
            await self._void_impossible_offers(tx, rpps, now)
            self._announce_professional(tx, pro, now)
        await self.on_change([f"professional:{rpps}"])
        return pro

    async def request_link(self, email: str, quiet: timedelta) -> int:
        """ "Send me my link": the active professionals who give this e-mail address are each sent
        their personal link (the notifier writes the e-mail), at most once per `quiet` period.
        Returns how many were sent one (the page says the same thing whatever the answer)."""
        now = self.clock()
        address = email.strip().lower()
        as_channel = func.jsonb_build_array(func.jsonb_build_object("type", "email", "destination", email.strip()))
        async with self.db.transaction() as tx:
            found = await tx.session.execute(
                select(models.ProfessionalRow)
                .where(
                    col(models.ProfessionalRow.active),
                    (func.lower(col(models.ProfessionalRow.email)) == address)
                    | col(models.ProfessionalRow.channels).op("@>")(as_channel),
                )
                .limit(5)
                .with_for_update()
            )
            sent = 0
            for pro in found.scalars():
                if pro.link_sent_at is not None and now - pro.link_sent_at < quiet:
                    continue
                pro.link_sent_at = now
                requested = ProfessionalLinkRequested(
                    rpps=pro.rpps, name=pro.name, email=email.strip(), requested_at=now
                )
                tx.emit(self.topics.matching, requested, now)
                sent += 1
        return sent

    async def _withdraw_free_slots(self, tx: Transaction, rpps: str, site_id: str | None, now: datetime) -> None:
        where = [col(models.Slot.rpps) == rpps, col(models.Slot.state) == models.SlotState.FREE]
        if site_id is not None:
            where.append(col(models.Slot.site_id) == site_id)
        gone = await tx.session.execute(
            update(models.Slot)
            .where(*where)
            .values(state=models.SlotState.WITHDRAWN, updated_at=now)
            .returning(models.Slot)
        )
        for slot in gone.scalars().all():
            self._announce_slot(tx, slot, now)

    def _announce_slot(self, tx: Transaction, slot: models.Slot, now: datetime) -> None:
        tx.emit(
            self.topics.directory,
            SlotChanged(
                slot_id=slot.slot_id,
                rpps=slot.rpps,
                start=slot.start,
                end=slot.end,
                mode=slot.mode,
                state="withdrawn" if slot.state == models.SlotState.WITHDRAWN else "free",
                changed_at=now,
            ),
            now,
        )

    def _announce_professional(self, tx: Transaction, pro: models.ProfessionalRow, now: datetime) -> None:
        tx.emit(
            self.topics.directory,
            ProfessionalChanged(
                rpps=pro.rpps,
                name=pro.name,
                profession=pro.profession,
                cpts_id=pro.cpts_id,
                sas_participation=pro.sas_participation,
                active=pro.active,
                paused_until=pro.paused_until,
                changed_at=now,
            ),
            now,
        )

    async def _void_impossible_offers(self, tx: Transaction, rpps: str, now: datetime) -> None:
        pro = await tx.session.get(models.ProfessionalRow, rpps)
        assert pro is not None
        for offer in await repository.pending_offers_of(tx.session, rpps):
            site = await tx.session.get(models.SiteRow, (rpps, offer.site_id))
            end = offer.window_end
            if offer.slot_id:
                slot = await tx.session.get(models.Slot, offer.slot_id)
                end = slot.end if slot else offer.start
            assert site is not None and end is not None
            reason = matching.offer_still_possible(
                repository.to_domain_professional(pro), repository.to_domain_site(site), offer.kind, offer.start, end
            )
            if reason:
                tx.emit(
                    self.topics.matching,
                    OfferInvalidated(request_id=offer.request_id, offer_id=offer.offer_id, reason=reason),
                    now,
                )

    async def get_professional(self, rpps: str) -> tuple[models.ProfessionalRow, list[models.SiteRow]]:
        async with self.db.transaction() as tx:
            pro = await tx.session.get(models.ProfessionalRow, rpps)
            if pro is None:
                raise NotFound(f"no professional {rpps}")
            sites = (
                (
                    await tx.session.execute(
                        select(models.SiteRow)
                        .where(col(models.SiteRow.rpps) == rpps, col(models.SiteRow.active))
                        .order_by(col(models.SiteRow.site_id))
                    )
                )
                .scalars()
                .all()
            )
        return pro, list(sites)

    async def put_slot(
        self, slot_id: str, rpps: str, site_id: str, start: datetime, end: datetime, mode: str, alone: bool = False
    ) -> tuple[models.Slot, bool]:
        """Create or change a free slot; `alone`: refuse it when another slot of the professional
        overlaps it (checked under the professional's row lock: two at once cannot both pass)."""
        async with self.db.transaction() as tx:
            pro = await tx.session.get(models.ProfessionalRow, rpps, with_for_update=alone)
            if pro is None or not pro.active:
                raise UnknownReference("rpps", f"no active professional {rpps} in the directory")
            site = await tx.session.get(models.SiteRow, (rpps, site_id))
            if site is None or not site.active:
                raise UnknownReference("site_id", f"professional {rpps} has no site {site_id}")
            if alone and await self._overlapping(tx, slot_id, rpps, start, end):
                raise SlotOverlap(f"professional {rpps} already has a slot between {start} and {end}")
            slot = await tx.session.get(models.Slot, slot_id, with_for_update=True)
            created = slot is None
            if slot is not None and slot.state in (models.SlotState.HELD, models.SlotState.BOOKED):
                raise SlotBusy(f"slot {slot_id} is {slot.state}: it cannot be changed now")
            values = {
                "slot_id": slot_id,
                "rpps": rpps,
                "site_id": site_id,
                "start": start,
                "end": end,
                "mode": mode,
                "state": models.SlotState.FREE,
                "request_id": None,
                "offer_id": None,
                "updated_at": self.clock(),
            }
            slot = _upsert(tx.session, slot, models.Slot, values)
            self._announce_slot(tx, slot, self.clock())
        await self.on_change([f"slot:{slot_id}"])
        return slot, created

    async def _overlapping(self, tx: Transaction, slot_id: str, rpps: str, start: datetime, end: datetime) -> bool:
        found = await tx.session.execute(
            select(models.Slot.slot_id)
            .where(
                col(models.Slot.rpps) == rpps,
                col(models.Slot.slot_id) != slot_id,
                col(models.Slot.state) != models.SlotState.WITHDRAWN,
                col(models.Slot.start) < end,
                col(models.Slot.end) > start,
            )
            .limit(1)
        )
        return found.first() is not None

    async def list_professionals(
        self, cpts_id: str, profession: str | None, commune_insee: str | None, limit: int, offset: int
    ) -> tuple[int, list[tuple[models.ProfessionalRow, list[models.SiteRow]]]]:
        """A territory's professionals, by name, a page at a time, with their active sites."""
        query = select(models.ProfessionalRow).where(col(models.ProfessionalRow.cpts_id) == cpts_id)
        if profession:
            query = query.where(col(models.ProfessionalRow.profession) == profession)
        if commune_insee:
            at_commune = select(models.SiteRow.rpps).where(
                col(models.SiteRow.commune_insee) == commune_insee, col(models.SiteRow.active)
            )
            query = query.where(col(models.ProfessionalRow.rpps).in_(at_commune))
        async with self.db.transaction() as tx:
            total = (await tx.session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
            page = (
                query.order_by(col(models.ProfessionalRow.name), col(models.ProfessionalRow.rpps))
                .limit(limit)
                .offset(offset)
            )
            pros = list((await tx.session.execute(page)).scalars())
            found = (
                await tx.session.execute(
                    select(models.SiteRow)
                    .where(col(models.SiteRow.rpps).in_([p.rpps for p in pros]), col(models.SiteRow.active))
                    .order_by(col(models.SiteRow.site_id))
                )
            ).scalars()
            sites: dict[str, list[models.SiteRow]] = {}
            for site in found:
                sites.setdefault(site.rpps, []).append(site)
        return int(total), [(p, sites.get(p.rpps, [])) for p in pros]

    async def list_slots(self, rpps: str, start: datetime, end: datetime, limit: int) -> list[models.Slot]:
        """A professional's slots starting in [start, end), in time order (any state)."""
        async with self.db.transaction() as tx:
            found = await tx.session.execute(
                select(models.Slot)
                .where(col(models.Slot.rpps) == rpps, col(models.Slot.start) >= start, col(models.Slot.start) < end)
                .order_by(col(models.Slot.start))
                .limit(limit)
            )
            return list(found.scalars())

    async def keep_availability(self, rpps: str, site_id: str, rules: list[Recurring], weeks: int) -> tuple[int, int]:
        """Keep the template (replacing the site's previous one) and expand it now; `expand_templates`
        fills the weeks ahead again every hour."""
        created = await self.add_availability(rpps, site_id, rules, weeks)
        stored = [raw_of(r) for r in rules]
        async with self.db.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO availability_template (rpps, site_id, rules, weeks, updated_at) "
                    "VALUES (:rpps, :site, CAST(:rules AS jsonb), :weeks, :now) ON CONFLICT (rpps, site_id) "
                    "DO UPDATE SET rules = excluded.rules, weeks = excluded.weeks, updated_at = excluded.updated_at"
                ),
                {"rpps": rpps, "site": site_id, "rules": json.dumps(stored), "weeks": weeks, "now": self.clock()},
            )
        return created

    async def expand_templates(self) -> int:
        """Every kept template expanded again (new days come into its window); returns slots created."""
        async with self.db.engine.connect() as conn:
            templates = list(await conn.execute(text("SELECT rpps, site_id, rules, weeks FROM availability_template")))
        created = 0
        for rpps, site_id, rules, weeks in templates:
            try:
                created += (await self.add_availability(rpps, site_id, [rule_of(r) for r in rules], weeks))[0]
            except UnknownReference:
                continue  # the professional or the site is gone: nothing to fill
        return created

    async def add_availability(self, rpps: str, site_id: str, rules: list[Recurring], weeks: int) -> tuple[int, int]:
        """The slots of a weekly template for the coming `weeks`, from now: those missing are
        created free; those already there (free, held, booked or withdrawn by the professional)
        are left as they are, so expanding again never duplicates nor revives a slot. Returns
        (created, already there)."""
        now = self.clock()
        async with self.db.transaction() as tx:
            pro = await tx.session.get(models.ProfessionalRow, rpps)
            site = await tx.session.get(models.SiteRow, (rpps, site_id))
            if pro is None or not pro.active:
                raise UnknownReference("rpps", f"no active professional {rpps} in the directory")
            if site is None or not site.active:
                raise UnknownReference("site_id", f"professional {rpps} has no site {site_id}")
            today = now.astimezone(PARIS).date()
            wanted = expand(rules, today, 7 * weeks, site.department, repository.closures_of(site.closures), now)
            ids = [f"tpl-{rpps}-{site_id}-{start.strftime('%Y%m%dT%H%MZ')}"[:100] for start, _, _ in wanted]
            there = set(
                (
                    await tx.session.execute(select(models.Slot.slot_id).where(col(models.Slot.slot_id).in_(ids)))
                ).scalars()
            )
            created: list[str] = []
            for slot_id, (start, end, mode) in zip(ids, wanted, strict=True):
                if slot_id in there:
                    continue
                slot = models.Slot(
                    slot_id=slot_id,
                    rpps=rpps,
                    site_id=site_id,
                    start=start,
                    end=end,
                    mode=mode,
                    state=models.SlotState.FREE,
                    updated_at=now,
                )
                tx.session.add(slot)
                self._announce_slot(tx, slot, now)
                created.append(slot_id)
        if created:
            await self.on_change([f"slot:{slot_id}" for slot_id in created])
        return len(created), len(wanted) - len(created)

    async def cpts_of(self, rpps: str) -> tuple[bool, str | None]:
        """Whether the professional is known, and their CPTS (who may write their card)."""
        async with self.db.transaction() as tx:
            found = (
                await tx.session.execute(
                    select(models.ProfessionalRow.cpts_id).where(col(models.ProfessionalRow.rpps) == rpps)
                )
            ).first()
        return (found is not None, found[0] if found else None)

    async def channels_of(self, rpps: str) -> list[dict[str, Any]]:
        """The professional's channels as stored (none for one not known yet)."""
        async with self.db.transaction() as tx:
            found = (
                await tx.session.execute(
                    select(models.ProfessionalRow.channels).where(col(models.ProfessionalRow.rpps) == rpps)
                )
            ).first()
        return list(found[0] or []) if found else []

    async def professional_of_slot(self, slot_id: str) -> str | None:
        async with self.db.transaction() as tx:
            found = (
                await tx.session.execute(select(models.Slot.rpps).where(col(models.Slot.slot_id) == slot_id))
            ).first()
        return found[0] if found else None

    async def get_slot(self, slot_id: str) -> models.Slot:
        async with self.db.transaction() as tx:
            slot = await tx.session.get(models.Slot, slot_id)
        if slot is None:
            raise NotFound(f"no slot {slot_id}")
        return slot

    async def withdraw_slot(self, slot_id: str) -> None:
        """Withdraw a slot; one held for a pending offer is withdrawn too, and the offer voided."""
        now = self.clock()
        async with self.db.transaction() as tx:
            slot = await tx.session.get(models.Slot, slot_id, with_for_update=True)
            if slot is None:
                raise NotFound(f"no slot {slot_id}")
            if slot.state == models.SlotState.BOOKED:
                raise SlotBusy(f"slot {slot_id} is booked: cancel the appointment through the SAS instead")
            if slot.state == models.SlotState.HELD and slot.request_id and slot.offer_id:
                tx.emit(
                    self.topics.matching,
                    OfferInvalidated(
                        request_id=slot.request_id, offer_id=slot.offer_id, reason="the professional withdrew the slot"
                    ),
                    now,
                )
            slot.state, slot.updated_at = models.SlotState.WITHDRAWN, now
            self._announce_slot(tx, slot, now)
        await self.on_change([f"slot:{slot_id}"])

    async def is_empty(self) -> bool:
        async with self.db.transaction() as tx:
            return (await tx.session.execute(select(col(models.TerritoryRow.cpts_id)).limit(1))).first() is None
