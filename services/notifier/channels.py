"""Ways to reach a professional (e-mail, SMS, a booking software's webhook), and the port to
the patient's contact (owned by the intake).

Every sender takes a `Message` and raises on failure; the dispatcher (service.py) records each
attempt, retries with a growing delay and moves on to the next channel of the professional.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any, Protocol

import aiosmtplib
import httpx
import structlog

from services.common.audit import CLIENT_IP
from services.common.clock import Clock, utcnow
from services.common.internal_client import InternalClient
from services.common.signing import DeliveryFailed, SignedPoster
from services.common.webhook_secrets import signing_secrets

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    text: str


class MailSender(Protocol):
    async def send(self, email: Email) -> None: ...


def _message(email: Email, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, email.to, email.subject
    message["Date"], message["Message-ID"] = formatdate(localtime=False), make_msgid(domain="sas-orientation")
    message.set_content(email.text)
    return message


@dataclass(kw_only=True)
class SmtpMailSender:
    """Real SMTP (SMTP_HOST, SMTP_PORT, optional STARTTLS or implicit TLS, and login)."""

    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    tls: bool = False
    timeout: float = 10.0

    async def send(self, email: Email) -> None:
        await aiosmtplib.send(
            _message(email, self.sender),
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self.password,
            start_tls=self.starttls,
            use_tls=self.tls,
            timeout=self.timeout,
        )


@dataclass
class LocalMailbox:
    """Without SMTP: each e-mail is printed and kept as an .eml file in `folder`."""

    folder: Path
    sender: str

    async def send(self, email: Email) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        message = _message(email, self.sender)
        name = re.sub(r"[^A-Za-z0-9]+", "", str(message["Message-ID"]))[:40]
        path = self.folder / f"{name}.eml"
        path.write_bytes(bytes(message))
        print(
            f"\n--- e-mail to {email.to} (kept in {path}) ---\nSubject: {email.subject}\n\n{email.text}\n---",
            flush=True,
        )


@dataclass(frozen=True)
class Message:
    """One message on one channel. `id` is the same on every retry (receivers may dedup on it)."""

    id: str
    channel: str  # email | sms | webhook
    destination: str
    subject: str
    text: str
    data: dict[str, Any]
    secret_version: int = 1  # a webhook's: which of its signing secrets (services/common/webhook_secrets.py)
    previous_until: str | None = None


class Sender(Protocol):
    async def send(self, message: Message) -> None: ...


@dataclass
class EmailSender:
    mail: MailSender

    async def send(self, message: Message) -> None:
        await self.mail.send(Email(message.destination, message.subject, message.text))


@dataclass
class SmsSender:
    """SMS through a provider's JSON webhook (SMS_WEBHOOK_URL), the body signed with SMS_WEBHOOK_SECRET."""

    url: str | None
    secret: str
    poster: SignedPoster

    async def send(self, message: Message) -> None:
        if not self.url:
            raise DeliveryFailed("no SMS provider configured (SMS_WEBHOOK_URL)")
        await self.poster.post(
            self.url, {"id": message.id, "to": message.destination, "text": message.text}, [self.secret], message.id
        )


@dataclass
class WebhookSender:
    """The offer as JSON to the professional's booking software, signed with the receiver's own
    secret, derived from WEBHOOK_SECRET (services/common/webhook_secrets.py)."""

    secret: str
    poster: SignedPoster
    clock: Clock = utcnow  # the services' clock: a rotation's overlap is counted on it

    async def send(self, message: Message) -> None:
        channel = {
            "destination": message.destination,
            "secret_version": message.secret_version,
            "previous_until": message.previous_until,
        }
        secrets = signing_secrets(self.secret, channel, self.clock())
        await self.poster.post(message.destination, {"id": message.id, **message.data}, secrets, message.id)


@dataclass(frozen=True)
class ShownContact:
    name: str | None
    phone: str | None


class ContactUnavailable(Exception):
    """The intake, which holds the patient's contact, cannot be reached right now."""


class ContactSource(Protocol):
    """Where the offer page gets the patient's contact after acceptance (the intake's data);
    raises ContactUnavailable when it cannot be reached."""

    async def contact(self, request_id: str, rpps: str) -> ShownContact | None:
        """The contact, shown on the page of professional `rpps` (the intake records it)."""


class HttpContactSource:
    """Asks a separately running intake over its internal endpoint (one HTTP client per process)."""

    def __init__(self, base_url: str, key: str) -> None:
        self.intake = InternalClient(base_url, key)

    async def contact(self, request_id: str, rpps: str) -> ShownContact | None:
        try:
            response = await self.intake.request(
                "GET",
                f"/internal/v1/requests/{request_id}/contact",
                params={"professional": rpps},
                headers={"X-Shown-From": CLIENT_IP.get() or ""},
            )
            if response.status_code == 404:
                return None
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise ContactUnavailable(type(error).__name__) from error
        return ShownContact(body.get("name"), body.get("phone"))

    async def close(self) -> None:
        await self.intake.close()
