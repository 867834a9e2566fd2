"""The trial mailbox (`/mailbox`): in `make run`'s trial mode (no SMTP_HOST) the e-mails the
service would have sent are kept as files (channels.LocalMailbox); this page lists them with
their links, so that a newcomer follows a request to the GP's *Accept* without opening a file.

Never served when mail goes to a real relay, nor to anyone but the machine itself (the links
in these e-mails act for the professional), and the gateway of `deploy/` does not route it."""

from __future__ import annotations

import asyncio
import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup, escape

from services.common.deps import SettingsDep, provided, public
from services.common.http import Problem
from services.common.pages import Pages, templates
from services.common.settings import Settings

SHOWN = 100  # the newest e-mails; older ones stay in their files
_URL = re.compile(r"https?://[^\s<>\"]+")


class MailboxPages(Pages):
    """The notifier's templates and catalogue, for the trial mailbox."""


@dataclass(frozen=True)
class KeptEmail:
    name: str
    to: str
    subject: str
    sent_at: datetime | None
    body: Markup  # the text, escaped, with the service's own links clickable


def linked(text: str, base_url: str) -> Markup:
    """The text escaped; the links to this service (and only those) made clickable."""
    out, last = [], 0
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(".,;)")
        out.append(escape(text[last : match.start()]))
        shown = escape(url)
        out.append(Markup(f'<a href="{shown}">{shown}</a>') if url.startswith(base_url + "/") else shown)
        last = match.start() + len(url)
    out.append(escape(text[last:]))
    return Markup("").join(out)


def kept_emails(folder: Path, base_url: str, limit: int = SHOWN) -> list[KeptEmail]:
    """The newest e-mails kept in `folder`, newest first; a file that is not an e-mail is skipped."""
    if not folder.is_dir():
        return []
    files = sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime, reverse=True)[:limit]
    found = []
    for path in files:
        try:
            message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
            body = message.get_body(preferencelist=("plain",))
            text = body.get_content() if body is not None else ""
            sent_at = parsedate_to_datetime(str(message["Date"])) if message["Date"] else None
        except (ValueError, TypeError, LookupError):
            continue
        found.append(
            KeptEmail(
                path.stem, str(message["To"] or ""), str(message["Subject"] or ""), sent_at, linked(text, base_url)
            )
        )
    return found


def trial_only(request: Request, settings: Settings) -> None:
    """404 unless mail stays on this machine and the reader is on it too."""
    host = request.client.host if request.client else ""
    try:
        local = ipaddress.ip_address(host).is_loopback
    except ValueError:
        local = False
    if settings.smtp_host or not local:
        raise Problem(404, "Not Found", "no trial mailbox here: e-mails go to the SMTP relay")


MailboxDep = Annotated[MailboxPages, Depends(provided(MailboxPages))]
router = APIRouter(include_in_schema=False)


@router.get(
    "/mailbox",
    response_class=HTMLResponse,
    dependencies=[public("trial mode only (no SMTP_HOST), from the machine itself: the e-mails kept locally")],
)
async def mailbox(request: Request, pages: MailboxDep, settings: SettingsDep) -> HTMLResponse:
    trial_only(request, settings)
    emails = await asyncio.to_thread(kept_emails, settings.data_dir / "mail", settings.base_url)
    return pages.page(request, "mailbox.html", emails=emails, folder=str(settings.data_dir / "mail"))


def mailbox_pages(secure_cookies: bool) -> MailboxPages:
    return MailboxPages(
        templates(Path(__file__).parent / "templates"), Path(__file__).parent / "locale", secure_cookies
    )
