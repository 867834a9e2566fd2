"""A request's status moves: recorded in its history and queued for the regulator's callback
URL, in the transaction that made the move."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog

from services.common import metrics
from services.common.db import Database, Transaction
from services.common.delivery import DeliveryQueue
from services.common.outbound import OutboundPolicy
from services.common.signing import SignedPoster
from services.intake import repository
from services.intake.callbacks import Callback, CallbackSecrets, RegulatorCallbacks
from services.intake.domain import RequestStatus
from services.intake.models import OrientationRequest, RequestHistory

log = structlog.get_logger(__name__)


class StatusMoves:
    def __init__(
        self,
        db: Database,
        secrets: CallbackSecrets,
        outbound: OutboundPolicy,
        clock: Callable[[], datetime],
        wake_callbacks: Callable[[], None] | None = None,
    ) -> None:
        """`wake_callbacks` pokes the callback dispatcher (a Pump) when one is due."""
        self.clock = clock
        self.poster = SignedPoster(outbound)  # one HTTP client for every callback of this process
        self.callbacks = DeliveryQueue(db, RegulatorCallbacks(self.poster, secrets), clock, on_more=wake_callbacks)
        self.on_callback: list[Callable[[], None]] = [wake_callbacks] if wake_callbacks else []  # after a commit

    async def move(
        self,
        tx: Transaction,
        request: OrientationRequest,
        status: RequestStatus,
        at: datetime,
        reason: str | None = None,
    ) -> None:
        """Record a status change, and queue it for the regulator's callback URL when there is one.

        Callers hold the request's row lock. A callback with nothing of its request pending before
        it is written leased and handed to the sender when the transaction commits (no claim of its
        own); otherwise it waits its turn in the queue. The queue is poked after the commit — unless
        the one before it was written by this same transaction: that one cannot have been delivered
        before this one is visible, so its delivery finds this one due and goes round itself (a
        round at the commit would find nothing to claim)."""
        request.status = status
        request.updated_at = at
        tx.session.add(RequestHistory(request_id=request.request_id, status=status, at=at, reason=reason))
        if request.callback_url:
            written_before = f"callback:{request.request_id}" in tx.marks
            tx.marks.add(f"callback:{request.request_id}")
            event_id = str(uuid.uuid4())
            payload = callback_payload(request, event_id, at)
            delivery_id, first = await repository.add_callback(
                tx.session,
                event_id=event_id,
                request_id=request.request_id,
                url=request.callback_url,
                payload=payload,
                at=at,
                lease_until=self.callbacks.lease_until(self.clock()),
            )
            if first:  # signed with its client's secret
                callback = Callback(
                    delivery_id, request.request_id, event_id, request.callback_url, payload, request.client_id
                )
                tx.after_commit.append(lambda: self.callbacks.send_claimed([callback]))
            elif not written_before:
                tx.after_commit.extend(self.on_callback)
        tx.after_commit.append(lambda: metrics.REQUEST_STATUS.labels(str(status)).inc())
        log.info("request status", status=str(status))

    async def deliver_callbacks(self) -> int:
        """Push due status changes to regulators (see callbacks.py); for a Pump (see deliver_more)."""
        return await self.callbacks.deliver_more()

    async def close(self) -> None:
        await self.callbacks.close()
        await self.poster.close()


def callback_payload(request: OrientationRequest, event_id: str, at: datetime) -> dict[str, Any]:
    """What the regulator receives: the request's new status, as GET /v1/requests/{id} shows it."""
    payload: dict[str, Any] = {
        "event_id": event_id,
        "request_id": request.external_id,  # the regulator's own id
        "correlation_id": request.correlation_id,
        "status": request.status,
        "at": at.isoformat(),
    }
    if request.appointment:
        payload["appointment"] = request.appointment
    if request.reason:
        payload |= {"reason": request.reason, "detail": request.detail}
    if request.alternatives:
        payload["alternatives"] = request.alternatives
    if request.waiting and request.status == "searching":
        payload["waiting"] = request.waiting
    return payload
