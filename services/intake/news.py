"""The matcher's news about requests (handlers of the `matching` topic): each moves the request
on when it follows from where the request is, and is no news otherwise."""

from __future__ import annotations

import structlog

from schemas.events import (
    AppointmentConfirmed,
    CloudEvent,
    OfferProposed,
    RequestUnresolved,
    RequestWaiting,
    SearchStarted,
)
from services.common.db import Transaction
from services.intake.domain import WAITING, RequestStatus, follows, same_wait
from services.intake.models import OrientationRequest
from services.intake.status import StatusMoves

log = structlog.get_logger(__name__)


class MatcherNews:
    def __init__(self, moves: StatusMoves) -> None:
        self.moves = moves

    async def on_search_started(self, tx: Transaction, event: SearchStarted, ce: CloudEvent) -> None:
        request = await _for_update(tx, event.request_id)
        if request and request.status == RequestStatus.SEARCHING and not request.waiting:
            return  # searching already: this is no news (the same event again, under another id)
        if request and follows(RequestStatus(request.status), RequestStatus.SEARCHING):
            request.deadline = event.deadline
            await self.moves.move(tx, request, RequestStatus.SEARCHING, ce.time)

    async def on_request_waiting(self, tx: Transaction, event: RequestWaiting, ce: CloudEvent) -> None:
        request = await _for_update(tx, event.request_id)
        if request is None or not follows(RequestStatus(request.status), RequestStatus.SEARCHING):
            return
        waiting = {
            "reason": event.reason,
            "detail": event.detail,
            "since": ce.time.isoformat(),
            "look_again_at": event.look_again_at.isoformat(),
        }
        if request.status == RequestStatus.SEARCHING and same_wait(request.waiting, waiting):
            return  # waiting for the same reason until the same time: no news
        request.deadline, request.waiting = event.deadline, waiting
        await self.moves.move(tx, request, RequestStatus.SEARCHING, ce.time, reason=f"{WAITING}{event.reason}")

    async def on_offer_proposed(self, tx: Transaction, event: OfferProposed, ce: CloudEvent) -> None:
        request = await _for_update(tx, event.request_id)
        if request and follows(RequestStatus(request.status), RequestStatus.OFFERED):
            request.explanation = [e.model_dump(mode="json") for e in event.explanation]
            request.waiting = None
            request.asked = {
                "name": event.professional.name,
                "rpps": event.professional.rpps,
                "answer_by": event.answer_by.isoformat() if event.answer_by else None,
            }
            if request.status != RequestStatus.OFFERED:  # a second parallel offer is no news to the regulator
                await self.moves.move(tx, request, RequestStatus.OFFERED, ce.time)

    async def on_appointment_confirmed(self, tx: Transaction, event: AppointmentConfirmed, ce: CloudEvent) -> None:
        request = await _for_update(tx, event.request_id)
        if request and follows(RequestStatus(request.status), RequestStatus.CONFIRMED):
            request.waiting = request.asked = None
            request.appointment = {
                "professional": event.professional.model_dump(mode="json"),
                "site": event.site.model_dump(mode="json"),
                "start": event.start.isoformat(),
                "kind": event.kind,
                "mode": event.mode,
            }
            await self.moves.move(tx, request, RequestStatus.CONFIRMED, ce.time)

    async def on_unresolved(self, tx: Transaction, event: RequestUnresolved, ce: CloudEvent) -> None:
        request = await _for_update(tx, event.request_id)
        if request and follows(RequestStatus(request.status), RequestStatus.UNRESOLVED):
            request.reason, request.detail, request.waiting, request.asked = event.reason, event.detail, None, None
            request.alternatives = [a.model_dump(mode="json", exclude_none=True) for a in event.alternatives]
            await self.moves.move(tx, request, RequestStatus.UNRESOLVED, ce.time, reason=event.reason)


async def _for_update(tx: Transaction, request_id: str) -> OrientationRequest | None:
    request = await tx.session.get(OrientationRequest, request_id, with_for_update=True)
    if request is None:
        log.warning("event for an unknown request ignored")
    return request
