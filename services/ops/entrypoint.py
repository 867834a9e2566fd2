"""Wiring of the operations service: the read model fed by the topics, the indicators, the
operations accounts and the dashboard.

It owns schema `ops` and consumer group `ops`; it reads every topic and writes none. A new
group starts from the earliest records, so a fresh `ops` database fills itself from what the
broker keeps; `sas-rebuild-read-model` empties it and reads everything again.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment

from services.common import i18n
from services.common.access import api as clients_api
from services.common.access.accounts import Accounts
from services.common.clock import last_paris_day
from services.common.context import Context
from services.common.parts import ServicePart, Subscription
from services.ops import account_pages, api, audit_pages, directory_pages, pages, read_model
from services.ops.deps import Operations
from services.ops.professionals import HttpPauses, ProfessionalPauses

TEMPLATES = Path(__file__).parent / "templates"


def templates() -> Environment:
    return i18n.page_templates(TEMPLATES, last_day=lambda end, lang="fr": i18n.date(last_paris_day(end), lang))


ROUTERS = [
    api.router,
    clients_api.router,  # the admin's clients (services/common/access/api.py)
    pages.router,
    account_pages.router,
    directory_pages.router,
    audit_pages.router,
]  # the paths it serves: services/routing.py


def build(ctx: Context, pauses: ProfessionalPauses) -> ServicePart:
    db = ctx.database("ops")
    people = ctx.shared("ops")  # the accounts live in the shared schema: the console checks them too
    accounts = Accounts(people, ctx.clock)
    return ServicePart(
        name="ops",
        db=db,
        migrations=Path(__file__).parent / "migrations",
        routers=ROUTERS,
        provides=[Operations(db, accounts, templates(), ctx.settings.base_url.startswith("https://"), pauses)],
        on_stop=[*([pauses.close] if isinstance(pauses, HttpPauses) else []), people.dispose],
        on_start=[lambda: _admin_from_settings(ctx, accounts)],
        subscriptions=[
            # the dashboards may lag a fifth of a second: bigger batches, less polling
            Subscription(read_model.CONSUMER, read_model.topics_of(ctx.topics), read_model.HANDLERS, patience_ms=200),
        ],
        timers=[(accounts.forget_expired, 3600.0)],
    )


async def _admin_from_settings(ctx: Context, accounts: Accounts) -> None:
    """OPS_ADMIN_EMAIL and OPS_ADMIN_PASSWORD create or update a sas_admin account at start; the
    trial's regulator account too."""
    if ctx.settings.ops_admin_email and ctx.settings.ops_admin_password:
        await accounts.put(ctx.settings.ops_admin_email, ctx.settings.ops_admin_password, "sas_admin", None)
    if ctx.settings.trial_regulator:  # make run's trial: the console's account (services/main.py)
        email, password, organisation = ctx.settings.trial_regulator
        await accounts.put(email, password, "regulator", organisation=organisation)
