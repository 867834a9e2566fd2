"""Wiring of the notifier: offer pages, the message dispatcher and the expiry sweeper."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from schemas.events import AppointmentConfirmed, OfferProposed, OfferWithdrawn
from services.common.context import Context
from services.common.messaging import Pump
from services.common.runtime import Handlers, ServicePart
from services.notifier.channels import ContactSource, LocalMailbox, MailSender, SmtpMailSender
from services.notifier.pages import build_router, templates
from services.notifier.service import NotifierService


def mail_sender(ctx: Context) -> MailSender:
    s = ctx.settings
    if s.smtp_host:
        return SmtpMailSender(s.smtp_host, s.smtp_port, s.mail_from, s.smtp_username, s.smtp_password, s.smtp_starttls)
    return LocalMailbox(s.data_dir / "mail", s.mail_from)


def build(ctx: Context, contacts: ContactSource) -> tuple[NotifierService, ServicePart]:
    db = ctx.database("notifier")
    env = templates()
    service = NotifierService(
        db,
        ctx.topics,
        ctx.clock,
        ctx.secret,
        ctx.settings.base_url,
        timedelta(minutes=ctx.settings.offer_timeout_minutes),
        mail_sender(ctx),
        contacts,
        env,
    )
    dispatcher = Pump("notifier-dispatch", service.dispatch, ctx.settings.sweep_interval_seconds)
    service.on_notification.append(dispatcher.poke)
    handlers: Handlers = {
        OfferProposed: service.on_offer_proposed,
        OfferWithdrawn: service.on_offer_withdrawn,
        AppointmentConfirmed: service.on_appointment_confirmed,
    }
    part = ServicePart(
        name="notifier",
        db=db,
        migrations=Path(__file__).parent / "migrations",
        routers=[build_router(service, env)],
        subscriptions=[([ctx.topics.matching], handlers)],
        pumps=[dispatcher],
        timers=[(service.expire_due, ctx.settings.sweep_interval_seconds)],
    )
    return service, part
