"""The coordinator's directory (annuaire): a CPTS's professionals as the read model knows them
(names, participation, slots), and pausing one — through the matcher, which owns the directory
(in the same process when it is hosted there, else over HTTP with the internal key)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol

import httpx

from services.common.db import Database
from services.common.internal_client import InternalClient
from services.ops.adapters import cards

PARTICIPATION_DAYS = 30


class PauseRefused(Exception):
    """The matcher refused the pause (a date in the past, too far, an unknown professional)."""


class MatcherUnreachable(Exception):
    """The matcher did not answer: nothing changed; try again."""


class ProfessionalPauses(Protocol):
    async def pause(self, rpps: str, last_day: date | None, by: str) -> None:
        """Pause until the end of `last_day` (Paris), or end the pause (None); `by`: the account."""
        ...


class HttpPauses:
    """The matcher's internal route, through one HTTP client per process."""

    def __init__(self, base_url: str, key: str) -> None:
        self.matcher = InternalClient(base_url, key)

    async def pause(self, rpps: str, last_day: date | None, by: str) -> None:
        try:
            response = await self.matcher.request(
                "PUT",
                f"/internal/v1/professionals/{rpps}/pause",
                json={"until": last_day.isoformat() if last_day else None, "by": by},
                headers={"Accept-Language": "fr"},
            )
        except httpx.HTTPError as error:
            raise MatcherUnreachable(type(error).__name__) from error
        if response.status_code in (404, 422):
            raise PauseRefused(_detail(response))
        if response.status_code >= 300:
            raise MatcherUnreachable(f"HTTP {response.status_code}")

    async def close(self) -> None:
        await self.matcher.close()


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail") or response.status_code)
    except ValueError:
        return f"HTTP {response.status_code}"


@dataclass(frozen=True)
class Participation:
    asked: int
    accepted: int
    refused: dict[str, int]  # by reason
    expired: int
    latest: list[Any]  # the latest offers, newest first


async def card(db: Database, rpps: str, now: datetime) -> tuple[Any, list[Any], Participation] | None:
    """A professional's latest version, their slots of the coming week, their participation."""
    found = await cards.card_rows(db, rpps=rpps, now=now, since=now - timedelta(days=PARTICIPATION_DAYS))
    if found is None:
        return None
    latest, slots, offers = found
    refused: dict[str, int] = {}
    for o in offers:
        if o.refused_at is not None:
            refused[o.refusal_reason or "unspecified"] = refused.get(o.refusal_reason or "unspecified", 0) + 1
    participation = Participation(
        asked=len(offers),
        accepted=sum(o.accepted_at is not None for o in offers),
        refused=refused,
        expired=sum(o.expired_at is not None for o in offers),
        latest=offers[:10],
    )
    return latest, slots, participation
