"""The figures a CPTS is paid on, and those its coordinators watch (pure arithmetic).

Facts in (from the read model, itself fed by the topics only), figures out. Periods are Paris
calendar days, both ends included. DEFINITION_VERSION changes whenever a definition does.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from services.common.clock import PARIS, paris_week
from services.common.holidays import is_public_holiday

DEFINITION_VERSION = "2026-11-25.1"
DEFINITIONS = {
    "doctors_participating_in_sas": "GPs of the CPTS, active, declaring SAS participation (individually or via the "
    "CPTS) at the end of the last day of the period",
    "sas_requests_with_appointment": "requests received in the period that ended in a confirmed appointment with a "
    "professional of the CPTS; a slot booked by the national SAS platform over FHIR counts as one request, received "
    "when booked, unless the platform cancelled it",
    "sas_requests_with_appointment_by_channel": "indicator 2 split: through a regulator's request and our cascade "
    "(cascade), or booked by the national SAS platform on a published slot (platform)",
    "appointments_honoured": "indicator 2 appointments the platform reported fulfilled (honoured) or noshow "
    "(not_honoured); the others are not_reported",
    "requests_received": "requests received in the period whose patient lives in the CPTS's territory, or that "
    "ended with a professional of the CPTS",
    "minutes_to_appointment": "from receipt to confirmation, for the cascade's appointments counted in indicator 2 "
    "(a platform booking is received and confirmed at once)",
    "within_deadline": "share of the cascade's indicator 2 appointments starting before the request's deadline (a "
    "platform booking has no deadline known to the service)",
    "acts_friday_saturday_or_holiday_eve": "share of indicator 2 whose appointment falls on a Friday, a Saturday or "
    "the day before a public holiday",
    "slot_utilisation": "slots of the CPTS's professionals starting in the period: booked / published (not withdrawn)",
    "from_outside_territory": "indicator 2 requests whose patient lives outside the CPTS's territory",
    "regulated_consultations": "per GP and ISO week, appointments after SAS regulation, capped at 20 (Avenant 9)",
    "visible_slot_hours": "per GP and ISO week, hours of slots published to the SAS; 2 h is the forfait threshold",
    "overflow_patients": "per GP and quarter, extra patients taken after regulation (Avenant 9 indicator 9)",
}
WEEKLY_CONSULTATION_CAP = 20
VISIBLE_HOURS_THRESHOLD = 2.0


@dataclass(frozen=True)
class RequestFacts:
    request_id: str
    received_at: datetime
    patient_cpts: str | None
    status: str  # open | confirmed | unresolved | cancelled
    deadline: datetime | None = None
    confirmed_at: datetime | None = None
    appointment_start: datetime | None = None
    appointment_rpps: str | None = None
    appointment_cpts: str | None = None
    kind: str | None = None
    reason: str | None = None
    commune_insee: str | None = None  # the patient's
    appointment_commune: str | None = None
    channel: str = "cascade"  # or "platform": booked by the national SAS platform over FHIR
    honoured: bool | None = None  # fulfilled / noshow, as the platform reported; None: not reported


@dataclass(frozen=True)
class OfferFacts:
    offer_id: str
    request_id: str
    rpps: str
    cpts_id: str | None
    proposed_at: datetime
    outcome: str  # pending | accepted | refused | expired | withdrawn
    refusal_reason: str | None = None


@dataclass(frozen=True)
class ProfessionalVersion:
    """A professional as declared from `at` on."""

    rpps: str
    at: datetime
    profession: str
    cpts_id: str | None
    sas_participation: str
    active: bool


@dataclass(frozen=True)
class SlotFacts:
    slot_id: str
    rpps: str
    start: datetime
    end: datetime
    withdrawn: bool
    booked: bool


def paris_date(at: datetime) -> date:
    return at.astimezone(PARIS).date()


def in_period(at: datetime, first: date, last: date) -> bool:
    return first <= paris_date(at) <= last


def participants(versions: Iterable[ProfessionalVersion], cpts_id: str, last: date) -> list[str]:
    """Indicator 1: the GPs participating as of the end of `last`."""
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=PARIS)
    latest: dict[str, ProfessionalVersion] = {}
    for v in sorted(versions, key=lambda v: v.at):
        if v.at < end:
            latest[v.rpps] = v
    return sorted(
        v.rpps
        for v in latest.values()
        if v.cpts_id == cpts_id
        and v.active
        and v.profession == "general_practitioner"
        and v.sas_participation in ("individual", "via_cpts")
    )


def through_cpts(requests: Iterable[RequestFacts], cpts_id: str, first: date, last: date) -> list[RequestFacts]:
    """Indicator 2: requests of the period confirmed with a professional of the CPTS."""
    return [
        r
        for r in requests
        if r.status == "confirmed" and r.appointment_cpts == cpts_id and in_period(r.received_at, first, last)
    ]


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _friday_saturday_or_holiday_eve(at: datetime) -> bool:
    day = paris_date(at)
    return day.weekday() in (4, 5) or is_public_holiday(day + timedelta(days=1))


def _quarter(at: datetime) -> str:
    d = paris_date(at)
    return f"{d.year}-Q{(d.month - 1) // 3 + 1}"


def _offers(offers: list[OfferFacts], cpts_id: str, first: date, last: date) -> dict[str, Any]:
    mine = [o for o in offers if o.cpts_id == cpts_id and in_period(o.proposed_at, first, last)]
    refused = Counter(o.refusal_reason or "unspecified" for o in mine if o.outcome == "refused")
    return {
        "accepted": sum(o.outcome == "accepted" for o in mine),
        "refused": dict(sorted(refused.items())),
        "expired": sum(o.outcome == "expired" for o in mine),
        "withdrawn": sum(o.outcome == "withdrawn" for o in mine),
    }


def _slot_utilisation(
    slots: list[SlotFacts], versions: list[ProfessionalVersion], cpts_id: str, first: date, last: date
) -> dict[str, Any]:
    gps = {v.rpps for v in versions if v.cpts_id == cpts_id}
    published = [s for s in slots if s.rpps in gps and in_period(s.start, first, last) and not s.withdrawn]
    cells: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for s in published:
        cell = cells[s.rpps][paris_week(s.start)]
        cell[0] += s.booked
        cell[1] += 1
    booked = sum(s.booked for s in published)
    return {
        "booked": booked,
        "published": len(published),
        "share": _share(booked, len(published)),
        "by_professional_and_week": {
            rpps: {week: {"booked": b, "published": p} for week, (b, p) in weeks.items()}
            for rpps, weeks in sorted(cells.items())
        },
    }


def _appointments(confirmed: list[RequestFacts]) -> dict[str, Any]:
    """Indicator 2's appointments: by channel, how soon, within the deadline, honoured, which days."""
    cascade = [r for r in confirmed if r.channel == "cascade"]
    waits = sorted((r.confirmed_at - r.received_at).total_seconds() / 60 for r in cascade if r.confirmed_at)
    return {
        "sas_requests_with_appointment_by_channel": {
            "cascade": len(cascade),
            "platform": len(confirmed) - len(cascade),
        },
        "appointments_honoured": {
            "honoured": sum(r.honoured is True for r in confirmed),
            "not_honoured": sum(r.honoured is False for r in confirmed),
            "not_reported": sum(r.honoured is None for r in confirmed),
        },
        "minutes_to_appointment": {
            "median": round(statistics.median(waits), 1) if waits else None,
            "p90": round(waits[min(len(waits) - 1, int(0.9 * len(waits)))], 1) if waits else None,
        },
        "share_within_deadline": _share(
            sum(1 for r in cascade if r.deadline and r.appointment_start and r.appointment_start <= r.deadline),
            len(cascade),
        ),
        "share_acts_friday_saturday_or_holiday_eve": _share(
            sum(1 for r in confirmed if r.appointment_start and _friday_saturday_or_holiday_eve(r.appointment_start)),
            len(confirmed),
        ),
    }


def figures(
    cpts_id: str,
    first: date,
    last: date,
    requests: list[RequestFacts],
    offers: list[OfferFacts],
    versions: list[ProfessionalVersion],
    slots: list[SlotFacts],
) -> dict[str, Any]:
    """Every figure of `GET /v1/indicators` for one CPTS and period."""
    confirmed = through_cpts(requests, cpts_id, first, last)
    mine = [
        r
        for r in requests
        if in_period(r.received_at, first, last) and (r.patient_cpts == cpts_id or r.appointment_cpts == cpts_id)
    ]
    unresolved = Counter(r.reason or "unknown" for r in mine if r.status == "unresolved")
    return {
        "cpts_id": cpts_id,
        "from": first.isoformat(),
        "to": last.isoformat(),
        "definition_version": DEFINITION_VERSION,
        "doctors_participating_in_sas": len(participants(versions, cpts_id, last)),
        "sas_requests_with_appointment": len(confirmed),
        "requests_received": len(mine),
        "requests_confirmed": sum(r.status == "confirmed" for r in mine),
        "requests_unresolved": dict(sorted(unresolved.items())),
        "requests_cancelled": sum(r.status == "cancelled" for r in mine),
        **_appointments(confirmed),
        "offers": _offers(offers, cpts_id, first, last),
        "slot_utilisation": _slot_utilisation(slots, versions, cpts_id, first, last),
        "from_outside_territory": sum(r.patient_cpts != cpts_id for r in confirmed),
        "remuneration": remuneration(cpts_id, first, last, requests, versions, slots),
        "definitions": DEFINITIONS,
    }


def remuneration(
    cpts_id: str,
    first: date,
    last: date,
    requests: list[RequestFacts],
    versions: list[ProfessionalVersion],
    slots: list[SlotFacts],
) -> dict[str, Any]:
    """Avenant 9 helpers per GP of the CPTS: regulated consultations per week (capped at 20),
    hours of slots visible to the SAS per week (threshold 2 h) with declared participation,
    extra patients per quarter."""
    declared = set(participants(versions, cpts_id, last))
    gps = {v.rpps for v in versions if v.cpts_id == cpts_id and v.profession == "general_practitioner"}
    consultations: dict[str, Counter[str]] = defaultdict(Counter)
    overflow: dict[str, Counter[str]] = defaultdict(Counter)
    for r in requests:
        if (
            r.status == "confirmed"
            and r.appointment_rpps in gps
            and r.appointment_start
            and in_period(r.appointment_start, first, last)
        ):
            consultations[r.appointment_rpps][paris_week(r.appointment_start)] += 1
            if r.kind == "overflow":
                overflow[r.appointment_rpps][_quarter(r.appointment_start)] += 1
    hours: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for s in slots:
        if s.rpps in gps and not s.withdrawn and in_period(s.start, first, last):
            hours[s.rpps][paris_week(s.start)] += (s.end - s.start).total_seconds() / 3600
    return {
        rpps: {
            "declared_participation": rpps in declared,
            "regulated_consultations_by_week": {
                w: min(n, WEEKLY_CONSULTATION_CAP) for w, n in sorted(consultations[rpps].items())
            },
            "visible_slot_hours_by_week": {
                w: {"hours": round(h, 2), "threshold_met": h >= VISIBLE_HOURS_THRESHOLD}
                for w, h in sorted(hours[rpps].items())
            },
            "overflow_patients_by_quarter": dict(sorted(overflow[rpps].items())),
        }
        for rpps in sorted(gps)
    }
