"""Professionals as the national directory (RPPS) lists them, merged into ours."""

from __future__ import annotations

from typing import Any

from services.common import geo
from services.matcher.adapters import models
from services.matcher.directory.changes import (
    DirectoryPart,
    professional_changed,
    withdraw_free_slots,
)
from services.matcher.domain.rpps import Listed


class ListedProfessionals(DirectoryPart):
    async def merge(self, listed: Listed, cpts_id: str) -> str:
        """Create or update a professional from the national directory: `created`, `updated` or
        `unchanged`. Only what the directory knows changes — name, profession, the practices it
        lists (sites `rpps-…`, a practice it no longer lists is closed); a professional's own
        settings (participation, overflow, caps, channels, sites entered by hand) are left as
        they are. A new professional does not take part in the SAS until someone says so."""
        now = self.clock()
        async with self.storage.transaction() as tx:
            store = self.storage.store(tx)
            pro = await store.get(models.ProfessionalRow, listed.rpps, lock=True)
            created = pro is None
            if pro is None:
                pro = store.upsert(
                    None, models.ProfessionalRow, {**_new_professional(listed, cpts_id), "updated_at": now}
                )
                await store.flush()
            changed = created or (pro.name, pro.profession) != (listed.name, listed.profession)
            pro.name, pro.profession = listed.name, listed.profession
            existing = await store.sites_of(listed.rpps)
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
                    keys = {"rpps": listed.rpps, "site_id": practice.site_id}
                    store.upsert(site, models.SiteRow, {**keys, **values})
            for gone in existing.values():
                if gone.site_id.startswith("rpps-") and gone.active:  # no longer listed: closed
                    changed, gone.active = True, False
                    await withdraw_free_slots(tx, store, self.topics, listed.rpps, gone.site_id, now)
            if changed:
                pro.updated_at = now
                await professional_changed(tx, store, self.topics, pro, now)
        if changed:
            await self.on_change([f"professional:{listed.rpps}"])
        return "created" if created else "updated" if changed else "unchanged"


def _new_professional(listed: Listed, cpts_id: str) -> dict[str, Any]:
    """A professional the directory lists, not yet taking part: reached by the e-mail it gives."""
    email = next((p.email for p in listed.practices if p.email), None)
    return {
        "rpps": listed.rpps,
        "name": listed.name,
        "profession": listed.profession,
        "cpts_id": cpts_id,
        "email": email,
        "channels": [{"type": "email", "destination": email}] if email else [],
    }
