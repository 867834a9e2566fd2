"""Wiring of the matcher: directory routes, the candidate index and the events of the cascade."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from schemas.events import (
    OfferAccepted,
    OfferExpired,
    OfferInvalidated,
    OfferRefused,
    PatientErased,
    RequestCancelled,
    RequestReceived,
)
from services.common.context import Context
from services.common.messaging import Pump
from services.common.parts import Handlers, ServicePart, Subscription
from services.matcher.adapters import repository
from services.matcher.adapters.allocation_store import SqlAllocationStorage
from services.matcher.adapters.index_sync import IndexSync
from services.matcher.allocation.cascade import Cascade
from services.matcher.allocation.handlers import Allocation
from services.matcher.allocation.waiting_list import Changes, WaitingList
from services.matcher.directory import Directory
from services.matcher.domain.index import DirectoryIndex
from services.matcher.entrypoints import api, pages
from services.matcher.entrypoints.fhir import api as fhir_api
from services.matcher.own_space import ProfessionalSpace
from services.matcher.platform import PlatformBookings

# an offer still pending 5 minutes past its time limit (`answer_by`, as the outbox has it; the
# longest a territory allows otherwise): the notifier never had it, or its answer never came
# (publishing the offer again makes a notifier that missed it expire it); services/common/reconcile.py
STUCK = repository.STUCK_OFFERS_SQL


ROUTERS = [api.router, api.internal, fhir_api.router, pages.router]  # the paths it serves: services/routing.py


@dataclass(frozen=True)
class Matcher:
    """The matcher as the composition root needs it: its part, and what other services use in-process."""

    directory: Directory  # the demo data is loaded through it
    space: ProfessionalSpace  # the operations service pauses professionals through it
    part: ServicePart


def handlers(allocation: Allocation) -> Handlers:
    """The cascade's events: requests, answers, offers voided by a directory change."""
    return {
        RequestReceived: allocation.on_request_received,
        RequestCancelled: allocation.on_request_cancelled,
        PatientErased: allocation.on_patient_erased,
        OfferAccepted: allocation.on_offer_accepted,
        OfferRefused: allocation.on_offer_refused,
        OfferExpired: allocation.on_offer_expired,
        OfferInvalidated: allocation.on_offer_invalidated,
    }


def build(ctx: Context) -> Matcher:
    db = ctx.database("matcher")
    index = DirectoryIndex()
    lead_time = timedelta(minutes=ctx.settings.lead_time_minutes)
    # waiting requests: looked at again after the changes the index takes in (those of 50 ms
    # together: under load the index changes several times per request), and on time; the pump
    # is given the list to serve as it is made, the list's changes are given the pump's poke
    waiting = Pump("matcher-waiting", lambda: waiting_list.serve(), ctx.settings.sweep_interval_seconds, min_gap=0.05)
    changes = Changes(waiting.poke)
    sync = IndexSync(db, index, ctx.clock, on_change=changes.professionals_changed, listener=ctx.listener)
    directory = Directory.build(db, ctx.clock, ctx.topics, sync.reload)
    storage = SqlAllocationStorage(db, ctx.vault)
    timeout = ctx.settings.offer_timeout_minutes
    cascade = Cascade(storage, ctx.topics, lead_time, index, timeout, changes.just_waiting)
    waiting_list = WaitingList(storage, ctx.clock, lead_time, index, cascade, changes)
    allocation = Allocation(storage, ctx.topics, ctx.clock, cascade)
    space = ProfessionalSpace(db, ctx.clock, ctx.secret, directory)
    part = ServicePart(
        name="matcher",
        db=db,
        migrations=Path(__file__).parent / "migrations",
        routers=ROUTERS,
        provides=[
            directory,
            PlatformBookings(db, ctx.clock, ctx.topics),
            space,
            pages.SpacePages(space, pages.templates()),
        ],
        problems=api.PROBLEMS,
        refusals={"/fhir": fhir_api.refusal},
        subscriptions=[
            # claims lock professionals: one event per transaction (see EventConsumer.together)
            Subscription(
                "matcher",
                [ctx.topics.requests, ctx.topics.offers, ctx.topics.matching],
                handlers(allocation),
                together=False,
            )
        ],
        pumps=[waiting],
        on_start=[sync.start],
        on_stop=[sync.stop],
        # ... and 15 minutes past it, the matcher ends it itself and goes on
        local_timers=[(lambda: _forget_past(index, ctx), 3600.0)],  # each process's own index
        timers=[
            (allocation.expire_overdue, 60.0),
            (directory.availability.expand_templates, 3600.0),  # weekly availability: the weeks ahead filled again
        ],
        stuck=STUCK,
    )
    return Matcher(directory, space, part)


async def _forget_past(index: DirectoryIndex, ctx: Context) -> None:
    index.drop_past(ctx.clock())
