"""Weekly availability templates: kept, and expanded into free slots for the weeks ahead."""

from __future__ import annotations

from services.common.clock import PARIS
from services.matcher.adapters import models, repository
from services.matcher.directory.changes import DirectoryPart, announce_slot
from services.matcher.directory.errors import UnknownReference
from services.matcher.domain.availability import Recurring, expand, raw_of, rule_of


class Availability(DirectoryPart):
    async def keep(self, rpps: str, site_id: str, rules: list[Recurring], weeks: int) -> tuple[int, int]:
        """Keep the template (replacing the site's previous one) and expand it now;
        `expand_templates` fills the weeks ahead again every hour."""
        created = await self.add(rpps, site_id, rules, weeks)
        async with self.storage.transaction() as tx:
            store = self.storage.store(tx)
            stored = [raw_of(r) for r in rules]
            await store.keep_template(rpps=rpps, site_id=site_id, rules=stored, weeks=weeks, now=self.clock())
        return created

    async def expand_templates(self) -> int:
        """Every kept template expanded again (new days come into its window); returns slots created."""
        async with self.storage.transaction() as tx:
            store = self.storage.store(tx)
            kept = [(t.rpps, t.site_id, t.rules, t.weeks) for t in await store.templates()]
        created = 0
        for rpps, site_id, rules, weeks in kept:
            try:
                created += (await self.add(rpps, site_id, [rule_of(r) for r in rules], weeks))[0]
            except UnknownReference:
                continue  # the professional or the site is gone: nothing to fill
        return created

    async def add(self, rpps: str, site_id: str, rules: list[Recurring], weeks: int) -> tuple[int, int]:
        """The slots of a weekly template for the coming `weeks`, from now: those missing are
        created free; those already there (free, held, booked or withdrawn by the professional)
        are left as they are, so expanding again never duplicates nor revives a slot. Returns
        (created, already there)."""
        now = self.clock()
        async with self.storage.transaction() as tx:
            store = self.storage.store(tx)
            pro = await store.get(models.ProfessionalRow, rpps)
            site = await store.get(models.SiteRow, (rpps, site_id))
            if pro is None or not pro.active:
                raise UnknownReference("rpps", f"no active professional {rpps} in the directory")
            if site is None or not site.active:
                raise UnknownReference("site_id", f"professional {rpps} has no site {site_id}")
            today = now.astimezone(PARIS).date()
            wanted = expand(rules, today, 7 * weeks, site.department, repository.closures_of(site.closures), now)
            ids = [f"tpl-{rpps}-{site_id}-{start.strftime('%Y%m%dT%H%MZ')}"[:100] for start, _, _ in wanted]
            there = await store.existing_slot_ids(ids)
            created: list[str] = []
            for slot_id, (start, end, mode) in zip(ids, wanted, strict=True):
                if slot_id in there:
                    continue
                values = {"slot_id": slot_id, "rpps": rpps, "site_id": site_id, "start": start, "end": end}
                slot = store.add_free({**values, "mode": mode, "updated_at": now})
                announce_slot(tx, self.topics, slot, now)
                created.append(slot_id)
        if created:
            await self.on_change([f"slot:{slot_id}" for slot_id in created])
        return len(created), len(wanted) - len(created)
