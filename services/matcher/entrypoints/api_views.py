"""What the directory API answers, as models: the OpenAPI document then describes every body,
and the API fuzzer checks each answer against it (tests/e2e/test_api_fuzz.py). The routes build
plain dicts from the rows here and answer with `response_model_exclude_unset`, so that a key a
caller may not see (a professional's contact details, for a regulator) is left out, not null."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from services.common.access.roles import Client
from services.common.motives import Motive
from services.matcher.adapters import models


class View(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TerritoryView(View):
    cpts_id: str
    name: str
    communes: list[str]
    radius_km: float
    offer_timeout_minutes: float
    parallel_offers: int
    finess: str | None


class SiteView(View):
    site_id: str
    name: str
    commune_insee: str | None
    lat: float
    lon: float
    opening_hours: dict[str, Any] | None
    closures: list[dict[str, str]]
    address: dict[str, str] | None


class ChannelView(View):
    """A channel as stored; a webhook's `signing_secret` is shown once, when it is created."""

    model_config = ConfigDict(extra="allow")
    type: str
    destination: str


class ProfessionalView(View):
    """A professional's card; no `email`, `phone` or `channels` for a regulator."""

    rpps: str
    name: str
    profession: str
    cpts_id: str | None
    sas_participation: str
    accepts_overflow: bool
    overflow_daily_cap: int
    email: str | None = None
    phone: str | None = None
    teleconsultation: bool
    channels: list[ChannelView] = []
    active: bool
    paused_until: str | None
    no_overflow_on: str | None
    sites: list[SiteView]


class ProfessionalsPage(View):
    total: int
    limit: int
    offset: int
    items: list[ProfessionalView]


class SlotView(View):
    slot_id: str
    rpps: str
    site_id: str
    start: str
    end: str
    mode: str
    state: str


class Slots(View):
    items: list[SlotView]


class ImportReport(View):
    """What an RPPS import did: rows read, professionals created, updated or unchanged, and the
    rows skipped by reason."""

    rows: int
    created: int
    updated: int
    unchanged: int
    skipped: dict[str, int]


class WebhookSecret(View):
    url: str
    signing_secret: str


class WebhookSecrets(View):
    rpps: str
    webhooks: list[WebhookSecret]


class AvailabilityAdded(View):
    created: int
    already_there: int


class Paused(View):
    rpps: str
    paused_until: str | None


class Step(View):
    professions: list[str]
    protocol: str | None = None
    age_min: int | None = None
    age_max: int | None = None
    sexes: list[str] | None = None
    exclude: list[str] | None = None


class MotiveView(View):
    code: str
    label: str
    label_en: str
    professions: list[str]
    urgency: str | None = None
    steps: list[Step]


class Motives(View):
    version: str
    red_flags: dict[str, str]
    motives: list[MotiveView]


def territory_view(t: models.TerritoryRow) -> dict[str, Any]:
    return {
        "cpts_id": t.cpts_id,
        "name": t.name,
        "communes": t.communes,
        "radius_km": t.radius_km,
        "offer_timeout_minutes": t.offer_timeout_minutes,
        "parallel_offers": t.parallel_offers,
        "finess": t.finess,
    }


def site_view(s: models.SiteRow) -> dict[str, Any]:
    return {
        "site_id": s.site_id,
        "name": s.name,
        "commune_insee": s.commune_insee,
        "lat": s.lat,
        "lon": s.lon,
        "opening_hours": s.opening_hours,
        "closures": s.closures or [],
        "address": s.address,
    }


def professional_view(p: models.ProfessionalRow, sites: list[models.SiteRow]) -> dict[str, Any]:
    return {
        "rpps": p.rpps,
        "name": p.name,
        "profession": p.profession,
        "cpts_id": p.cpts_id,
        "sas_participation": p.sas_participation,
        "accepts_overflow": p.accepts_overflow,
        "overflow_daily_cap": p.overflow_daily_cap,
        "email": p.email,
        "phone": p.phone,
        "teleconsultation": p.teleconsultation,
        "channels": p.channels or [],
        "active": p.active,
        "paused_until": p.paused_until.isoformat() if p.paused_until else None,
        "no_overflow_on": p.no_overflow_on.isoformat() if p.no_overflow_on else None,
        "sites": [site_view(s) for s in sites],
    }


def seen_by(caller: Client, view: dict[str, Any]) -> dict[str, Any]:
    """A professional's card as the caller may see it: no e-mail, phone or channels for a regulator."""
    if caller.sees_contact_details():
        return view
    return {k: v for k, v in view.items() if k not in ("email", "phone", "channels")}


def slot_view(s: models.Slot) -> dict[str, Any]:
    return {
        "slot_id": s.slot_id,
        "rpps": s.rpps,
        "site_id": s.site_id,
        "start": s.start.isoformat(),
        "end": s.end.isoformat(),
        "mode": s.mode,
        "state": s.state,
    }


def motive_view(motive: Motive) -> dict[str, Any]:
    steps = []
    for step in motive.steps:
        criteria = {
            "protocol": step.protocol,
            "age_min": step.age_min,
            "age_max": step.age_max,
            "sexes": list(step.sexes) if step.sexes else None,
            "exclude": sorted(step.exclude) or None,
        }
        steps.append({"professions": list(step.professions), **{k: v for k, v in criteria.items() if v is not None}})
    return {
        "code": motive.code,
        "label": motive.label,
        "label_en": motive.label_en,
        "professions": list(motive.professions),
        **({"urgency": motive.urgency} if motive.urgency else {}),
        "steps": steps,
    }
