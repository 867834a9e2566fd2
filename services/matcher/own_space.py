"""A professional's own page (espace professionnel), behind their personal link: what they see
(upcoming SAS appointments, offers waiting for an answer, their slots) and what they change
themselves (slots, extra patients, a pause, channels, their links). Every change goes through
the directory, so it takes effect for the next match."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from services.common import personal_link
from services.common.audit import SYSTEM, Actor
from services.common.clock import PARIS
from services.common.db import Database
from services.matcher.adapters import models, professional_space, repository
from services.matcher.directory import Directory
from services.matcher.directory.errors import SlotBusy, SlotOverlap
from services.matcher.domain import own_space
from services.matcher.domain.opening_hours import is_open_throughout

LINK_EMAIL_QUIET = timedelta(minutes=5)  # one "send me my link" e-mail per professional in that time


class LinkRefused(Exception):
    """The link cannot open a page: `unknown` (not ours), `expired`, or `revoked`."""

    def __init__(self, state: str) -> None:
        super().__init__(state)
        self.state = state


@dataclass(frozen=True)
class Appointment:
    """An upcoming SAS appointment, from the cascade or booked by the national platform."""

    start: datetime
    site_name: str
    mode: str
    source: str  # sas | platform


@dataclass(frozen=True)
class SpaceView:
    professional: models.ProfessionalRow
    sites: list[models.SiteRow]
    appointments: list[Appointment]
    pending: list[models.MatchOffer]
    slots: list[models.Slot]  # today and the coming days, not withdrawn
    link: personal_link.PersonalLink
    now: datetime

    @property
    def paused_through(self) -> date | None:
        return own_space.last_paused_day(self.professional.paused_until, self.now)

    @property
    def no_overflow_today(self) -> bool:
        return self.professional.no_overflow_on == own_space.today(self.now)


def _appointments(
    sites: list[models.SiteRow],
    offers: list[models.MatchOffer],
    booked: list[models.PlatformAppointment],
    slots: list[models.Slot],
) -> list[Appointment]:
    """Accepted offers and the platform's bookings, in time order, each with its site's name."""
    names = {s.site_id: s.name for s in sites}
    of_slot = {s.slot_id: s for s in slots}
    found = [
        Appointment(o.start, names.get(o.site_id, o.site_id), o.mode, "sas")
        for o in offers
        if o.status == models.OfferState.ACCEPTED
    ]
    for b in booked:
        slot = of_slot.get(b.slot_id)
        site, mode = (slot.site_id, slot.mode) if slot else ("", "in_person")
        found.append(Appointment(b.start, names.get(site, ""), mode, "platform"))
    return sorted(found, key=lambda a: a.start)


def _pending(offers: list[models.MatchOffer]) -> list[models.MatchOffer]:
    return [o for o in offers if o.status == models.OfferState.PENDING]


class ProfessionalSpace:
    def __init__(self, db: Database, clock: Callable[[], datetime], secret: bytes, directory: Directory) -> None:
        self.db, self.clock, self.secret, self.directory = db, clock, secret, directory

    async def professional(self, token: str) -> tuple[models.ProfessionalRow, personal_link.PersonalLink]:
        """The professional a link opens; LinkRefused when it does not."""
        link = personal_link.read(self.secret, token)
        if link is None:
            raise LinkRefused("unknown")
        async with self.db.transaction() as tx:
            pro = await tx.session.get(models.ProfessionalRow, link.rpps)
        if pro is None or not pro.active:
            raise LinkRefused("unknown")
        if not link.usable(self.clock(), pro.links_valid_from):
            revoked = pro.links_valid_from is not None and link.issued_at < pro.links_valid_from
            raise LinkRefused("revoked" if revoked else "expired")
        return pro, link

    async def view(self, token: str) -> SpaceView:
        pro, link = await self.professional(token)
        now = self.clock()
        since = now - timedelta(hours=1)  # the appointment under way still shows
        horizon = datetime.combine(own_space.today(now) + timedelta(days=own_space.PUBLISH_DAYS), time(0), tzinfo=PARIS)
        mine = pro.rpps
        async with self.db.transaction() as tx:
            sites, offers, booked, slots = await professional_space.space_of(
                tx.session, rpps=mine, since=since, horizon=horizon
            )
        return SpaceView(pro, sites, _appointments(sites, offers, booked, slots), _pending(offers), slots, link, now)

    # --- what the professional changes ----------------------------------------------------------

    async def publish(self, token: str, site_id: str, day: date, at: time, minutes: int, mode: str) -> models.Slot:
        """A new free slot, offered from the next match on."""
        pro, _ = await self.professional(token)
        now = self.clock()
        wanted = own_space.new_slot(day, at, minutes, now)
        async with self.db.transaction() as tx:
            site = await tx.session.get(models.SiteRow, (pro.rpps, site_id))
        if site is None or not site.active:
            raise own_space.Refused("site", "Choisissez l'un de vos lieux d'exercice.")
        practice = repository.to_domain_site(site)
        if not is_open_throughout(practice.hours, wanted.start, wanted.end, practice.department, practice.closures):
            raise own_space.Refused(
                "time", "Votre cabinet est fermé à cette heure-là : le créneau ne serait jamais proposé."
            )
        slot_id = own_space.own_slot_id(pro.rpps, site_id, wanted.start)
        try:
            slot, _ = await self.directory.slots.put(
                slot_id, pro.rpps, site_id, wanted.start, wanted.end, mode, alone=True
            )
        except (SlotOverlap, SlotBusy):  # SlotBusy: the same start, offered or booked already
            raise own_space.Refused("time", "Vous avez déjà un créneau à cette heure-là.") from None
        return slot

    async def withdraw(self, token: str, slot_id: str) -> None:
        pro, _ = await self.professional(token)
        slot = await self.directory.slots.get(slot_id)
        if slot.rpps != pro.rpps:
            raise own_space.Refused("slot", "Ce créneau n'est pas le vôtre.")
        if slot.state != models.SlotState.FREE:
            raise own_space.Refused("slot", "Ce créneau est déjà proposé ou réservé : il ne peut plus être retiré ici.")
        await self.directory.slots.withdraw(slot_id)

    async def set_overflow(self, token: str, accepts: bool, cap: int) -> None:
        pro, _ = await self.professional(token)
        accepts, cap = own_space.overflow_cap(accepts, cap)
        await self.directory.professionals.change_settings(
            pro.rpps, {"accepts_overflow": accepts, "overflow_daily_cap": cap}
        )

    async def not_today(self, token: str, closed: bool) -> None:
        """No extra patient today (Paris day), or extra patients today again."""
        pro, _ = await self.professional(token)
        await self.directory.professionals.change_settings(
            pro.rpps, {"no_overflow_on": own_space.today(self.clock()) if closed else None}
        )

    async def pause(self, token: str, last_day: date | None) -> None:
        pro, _ = await self.professional(token)
        await self.pause_of(pro.rpps, last_day, Actor("professional", pro.rpps))

    async def pause_of(self, rpps: str, last_day: date | None, by: Actor = SYSTEM) -> models.ProfessionalRow:
        """No offers until the end of `last_day` (Paris); None ends the pause now. From the
        professional's page, a coordinator's page or the directory API (on the audit trail)."""
        until = own_space.pause_end(last_day, self.clock()) if last_day else None
        action = "professional.paused" if until else "professional.resumed"
        return await self.directory.professionals.change_settings(rpps, {"paused_until": until}, (by, action))

    async def set_channels(
        self, token: str, email: str | None, phone: str | None, by_email: bool, by_sms: bool
    ) -> None:
        pro, _ = await self.professional(token)
        chosen = own_space.channels(email, phone, by_email, by_sms, pro.channels or [])
        await self.directory.professionals.change_settings(
            pro.rpps, {"channels": chosen, "email": email, "phone": phone}
        )

    async def revoke_links(self, token: str) -> None:
        """Every link sent so far stops working, this one too (a new one by "send me my link")."""
        pro, _ = await self.professional(token)
        await self.revoke_links_of(pro.rpps)

    async def revoke_links_of(self, rpps: str) -> None:
        await self.directory.professionals.change_settings(
            rpps, {"links_valid_from": personal_link.revocation_time(self.clock())}
        )

    async def send_link(self, email: str) -> None:
        await self.directory.professionals.request_link(email, LINK_EMAIL_QUIET)
