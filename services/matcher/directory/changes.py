"""What every directory write shares: its dependencies, the events that announce a change, and
the pending offers a change makes impossible (voided: the cascade then goes on, see
OfferInvalidated)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from schemas.events import OfferInvalidated, ProfessionalChanged, SlotChanged
from schemas.topics import Topics
from services.common.db import Transaction
from services.matcher.adapters import models, repository
from services.matcher.directory.errors import NotFound
from services.matcher.directory.ports import DirectoryStorage, DirectoryStore
from services.matcher.domain import matching


@dataclass(frozen=True)
class DirectoryPart:
    """A part of the directory. Each write refreshes this process's candidate index before it
    returns (`on_change`, with what changed); other matcher processes hear of it through
    PostgreSQL notifications."""

    storage: DirectoryStorage
    clock: Callable[[], datetime]
    topics: Topics
    on_change: Callable[[list[str]], Awaitable[None]]


def announce_slot(tx: Transaction, topics: Topics, slot: models.Slot, now: datetime) -> None:
    tx.emit(
        topics.directory,
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


def announce_professional(tx: Transaction, topics: Topics, pro: models.ProfessionalRow, now: datetime) -> None:
    tx.emit(
        topics.directory,
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


async def withdraw_free_slots(
    tx: Transaction, store: DirectoryStore, topics: Topics, rpps: str, site_id: str | None, now: datetime
) -> None:
    """A professional's free slots (at a site that closed, or all) withdrawn and announced."""
    for slot in await store.withdraw_free_slots(rpps=rpps, site_id=site_id, now=now):
        announce_slot(tx, topics, slot, now)


async def void_impossible_offers(
    tx: Transaction, store: DirectoryStore, topics: Topics, rpps: str, now: datetime
) -> None:
    """The professional's pending offers their changed card no longer allows are voided."""
    pro = await store.get(models.ProfessionalRow, rpps)
    assert pro is not None
    for offer in await store.pending_offers_of(rpps):
        site = await store.get(models.SiteRow, (rpps, offer.site_id))
        end = offer.window_end
        if offer.slot_id:
            slot = await store.get(models.Slot, offer.slot_id)
            end = slot.end if slot else offer.start
        assert site is not None and end is not None
        reason = matching.offer_still_possible(
            repository.to_domain_professional(pro), repository.to_domain_site(site), offer.kind, offer.start, end
        )
        if reason:
            tx.emit(
                topics.matching,
                OfferInvalidated(request_id=offer.request_id, offer_id=offer.offer_id, reason=reason),
                now,
            )


async def professional_changed(
    tx: Transaction, store: DirectoryStore, topics: Topics, pro: models.ProfessionalRow, now: datetime
) -> None:
    """After any change to a professional's card: the offers it makes impossible voided, the
    change announced (written first, so that the offers are judged against the new card)."""
    await store.flush()
    await void_impossible_offers(tx, store, topics, pro.rpps, now)
    announce_professional(tx, topics, pro, now)


async def professional_for_change(store: DirectoryStore, rpps: str) -> models.ProfessionalRow:
    """The professional's row, locked; NotFound when the directory does not have them."""
    pro = await store.get(models.ProfessionalRow, rpps, lock=True)
    if pro is None:
        raise NotFound(f"no professional {rpps}")
    return pro
