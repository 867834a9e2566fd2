"""Wiring of the matcher: directory routes and the events that drive the cascade."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from schemas.events import OfferAccepted, OfferExpired, OfferRefused, RequestCancelled, RequestReceived
from services.common.context import Context
from services.common.runtime import Handlers, ServicePart
from services.matcher.api import build_router
from services.matcher.directory import Directory
from services.matcher.service import MatcherService


def build(ctx: Context) -> tuple[Directory, ServicePart]:
    db = ctx.database("matcher")
    directory = Directory(db, ctx.clock)
    cascade = MatcherService(ctx.topics, ctx.clock, timedelta(minutes=ctx.settings.lead_time_minutes))
    handlers: Handlers = {
        RequestReceived: cascade.on_request_received,
        RequestCancelled: cascade.on_request_cancelled,
        OfferAccepted: cascade.on_offer_accepted,
        OfferRefused: cascade.on_offer_refused,
        OfferExpired: cascade.on_offer_expired,
    }
    part = ServicePart(
        name="matcher",
        db=db,
        migrations=Path(__file__).parent / "migrations",
        routers=[build_router(directory, ctx.require_regulator_key)],
        subscriptions=[([ctx.topics.requests, ctx.topics.offers], handlers)],
    )
    return directory, part
