"""Professionals, their practice sites and their own settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from schemas.events import ProfessionalLinkRequested
from services.common.audit import Actor
from services.matcher.adapters import models
from services.matcher.directory.changes import (
    DirectoryPart,
    professional_changed,
    professional_for_change,
    withdraw_free_slots,
)
from services.matcher.directory.errors import NotFound


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


class Professionals(DirectoryPart):
    async def put(
        self, rpps: str, fields: dict[str, Any], sites: list[SiteInput]
    ) -> tuple[models.ProfessionalRow, list[models.SiteRow], bool]:
        """Create or replace a professional and their sites; a site left out is deactivated
        (its free slots withdrawn), since slots and past offers still refer to it."""
        now = self.clock()
        async with self.storage.transaction() as tx:
            store = self.storage.store(tx)
            pro = await store.get(models.ProfessionalRow, rpps, lock=True)
            created = pro is None
            values = {"rpps": rpps, "active": True, **fields, "updated_at": now}
            pro = store.upsert(pro, models.ProfessionalRow, values)
            await store.flush()
            existing = await store.sites_of(rpps)
            kept = [
                store.upsert(
                    existing.pop(given.site_id, None),
                    models.SiteRow,
                    {"rpps": rpps, **vars(given), "active": True},
                )
                for given in sites
            ]
            for gone in existing.values():
                gone.active = False
                await withdraw_free_slots(tx, store, self.topics, rpps, gone.site_id, now)
            if not pro.active:
                await withdraw_free_slots(tx, store, self.topics, rpps, None, now)
            await professional_changed(tx, store, self.topics, pro, now)
        await self.on_change([f"professional:{rpps}", f"load:{rpps}"])
        return pro, kept, created

    async def deactivate(self, rpps: str) -> None:
        """The professional stops taking SAS patients: free slots withdrawn, pending offer voided."""
        now = self.clock()
        async with self.storage.transaction() as tx:
            store = self.storage.store(tx)
            pro = await professional_for_change(store, rpps)
            pro.active, pro.updated_at = False, now
            await withdraw_free_slots(tx, store, self.topics, rpps, None, now)
            await professional_changed(tx, store, self.topics, pro, now)
        await self.on_change([f"professional:{rpps}"])

    async def change_settings(
        self, rpps: str, fields: dict[str, Any], recorded: tuple[Actor, str] | None = None
    ) -> models.ProfessionalRow:
        """A professional's own settings (pause, extra patients, channels, links), from their page
        or a coordinator: they take effect for the next match. `recorded`: who did it and the
        audit trail's action for it."""
        now = self.clock()
        async with self.storage.transaction() as tx:
            store = self.storage.store(tx)
            pro = await professional_for_change(store, rpps)
            if recorded is not None:
                by, action = recorded
                shown = ", ".join(f"{k}={v.isoformat() if hasattr(v, 'isoformat') else v}" for k, v in fields.items())
                await store.record(by, action, now, f"{rpps} {shown}")
            for key, value in fields.items():
                setattr(pro, key, value)
            pro.updated_at = now
            await professional_changed(tx, store, self.topics, pro, now)
        await self.on_change([f"professional:{rpps}"])
        return pro

    async def request_link(self, email: str, quiet: timedelta) -> int:
        """ "Send me my link": the active professionals who give this e-mail address are each sent
        their personal link (the notifier writes the e-mail), at most once per `quiet` period.
        Returns how many were sent one (the page says the same thing whatever the answer)."""
        now = self.clock()
        sent = 0
        async with self.storage.transaction() as tx:
            store = self.storage.store(tx)
            for pro in await store.active_with_email(email):
                if pro.link_sent_at is not None and now - pro.link_sent_at < quiet:
                    continue
                pro.link_sent_at = now
                requested = ProfessionalLinkRequested(
                    rpps=pro.rpps, name=pro.name, email=email.strip(), requested_at=now
                )
                tx.emit(self.topics.matching, requested, now)
                sent += 1
        return sent

    async def get(self, rpps: str) -> tuple[models.ProfessionalRow, list[models.SiteRow]]:
        """A professional and their open sites."""
        async with self.storage.transaction() as tx:
            store = self.storage.store(tx)
            pro = await store.get(models.ProfessionalRow, rpps)
            if pro is None:
                raise NotFound(f"no professional {rpps}")
            sites = await store.open_sites_of([rpps])
        return pro, sites.get(rpps, [])

    async def page(
        self, cpts_id: str, profession: str | None, commune_insee: str | None, limit: int, offset: int
    ) -> tuple[int, list[tuple[models.ProfessionalRow, list[models.SiteRow]]]]:
        """A territory's professionals, by name, a page at a time, with their open sites."""
        async with self.storage.transaction() as tx:
            store = self.storage.store(tx)
            total, pros = await store.professionals_page(
                cpts_id=cpts_id,
                profession=profession,
                commune_insee=commune_insee,
                limit=limit,
                offset=offset,
            )
            sites = await store.open_sites_of([p.rpps for p in pros])
        return total, [(p, sites.get(p.rpps, [])) for p in pros]

    async def cpts_of(self, rpps: str) -> tuple[bool, str | None]:
        """Whether the professional is known, and their CPTS (who may write their card)."""
        async with self.storage.transaction() as tx:
            store = self.storage.store(tx)
            return await store.cpts_of(rpps)

    async def channels_of(self, rpps: str) -> list[dict[str, Any]]:
        """The professional's channels as stored (none for one not known yet)."""
        async with self.storage.transaction() as tx:
            store = self.storage.store(tx)
            return await store.channels_of(rpps)
