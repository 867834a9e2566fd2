"""E-mails that carry a professional's personal link when they ask for it ("send me my link"),
through the same retrying delivery queue as every message (services/common/delivery.py)."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from jinja2 import Environment
from sqlmodel import col, select

from services.common.db import Database, Transaction
from services.notifier.channels import Message, Sender
from services.notifier.models import LinkMessage, NotificationStatus

log = structlog.get_logger(__name__)
MAX_TRIES = 6


@dataclass(frozen=True)
class LinkEmail:
    row_id: int
    message: Message


class LinkMessages:
    """The `Outbound` of link e-mails; `own_link(rpps)` signs a fresh link when one is written."""

    def __init__(self, email: Sender, templates: Environment, own_link: Callable[[str], str]) -> None:
        self.email, self.templates, self.own_link = email, templates, own_link

    async def claim(self, tx: Transaction, now: datetime, limit: int, lease_until: datetime) -> list[LinkEmail]:
        due = (
            await tx.session.execute(
                select(LinkMessage)
                .where(col(LinkMessage.status) == NotificationStatus.PENDING, col(LinkMessage.next_attempt_at) <= now)
                .order_by(col(LinkMessage.id))
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).scalars()
        claimed = []
        for row in due:
            assert row.id is not None
            row.next_attempt_at = lease_until
            subject, _, text = (
                self.templates.get_template("email/own_link.txt")
                .render(name=row.name, own_link=self.own_link(row.rpps))
                .partition("\n")
            )
            message = Message(
                f"link-{row.id}", "email", row.email, subject.removeprefix("Subject: ").strip(), text.strip(), {}
            )
            claimed.append(LinkEmail(row.id, message))
        return claimed

    def key(self, item: LinkEmail) -> Hashable:
        return item.row_id

    async def send(self, item: LinkEmail) -> None:
        await self.email.send(item.message)

    async def record(self, db: Database, sent: list[tuple[LinkEmail, str | None]], now: datetime) -> bool:
        async with db.transaction() as tx:
            for item, error in sent:
                await self._record_one(tx, item, error, now)
        return False

    async def _record_one(self, tx: Transaction, item: LinkEmail, error: str | None, now: datetime) -> None:
        row = await tx.session.get(LinkMessage, item.row_id, with_for_update=True)
        if row is None or row.status != NotificationStatus.PENDING:
            return
        row.attempts += 1
        if error is None:
            row.status, row.sent_at = NotificationStatus.SENT, now
            log.info("personal link sent", rpps=row.rpps)
        elif row.attempts >= MAX_TRIES:
            row.status, row.last_error = NotificationStatus.FAILED, error
            log.warning("personal link not sent: given up", rpps=row.rpps, error=error)
        else:
            row.last_error, row.next_attempt_at = error, now + timedelta(seconds=min(300, 5 * 2**row.attempts))
