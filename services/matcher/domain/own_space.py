"""The rules of a professional's own page (espace professionnel), as plain functions.

What a professional may set themselves: slots for the coming days, extra patients today, a
pause until a date. Refusals carry a French sentence (the page translates it) and the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from services.common.clock import PARIS, last_paris_day

PUBLISH_DAYS = 7  # slots are published for today and the six days after
SLOT_MINUTES = (15, 20, 30, 45, 60)
LONGEST_PAUSE_DAYS = 366
MAX_OVERFLOW_CAP = 20  # extra patients a day, at most, set on the page


class Refused(Exception):
    """What the professional asked cannot be done: `text` (French) says why, `field` where."""

    def __init__(self, field: str, text: str) -> None:
        super().__init__(text)
        self.field, self.text = field, text


@dataclass(frozen=True)
class SlotTimes:
    start: datetime
    end: datetime


def today(now: datetime) -> date:
    return now.astimezone(PARIS).date()


def publishable_days(now: datetime) -> list[date]:
    first = today(now)
    return [first + timedelta(days=n) for n in range(PUBLISH_DAYS)]


def new_slot(day: date, at: time, minutes: int, now: datetime) -> SlotTimes:
    """The slot a professional publishes: Paris wall time, in the coming days, not in the past."""
    if minutes not in SLOT_MINUTES:
        raise Refused("minutes", "Choisissez une durée proposée.")
    if day not in publishable_days(now):
        raise Refused("day", "Vous pouvez publier des créneaux pour les 7 prochains jours.")
    start = datetime.combine(day, at.replace(second=0, microsecond=0), tzinfo=PARIS)
    if start <= now:
        raise Refused("time", "Cet horaire est déjà passé.")
    return SlotTimes(start, start + timedelta(minutes=minutes))


def suggested_time(now: datetime) -> time:
    """What the time field shows first: the next quarter hour an hour from now, 09:00 at night."""
    soon = (now + timedelta(hours=1)).astimezone(PARIS)
    quarter = (soon.minute + 14) // 15 * 15
    at = soon.replace(minute=0, second=0, microsecond=0) + timedelta(minutes=quarter)
    return at.time() if 8 <= at.hour < 20 else time(9)


def own_slot_id(rpps: str, site_id: str, start: datetime) -> str:
    """Publishing the same start again at the same site is the same slot (published once)."""
    return f"own-{rpps}-{site_id}-{start.astimezone(PARIS).strftime('%Y%m%dT%H%M')}"[:100]


def pause_end(last_day: date, now: datetime) -> datetime:
    """A pause "until 3 January" includes that day: offers come again the next morning (Paris)."""
    if last_day < today(now):
        raise Refused("until", "Choisissez une date à venir.")
    if last_day > today(now) + timedelta(days=LONGEST_PAUSE_DAYS):
        raise Refused("until", "Une pause dure au plus un an.")
    return datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=PARIS)


def last_paused_day(paused_until: datetime | None, now: datetime) -> date | None:
    """The last day of a pause still running (as the page shows it), or None."""
    if paused_until is None or paused_until <= now:
        return None
    return last_paris_day(paused_until)


def overflow_cap(accepts: bool, cap: int) -> tuple[bool, int]:
    """Extra patients on: at least one a day; off: the cap is kept for next time."""
    if not 0 <= cap <= MAX_OVERFLOW_CAP:
        raise Refused("cap", "Choisissez un nombre de patients en plus par jour entre 0 et 20.")
    if accepts and cap == 0:
        cap = 1
    return accepts, cap


def channels(
    email: str | None, phone: str | None, by_email: bool, by_sms: bool, kept: list[dict[str, str]]
) -> list[dict[str, str]]:
    """The professional's channels in order (e-mail, SMS, then any webhook a coordinator set)."""
    chosen = []
    if by_email:
        if not email:
            raise Refused("email", "Indiquez votre adresse e-mail pour recevoir les demandes par e-mail.")
        chosen.append({"type": "email", "destination": email})
    if by_sms:
        if not phone:
            raise Refused("phone", "Indiquez votre numéro de portable pour recevoir les demandes par SMS.")
        chosen.append({"type": "sms", "destination": phone})
    chosen += [c for c in kept if c["type"] not in ("email", "sms")]
    if not chosen:
        raise Refused("channels", "Gardez au moins un moyen de vous joindre.")
    return chosen
