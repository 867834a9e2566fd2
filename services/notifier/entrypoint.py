"""Wiring of the notifier: offers, the messages to professionals (channels, links), the offer
page, the expiry and reminder sweepers. The operations side is its own service (services/ops)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from schemas.events import (
    AppointmentConfirmed,
    OfferProposed,
    OfferWithdrawn,
    PatientErased,
    PlatformAppointmentBooked,
    PlatformAppointmentChanged,
    ProfessionalLinkRequested,
)
from services.common.context import Context
from services.common.messaging import Pump
from services.common.parts import Handlers, ServicePart, Subscription
from services.common.signing import SignedPoster
from services.notifier import mailbox, pages
from services.notifier.channels import (
    ContactSource,
    EmailSender,
    HttpContactSource,
    LocalMailbox,
    MailSender,
    Sender,
    SmsSender,
    SmtpMailSender,
    WebhookSender,
)
from services.notifier.messages import Messages
from services.notifier.news import MatcherNews
from services.notifier.pages import OfferPages, templates
from services.notifier.service import NotifierService
from services.notifier.store import SqlNotifierStorage


def senders(ctx: Context, poster: SignedPoster) -> dict[str, Sender]:
    """One sender per channel type, from settings (SMS and webhooks share the process's HTTP client)."""
    s = ctx.settings
    mail: MailSender = (
        SmtpMailSender(
            host=s.smtp_host,
            port=s.smtp_port,
            sender=s.mail_from,
            username=s.smtp_username,
            password=s.smtp_password,
            starttls=s.smtp_starttls,
            tls=s.smtp_tls,
        )
        if s.smtp_host
        else LocalMailbox(s.data_dir / "mail", s.mail_from)
    )
    return {
        "email": EmailSender(mail),
        "sms": SmsSender(s.sms_webhook_url, s.sms_webhook_secret, poster),
        "webhook": WebhookSender(s.webhook_secret, poster, ctx.clock),
    }


# accepted a minute ago and the matcher has not confirmed the appointment (services/common/reconcile.py)
STUCK = "SELECT request_id FROM offer WHERE status = 'accepted' AND decided_at < now() - interval '1 minute'"


ROUTERS = [pages.router, mailbox.router]  # the paths it serves: services/routing.py


def build(ctx: Context, contacts: ContactSource) -> tuple[NotifierService, ServicePart]:
    db = ctx.database("notifier")
    env = templates()
    poster = SignedPoster(ctx.settings.outbound)
    # the pumps run the messages' sending, the messages poke them: each given to the other as it is made
    dispatcher = Pump("notifier-dispatch", lambda: messages.dispatch(), ctx.settings.sweep_interval_seconds)
    # poked when one is written; the rounds in between only retry (rare): no need to look every second
    link_emails = Pump(
        "notifier-link-emails", lambda: messages.send_link_emails(), max(15.0, ctx.settings.sweep_interval_seconds)
    )
    messages = Messages(
        db, ctx.clock, ctx.secret, ctx.settings.base_url, senders(ctx, poster), env, dispatcher.poke, link_emails.poke
    )
    storage = SqlNotifierStorage(db, ctx.vault)
    offer_timeout = timedelta(minutes=ctx.settings.offer_timeout_minutes)
    news = MatcherNews(storage, ctx.clock, ctx.secret, offer_timeout, messages)
    service = NotifierService(storage, ctx.topics, ctx.clock, contacts, messages, ctx.settings.reminder_minutes)
    handlers: Handlers = {
        OfferProposed: news.on_offer_proposed,
        OfferWithdrawn: news.on_offer_withdrawn,
        AppointmentConfirmed: news.on_appointment_confirmed,
        PatientErased: news.on_patient_erased,
        PlatformAppointmentBooked: news.on_platform_booked,
        PlatformAppointmentChanged: news.on_platform_changed,
        ProfessionalLinkRequested: news.on_link_requested,
    }
    part = ServicePart(
        name="notifier",
        db=db,
        migrations=Path(__file__).parent / "migrations",
        routers=ROUTERS,
        provides=[OfferPages(service, env), mailbox.mailbox_pages(ctx.settings.base_url.startswith("https://"))],
        on_stop=[poster.close, *([contacts.close] if isinstance(contacts, HttpContactSource) else [])],
        subscriptions=[
            Subscription("notifier", [ctx.topics.matching, ctx.topics.requests], handlers),
        ],
        pumps=[dispatcher, link_emails],
        timers=[
            (service.expire_due, ctx.settings.sweep_interval_seconds),
            (service.remind_due, ctx.settings.sweep_interval_seconds),
        ],
        stuck=STUCK,
    )
    return service, part
