"""Kafka topics and who writes them. Names get the deployment's prefix (TOPIC_PREFIX)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topics:
    prefix: str = "sas."

    @property
    def requests(self) -> str:
        """Written by the intake: request.received, request.cancelled."""
        return f"{self.prefix}requests.v1"

    @property
    def matching(self) -> str:
        """Written by the matcher: search.started, offer.proposed, offer.withdrawn,
        appointment.confirmed, request.unresolved, offer.invalidated (for itself),
        platform.appointment.booked and .changed (bookings of the national SAS platform)."""
        return f"{self.prefix}matching.v1"

    @property
    def offers(self) -> str:
        """Written by the notifier: offer.accepted, offer.refused, offer.expired."""
        return f"{self.prefix}offers.v1"

    @property
    def directory(self) -> str:
        """Written by the matcher: professional.changed, slot.changed, territory.changed (what the
        indicators count and the dashboards draw)."""
        return f"{self.prefix}directory.v1"

    @property
    def dead_letters(self) -> str:
        """Messages a consumer could not handle, with the reason."""
        return f"{self.prefix}deadletter.v1"

    @property
    def epoch(self) -> str:
        """One partition whose first record identifies the broker's log (services/common/broker_watch.py)."""
        return f"{self.prefix}epoch.v1"

    def all(self) -> list[str]:
        """The event topics (the epoch topic is not one)."""
        return [self.requests, self.matching, self.offers, self.directory, self.dead_letters]
