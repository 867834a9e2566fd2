"""The directory API (contract v1): territories, professionals and their sites, slots, motives."""

from __future__ import annotations

import io
import tempfile
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import EmailStr, Field, HttpUrl, field_validator, model_validator

from services.common import geo, i18n
from services.common.access.roles import Client, Role, require_cpts
from services.common.audit import SYSTEM, Actor
from services.common.deps import CallerDep, InternalKey, SettingsDep, allow, checked_destination, provided
from services.common.http import CREATED, Problem, ProblemMap, invalid_field, problems
from services.common.inputs import IDENT, INSEE, PHONE, Ident, IdentQuery, InputModel, Instant
from services.common.motives import Motive, catalogue
from services.common.webhook_secrets import receiver_secret, rotated, with_versions
from services.matcher import models, pages
from services.matcher.directory import Directory, NotFound, SiteInput, SlotBusy, UnknownReference
from services.matcher.domain.availability import Recurring, rule_of
from services.matcher.domain.opening_hours import InvalidOpeningHours, WeeklyHours
from services.matcher.domain.own_space import Refused
from services.matcher.domain.rpps import InvalidExtraction
from services.matcher.own_space import ProfessionalSpace
from services.matcher.rpps_import import import_extraction

Profession = Literal["general_practitioner", "dentist", "pharmacist", "nurse", "physiotherapist", "midwife"]


class StartBeforeEnd(InputModel):
    """A period: a closure, a slot, a daily window of a template."""

    start: Any
    end: Any

    @model_validator(mode="after")
    def ordered(self) -> StartBeforeEnd:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class TerritoryIn(InputModel):
    name: str = Field(min_length=1, max_length=200)
    communes: list[str] = Field(min_length=1, max_length=2000)
    radius_km: float = Field(default=30.0, gt=0, le=300)
    offer_timeout_minutes: float = Field(default=15.0, ge=1, le=240, description="time to answer an offer")
    parallel_offers: int = Field(
        default=1, ge=1, le=5, description="professionals asked at once; the first to accept takes the patient"
    )
    finess: str | None = Field(
        default=None,
        pattern=r"^(?:[0-9]{2}|2A|2B)[0-9]{7}$",
        description="the CPTS's FINESS number: its identity for the national SAS platform (FHIR Organization)",
    )

    @field_validator("communes")
    @classmethod
    def known_communes(cls, communes: list[str]) -> list[str]:
        unknown = [c for c in communes if geo.commune(c) is None]
        if unknown:
            raise ValueError(f"unknown INSEE commune codes: {', '.join(unknown[:10])}")
        return sorted({geo.communes()[c].current for c in communes})


class ClosureIn(StartBeforeEnd):
    start: Instant
    end: Instant
    reason: str | None = Field(default=None, max_length=200)


class AddressIn(InputModel):
    line: str = Field(default="", max_length=200, description="number and street")
    postal_code: str = Field(default="", pattern=r"^([0-9]{5})?$")
    city: str = Field(default="", max_length=100)


class SiteIn(InputModel):
    site_id: str = Field(pattern=IDENT)
    name: str = Field(min_length=1, max_length=200)
    commune_insee: str | None = Field(default=None, pattern=INSEE)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    opening_hours: dict[str, list[list[str]]] | None = Field(default=None, max_length=7)
    address: AddressIn | None = Field(default=None, description="shown to the regulator with the appointment")
    closures: list[ClosureIn] = Field(
        default_factory=list, max_length=100, description="holidays, absences: the site is closed"
    )

    @model_validator(mode="after")
    def located(self) -> SiteIn:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon go together")
        if self.commune_insee is None and self.lat is None:
            raise ValueError("give commune_insee, or lat and lon")
        if self.commune_insee is not None and geo.commune(self.commune_insee) is None:
            raise ValueError(f"unknown INSEE commune code {self.commune_insee!r}")
        if self.opening_hours is not None:
            try:
                WeeklyHours.parse(self.opening_hours)
            except InvalidOpeningHours as error:
                raise ValueError(f"opening_hours: {error}") from None
        return self


class ChannelIn(InputModel):
    """How to reach the professional; e-mail and SMS use the professional's address and phone."""

    type: Literal["email", "sms", "webhook"]
    url: HttpUrl | None = Field(default=None, description="webhook only: where the booking software listens")

    @model_validator(mode="after")
    def addressed(self) -> ChannelIn:
        if (self.type == "webhook") != (self.url is not None):
            raise ValueError("a webhook needs a url, and only a webhook has one")
        return self


class ProfessionalIn(InputModel):
    name: str = Field(min_length=1, max_length=200)
    profession: Profession
    cpts_id: str | None = Field(default=None, pattern=IDENT)
    sas_participation: Literal["individual", "via_cpts", "none"] = "none"
    accepts_overflow: bool = False
    overflow_daily_cap: int = Field(default=0, ge=0, le=50)
    email: EmailStr | None = None
    phone: str | None = Field(default=None, pattern=PHONE)
    teleconsultation: bool = Field(default=False, description="takes overflow patients by teleconsultation too")
    channels: list[ChannelIn] | None = Field(
        default=None, max_length=10, description="in order; by default e-mail, then SMS when a phone is given"
    )
    active: bool = True
    sites: list[SiteIn] = Field(min_length=1, max_length=50)

    @model_validator(mode="after")
    def reachable(self) -> ProfessionalIn:
        for channel in self.channels or []:
            if channel.type == "email" and not self.email:
                raise ValueError("an email channel needs the email address")
            if channel.type == "sms" and not self.phone:
                raise ValueError("an sms channel needs the phone number")
        return self

    def channel_list(self) -> list[dict[str, str]]:
        given = self.channels
        if given is None:
            given = [ChannelIn(type="email")] if self.email else []
            given += [ChannelIn(type="sms")] if self.phone else []
        address = {"email": self.email, "sms": self.phone}
        return [{"type": c.type, "destination": str(c.url) if c.url else str(address[c.type])} for c in given]

    @field_validator("sites")
    @classmethod
    def distinct_sites(cls, sites: list[SiteIn]) -> list[SiteIn]:
        if len({s.site_id for s in sites}) != len(sites):
            raise ValueError("site_id values must be distinct")
        return sites


class SlotIn(StartBeforeEnd):
    rpps: str = Field(pattern=IDENT)
    site_id: str = Field(pattern=IDENT)
    start: Instant
    end: Instant
    mode: Literal["in_person", "teleconsultation"] = "in_person"


class RecurringIn(StartBeforeEnd):
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(min_length=1, max_length=7)
    start: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="Paris time, HH:MM")
    end: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    minutes: int = Field(default=20, ge=5, le=240, description="length of each slot")
    mode: Literal["in_person", "teleconsultation"] = "in_person"

    def rule(self) -> Recurring:
        return rule_of(self.model_dump())


class AvailabilityIn(InputModel):
    site_id: str = Field(pattern=IDENT)
    weeks: int = Field(default=4, ge=1, le=12, description="how far ahead, from today")
    rules: list[RecurringIn] = Field(min_length=1, max_length=20)


def _site_input(site: SiteIn) -> SiteInput:
    if site.lat is not None and site.lon is not None:
        lat, lon = site.lat, site.lon
        department = geo.communes()[site.commune_insee].department if site.commune_insee else None
    else:
        commune = geo.communes()[site.commune_insee or ""]
        lat, lon, department = commune.lat, commune.lon, commune.department
    closures = [
        {"start": c.start.isoformat(), "end": c.end.isoformat(), "reason": c.reason or ""} for c in site.closures
    ]
    return SiteInput(
        site.site_id,
        site.name,
        site.commune_insee,
        department,
        lat,
        lon,
        site.opening_hours,
        closures or None,
        site.address.model_dump() if site.address else None,
    )


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
        "sites": [
            {
                "site_id": s.site_id,
                "name": s.name,
                "commune_insee": s.commune_insee,
                "lat": s.lat,
                "lon": s.lon,
                "opening_hours": s.opening_hours,
                "closures": s.closures or [],
                "address": s.address,
            }
            for s in sites
        ],
    }


def _unknown(error: UnknownReference) -> Problem:
    """A 422 naming the field whose reference the directory does not have."""
    return invalid_field(error.field, str(error))


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


def _saved(view: dict[str, Any], created: bool) -> JSONResponse:
    return JSONResponse(view, status_code=201 if created else 200)


DirectoryDep = Annotated[Directory, Depends(provided(Directory))]
SpaceDep = Annotated[ProfessionalSpace, Depends(provided(ProfessionalSpace))]
router = APIRouter(tags=["directory"], dependencies=[allow(Role.DIRECTORY, Role.REGULATOR)])
WRITES = allow(Role.DIRECTORY)  # refused to a regulator before its body is even read


# Who reaches what in the directory (contract v2): an admin everything; a directory client its
# CPTS's cards, slots and territory only (403 naming the other CPTS); a regulator reads, without
# a professional's e-mail, phone or channels, and writes nothing.


def reach_cpts(caller: Client, cpts_id: str | None, write: bool) -> None:
    if write or caller.role != Role.REGULATOR:
        require_cpts(caller, cpts_id)


async def reach_professional(caller: Client, directory: Directory, rpps: str, write: bool) -> None:
    """A professional unknown here is left to the route (404, or created by a PUT)."""
    if caller.is_admin or (caller.role == Role.REGULATOR and not write):
        return
    known, cpts_id = await directory.cpts_of(rpps)
    if known or write:
        reach_cpts(caller, cpts_id, write)


async def reach_slot(caller: Client, directory: Directory, slot_id: str, write: bool) -> None:
    """A slot as its professional (a slot unknown here is left to the route)."""
    if write and caller.role == Role.REGULATOR:
        reach_cpts(caller, None, write)  # refused, whichever slot
    rpps = await directory.professional_of_slot(slot_id)
    if rpps is not None:
        await reach_professional(caller, directory, rpps, write)


def seen_by(caller: Client, view: dict[str, Any]) -> dict[str, Any]:
    """A professional's card as the caller may see it: no e-mail, phone or channels for a regulator."""
    if caller.sees_contact_details():
        return view
    return {k: v for k, v in view.items() if k not in ("email", "phone", "channels")}


def _invalid_file(error: Exception) -> Problem:
    return invalid_field("body", str(error) if isinstance(error, InvalidExtraction) else "the file is not UTF-8 text")


def _refused(error: Refused, lang: str = "en") -> Problem:
    """A professional's setting refused: the reason in English (the page's catalogue), or French."""
    return invalid_field(error.field, i18n.translations(pages.LOCALE, lang).gettext(error.text))


# the directory's exceptions as problems (registered with the runtime: services/common/http.py)
PROBLEMS: ProblemMap = {
    Refused: _refused,
    NotFound: lambda e: Problem(404, "Not Found", str(e)),
    UnknownReference: _unknown,
    SlotBusy: lambda e: Problem(409, "Conflict", str(e)),
    InvalidExtraction: _invalid_file,
}


@router.put("/v1/territories/{cpts_id}", responses=CREATED, dependencies=[WRITES])
async def put_territory(cpts_id: Ident, body: TerritoryIn, directory: DirectoryDep, caller: CallerDep) -> JSONResponse:
    reach_cpts(caller, cpts_id, write=True)
    territory, created = await directory.put_territory(
        cpts_id, body.name, body.communes, body.radius_km, body.offer_timeout_minutes, body.parallel_offers, body.finess
    )
    return _saved(territory_view(territory), created)


@router.post(
    "/v1/territories/{cpts_id}/rpps-import",
    dependencies=[WRITES],
    responses=problems(404),
    openapi_extra={"requestBody": {"required": True, "content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def import_rpps(cpts_id: Ident, request: Request, directory: DirectoryDep, caller: CallerDep) -> dict[str, Any]:
    """The national directory's extraction for this territory (see `sas-import-rpps`): the file
    as the body, up to MAX_UPLOAD_BYTES; kept on disk while it is read, never in memory."""
    reach_cpts(caller, cpts_id, write=True)
    with tempfile.TemporaryFile("w+b") as upload:
        async for chunk in request.stream():
            upload.write(chunk)
        upload.seek(0)
        lines = io.TextIOWrapper(upload, encoding="utf-8", newline="")
        try:
            report = await import_extraction(directory, lines, cpts_id)
        except UnicodeDecodeError as error:
            raise _invalid_file(error) from None
    return report.as_dict()


@router.get("/v1/territories/{cpts_id}", responses=problems(404))
async def get_territory(cpts_id: Ident, directory: DirectoryDep, caller: CallerDep) -> dict[str, Any]:
    reach_cpts(caller, cpts_id, write=False)
    return territory_view(await directory.get_territory(cpts_id))


@router.put("/v1/professionals/{rpps}", responses=CREATED, dependencies=[WRITES])
async def put_professional(
    rpps: Ident, body: ProfessionalIn, directory: DirectoryDep, caller: CallerDep, settings: SettingsDep
) -> JSONResponse:
    """A directory client writes cards of its CPTS only, and moves none out of it."""
    await reach_professional(caller, directory, rpps, write=True)
    reach_cpts(caller, body.cpts_id, write=True)
    for channel in body.channels or []:
        if channel.url is not None:
            await checked_destination(settings, "channels.url", str(channel.url))
    channels, new_webhooks = with_versions(body.channel_list(), await directory.channels_of(rpps))
    fields = body.model_dump(exclude={"sites", "channels"}) | {"channels": channels}
    pro, sites, created = await directory.put_professional(rpps, fields, [_site_input(s) for s in body.sites])
    view = professional_view(pro, sites)
    for shown in view["channels"]:  # a new webhook's signing secret, shown this once
        if shown["type"] == "webhook" and shown["destination"] in new_webhooks:
            shown["signing_secret"] = receiver_secret(settings.webhook_secret, shown["destination"], 1)
    return _saved(view, created)


@router.post("/v1/professionals/{rpps}/webhook-secret", responses=problems(404, 409), dependencies=[WRITES])
async def rotate_webhook_secret(
    rpps: Ident, directory: DirectoryDep, caller: CallerDep, settings: SettingsDep
) -> dict[str, Any]:
    """A new signing secret for the professional's webhook, shown once; the previous one signs
    too for 24 hours (both signatures), so the booking software switches without losing a push."""
    await reach_professional(caller, directory, rpps, write=True)
    channels = await directory.channels_of(rpps)
    if not any(c.get("type") == "webhook" for c in channels):
        raise Problem(409, "Conflict", f"professional {rpps} has no webhook")
    now = directory.clock()
    changed = [rotated(c, now) if c.get("type") == "webhook" else c for c in channels]
    await directory.change_settings(rpps, {"channels": changed})
    secrets = [
        {
            "url": c["destination"],
            "signing_secret": receiver_secret(settings.webhook_secret, c["destination"], c["secret_version"]),
        }
        for c in changed
        if c.get("type") == "webhook"
    ]
    return {"rpps": rpps, "webhooks": secrets}


@router.get("/v1/professionals")
async def list_professionals(
    cpts_id: IdentQuery,
    directory: DirectoryDep,
    caller: CallerDep,
    profession: Profession | None = None,
    commune_insee: Annotated[str | None, Query(pattern=INSEE)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    """A territory's professionals, by name, a page at a time (what an import loaded, say)."""
    reach_cpts(caller, cpts_id, write=False)
    total, found = await directory.list_professionals(cpts_id, profession, commune_insee, limit, offset)
    items = [seen_by(caller, professional_view(pro, sites)) for pro, sites in found]
    return {"total": total, "limit": limit, "offset": offset, "items": items}


@router.get("/v1/slots")
async def list_slots(
    rpps: IdentQuery,
    first: Annotated[Instant, Query(alias="from")],
    last: Annotated[Instant, Query(alias="to")],
    directory: DirectoryDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> dict[str, Any]:
    """A professional's slots starting between `from` and `to` (RFC 3339, with an offset), any state."""
    await reach_professional(caller, directory, rpps, write=False)
    if last <= first:
        raise invalid_field("to", "`to` must be after `from`")
    return {"items": [slot_view(s) for s in await directory.list_slots(rpps, first, last, limit)]}


@router.post("/v1/professionals/{rpps}/availability", dependencies=[WRITES])
async def add_availability(
    rpps: Ident, body: AvailabilityIn, directory: DirectoryDep, caller: CallerDep
) -> dict[str, int]:
    """Weekly SNP availability as a template, expanded into free slots for the coming weeks
    (public holidays and closures left out). Post it again any time — weekly, say — to keep
    the weeks ahead filled: slots already there are kept, never duplicated nor revived."""
    await reach_professional(caller, directory, rpps, write=True)
    rules = [r.rule() for r in body.rules]
    created, existing = await directory.keep_availability(rpps, body.site_id, rules, body.weeks)
    return {"created": created, "already_there": existing}


@router.get("/v1/professionals/{rpps}", responses=problems(404))
async def get_professional(rpps: Ident, directory: DirectoryDep, caller: CallerDep) -> dict[str, Any]:
    await reach_professional(caller, directory, rpps, write=False)
    return seen_by(caller, professional_view(*await directory.get_professional(rpps)))


@router.delete("/v1/professionals/{rpps}", status_code=204, responses=problems(404), dependencies=[WRITES])
async def deactivate_professional(rpps: Ident, directory: DirectoryDep, caller: CallerDep) -> Response:
    await reach_professional(caller, directory, rpps, write=True)
    await directory.deactivate_professional(rpps)
    return Response(status_code=204)


class PauseIn(InputModel):
    until: date = Field(strict=False, description="the last day (Paris) with no offers, included; at most a year ahead")


@router.put("/v1/professionals/{rpps}/pause", responses=problems(404), dependencies=[WRITES])
async def pause_professional(
    rpps: Ident, body: PauseIn, space: SpaceDep, directory: DirectoryDep, caller: CallerDep
) -> dict[str, Any]:
    """Ask the professional nothing until the end of `until` (holidays); they can end it on their page."""
    await reach_professional(caller, directory, rpps, write=True)
    await space.pause_of(rpps, body.until, Actor("client", caller.client_id))
    return professional_view(*await directory.get_professional(rpps))


@router.delete("/v1/professionals/{rpps}/pause", status_code=204, responses=problems(404), dependencies=[WRITES])
async def end_pause(rpps: Ident, space: SpaceDep, directory: DirectoryDep, caller: CallerDep) -> Response:
    await reach_professional(caller, directory, rpps, write=True)
    await space.pause_of(rpps, None, Actor("client", caller.client_id))
    return Response(status_code=204)


@router.delete("/v1/professionals/{rpps}/links", status_code=204, responses=problems(404), dependencies=[WRITES])
async def revoke_links(rpps: Ident, space: SpaceDep, directory: DirectoryDep, caller: CallerDep) -> Response:
    """Every personal link sent to the professional stops working (a lost phone); they get a new
    one from "send me my link" or the next message."""
    await reach_professional(caller, directory, rpps, write=True)
    await space.revoke_links_of(rpps)
    return Response(status_code=204)


internal = APIRouter(include_in_schema=False, dependencies=[InternalKey])


class InternalPauseIn(InputModel):
    until: date | None = Field(default=None, strict=False, description="the last day paused; null ends the pause")
    by: str | None = Field(default=None, max_length=200, description="the operations account asking (audit trail)")


@internal.put("/internal/v1/professionals/{rpps}/pause")
async def pause_for_operations(
    request: Request, rpps: Ident, body: InternalPauseIn, space: SpaceDep
) -> dict[str, str | None]:
    """The operations service's directory page pausing a professional (its refusals in the
    language it asks for: the coordinator reads them; `by` the coordinator's account)."""
    try:
        pro = await space.pause_of(rpps, body.until, Actor("account", body.by) if body.by else SYSTEM)
    except Refused as refused:
        lang = "fr" if request.headers.get("accept-language", "").startswith("fr") else "en"
        raise _refused(refused, lang) from None
    return {"rpps": rpps, "paused_until": pro.paused_until.isoformat() if pro.paused_until else None}


@router.put("/v1/slots/{slot_id}", responses={**CREATED, **problems(409)}, dependencies=[WRITES])
async def put_slot(slot_id: Ident, body: SlotIn, directory: DirectoryDep, caller: CallerDep) -> JSONResponse:
    await reach_slot(caller, directory, slot_id, write=True)
    await reach_professional(caller, directory, body.rpps, write=True)
    slot, created = await directory.put_slot(slot_id, body.rpps, body.site_id, body.start, body.end, body.mode)
    return _saved(slot_view(slot), created)


@router.get("/v1/slots/{slot_id}", responses=problems(404))
async def get_slot(slot_id: Ident, directory: DirectoryDep, caller: CallerDep) -> dict[str, Any]:
    await reach_slot(caller, directory, slot_id, write=False)
    return slot_view(await directory.get_slot(slot_id))


@router.delete("/v1/slots/{slot_id}", status_code=204, responses=problems(404, 409), dependencies=[WRITES])
async def delete_slot(slot_id: Ident, directory: DirectoryDep, caller: CallerDep) -> Response:
    await reach_slot(caller, directory, slot_id, write=True)
    await directory.withdraw_slot(slot_id)
    return Response(status_code=204)


@router.get("/v1/motives")
async def motives() -> dict[str, Any]:
    cat = catalogue()
    return {
        "version": cat.version,
        "red_flags": cat.red_flags,
        "motives": [_motive_view(mo) for mo in cat.motives.values()],
    }


def _motive_view(motive: Motive) -> dict[str, Any]:
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
