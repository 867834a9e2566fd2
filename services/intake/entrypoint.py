"""Wiring of the intake: its database, routes and the events it listens to."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from schemas.events import AppointmentConfirmed, OfferProposed, RequestUnresolved, RequestWaiting, SearchStarted
from services.common.access.accounts import Accounts
from services.common.context import Context
from services.common.messaging import Pump
from services.common.parts import Handlers, ServicePart, Subscription
from services.intake import api, console, pages
from services.intake.callbacks import CallbackSecrets
from services.intake.retention import Retention
from services.intake.service import IntakeService

# received a minute ago and the matcher has not said it is searching (services/common/reconcile.py)
STUCK = (
    "SELECT request_id FROM orientation_request WHERE status = 'received' AND created_at < now() - interval '1 minute'"
)


ROUTERS = [api.router, api.internal, pages.front, console.router]  # the paths it serves: services/routing.py


def build(ctx: Context) -> tuple[IntakeService, ServicePart]:
    db = ctx.database("intake")
    secrets = CallbackSecrets(ctx.clients, ctx.settings.callback_secret)
    s = ctx.settings
    retention = Retention(
        after_end=timedelta(hours=s.contact_retention_after_end_hours),
        patient_data=timedelta(days=s.patient_data_retention_days),
    )
    # the pump runs the service's deliveries, the service pokes the pump: each given to the other as it is made
    callbacks = Pump("intake-callbacks", lambda: service.moves.deliver_callbacks(), s.sweep_interval_seconds)
    service = IntakeService(
        db, ctx.topics, secrets, s.outbound, ctx.vault, ctx.clock, ctx.secret, retention, callbacks.poke
    )
    intake_pages = pages.intake_pages(s.base_url.startswith("https://"))
    people = ctx.shared("intake")  # regulators' accounts (the console); the operations service manages them
    handlers: Handlers = {
        SearchStarted: service.news.on_search_started,
        OfferProposed: service.news.on_offer_proposed,
        AppointmentConfirmed: service.news.on_appointment_confirmed,
        RequestUnresolved: service.news.on_unresolved,
        RequestWaiting: service.news.on_request_waiting,
    }
    part = ServicePart(
        name="intake",
        db=db,
        migrations=Path(__file__).parent / "migrations",
        routers=ROUTERS,
        provides=[service, intake_pages, console.Console(service, Accounts(people, ctx.clock), intake_pages)],
        problems=api.PROBLEMS,
        subscriptions=[Subscription("intake", [ctx.topics.matching], handlers)],
        pumps=[callbacks],
        on_stop=[service.moves.close, people.dispose],
        timers=[
            (service.end_unsearched, 60.0),  # ... and when its deadline passed, it ends
            (service.retention.apply, s.retention_sweep_seconds),
        ],
        stuck=STUCK,
    )
    return service, part
