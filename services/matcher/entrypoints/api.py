"""The directory API (contract v2): territories, professionals and their sites, slots, motives.
Bodies read are in `api_inputs.py`, answers in `api_views.py`; who may reach what is below."""

from __future__ import annotations

import io
import tempfile
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import Field

from services.common import i18n
from services.common.access.roles import Client, Role, require_cpts
from services.common.audit import SYSTEM, Actor
from services.common.deps import CallerDep, InternalKey, SettingsDep, allow, checked_destination, provided
from services.common.http import CREATED, Problem, ProblemMap, invalid_field, problems
from services.common.inputs import INSEE, Ident, IdentQuery, InputModel, Instant
from services.common.motives import catalogue
from services.common.webhook_secrets import receiver_secret, rotated, with_versions
from services.matcher.directory import Directory
from services.matcher.directory.errors import NotFound, SlotBusy, UnknownReference
from services.matcher.directory.rpps_import import import_extraction
from services.matcher.domain.own_space import Refused
from services.matcher.domain.rpps import InvalidExtraction
from services.matcher.entrypoints import api_views as views
from services.matcher.entrypoints import pages
from services.matcher.entrypoints.api_inputs import (
    AvailabilityIn,
    Profession,
    ProfessionalIn,
    SlotIn,
    TerritoryIn,
    site_input,
)
from services.matcher.own_space import ProfessionalSpace


def _saved(response: Response, view: dict[str, Any], created: bool) -> dict[str, Any]:
    """201 for a new resource, 200 for one replaced."""
    response.status_code = 201 if created else 200
    return view


def _unknown(error: UnknownReference) -> Problem:
    """A 422 naming the field whose reference the directory does not have."""
    return invalid_field(error.field, str(error))


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
    known, cpts_id = await directory.professionals.cpts_of(rpps)
    if known or write:
        reach_cpts(caller, cpts_id, write)


async def reach_slot(caller: Client, directory: Directory, slot_id: str, write: bool) -> None:
    """A slot as its professional (a slot unknown here is left to the route)."""
    if write and caller.role == Role.REGULATOR:
        reach_cpts(caller, None, write)  # refused, whichever slot
    rpps = await directory.slots.professional_of(slot_id)
    if rpps is not None:
        await reach_professional(caller, directory, rpps, write)


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


@router.put("/v1/territories/{cpts_id}", responses=CREATED, dependencies=[WRITES], response_model=views.TerritoryView)
async def put_territory(
    cpts_id: Ident, body: TerritoryIn, response: Response, directory: DirectoryDep, caller: CallerDep
) -> dict[str, Any]:
    reach_cpts(caller, cpts_id, write=True)
    territory, created = await directory.territories.put(
        cpts_id, body.name, body.communes, body.radius_km, body.offer_timeout_minutes, body.parallel_offers, body.finess
    )
    return _saved(response, views.territory_view(territory), created)


@router.post(
    "/v1/territories/{cpts_id}/rpps-import",
    dependencies=[WRITES],
    responses=problems(404),
    response_model=views.ImportReport,
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


@router.get("/v1/territories/{cpts_id}", responses=problems(404), response_model=views.TerritoryView)
async def get_territory(cpts_id: Ident, directory: DirectoryDep, caller: CallerDep) -> dict[str, Any]:
    reach_cpts(caller, cpts_id, write=False)
    return views.territory_view(await directory.territories.get(cpts_id))


@router.put(
    "/v1/professionals/{rpps}",
    responses=CREATED,
    dependencies=[WRITES],
    response_model=views.ProfessionalView,
    response_model_exclude_unset=True,
)
async def put_professional(
    rpps: Ident,
    body: ProfessionalIn,
    response: Response,
    directory: DirectoryDep,
    caller: CallerDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """A directory client writes cards of its CPTS only, and moves none out of it."""
    await reach_professional(caller, directory, rpps, write=True)
    reach_cpts(caller, body.cpts_id, write=True)
    for channel in body.channels or []:
        if channel.url is not None:
            await checked_destination(settings, "channels.url", str(channel.url))
    channels, new_webhooks = with_versions(body.channel_list(), await directory.professionals.channels_of(rpps))
    fields = body.model_dump(exclude={"sites", "channels"}) | {"channels": channels}
    pro, sites, created = await directory.professionals.put(rpps, fields, [site_input(s) for s in body.sites])
    view = views.professional_view(pro, sites)
    for shown in view["channels"]:  # a new webhook's signing secret, shown this once
        if shown["type"] == "webhook" and shown["destination"] in new_webhooks:
            shown["signing_secret"] = receiver_secret(settings.webhook_secret, shown["destination"], 1)
    return _saved(response, view, created)


@router.post(
    "/v1/professionals/{rpps}/webhook-secret",
    responses=problems(404, 409),
    dependencies=[WRITES],
    response_model=views.WebhookSecrets,
)
async def rotate_webhook_secret(
    rpps: Ident, directory: DirectoryDep, caller: CallerDep, settings: SettingsDep
) -> dict[str, Any]:
    """A new signing secret for the professional's webhook, shown once; the previous one signs
    too for 24 hours (both signatures), so the booking software switches without losing a push."""
    await reach_professional(caller, directory, rpps, write=True)
    channels = await directory.professionals.channels_of(rpps)
    if not any(c.get("type") == "webhook" for c in channels):
        raise Problem(409, "Conflict", f"professional {rpps} has no webhook")
    now = directory.professionals.clock()
    changed = [rotated(c, now) if c.get("type") == "webhook" else c for c in channels]
    await directory.professionals.change_settings(rpps, {"channels": changed})
    secrets = [
        {
            "url": c["destination"],
            "signing_secret": receiver_secret(settings.webhook_secret, c["destination"], c["secret_version"]),
        }
        for c in changed
        if c.get("type") == "webhook"
    ]
    return {"rpps": rpps, "webhooks": secrets}


@router.get("/v1/professionals", response_model=views.ProfessionalsPage, response_model_exclude_unset=True)
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
    total, found = await directory.professionals.page(cpts_id, profession, commune_insee, limit, offset)
    items = [views.seen_by(caller, views.professional_view(pro, sites)) for pro, sites in found]
    return {"total": total, "limit": limit, "offset": offset, "items": items}


@router.get("/v1/slots", response_model=views.Slots)
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
    return {"items": [views.slot_view(s) for s in await directory.slots.between(rpps, first, last, limit)]}


@router.post("/v1/professionals/{rpps}/availability", dependencies=[WRITES], response_model=views.AvailabilityAdded)
async def add_availability(
    rpps: Ident, body: AvailabilityIn, directory: DirectoryDep, caller: CallerDep
) -> dict[str, int]:
    """Weekly SNP availability as a template, expanded into free slots for the coming weeks
    (public holidays and closures left out). Post it again any time — weekly, say — to keep
    the weeks ahead filled: slots already there are kept, never duplicated nor revived."""
    await reach_professional(caller, directory, rpps, write=True)
    rules = [r.rule() for r in body.rules]
    created, existing = await directory.availability.keep(rpps, body.site_id, rules, body.weeks)
    return {"created": created, "already_there": existing}


@router.get(
    "/v1/professionals/{rpps}",
    responses=problems(404),
    response_model=views.ProfessionalView,
    response_model_exclude_unset=True,
)
async def get_professional(rpps: Ident, directory: DirectoryDep, caller: CallerDep) -> dict[str, Any]:
    await reach_professional(caller, directory, rpps, write=False)
    return views.seen_by(caller, views.professional_view(*await directory.professionals.get(rpps)))


@router.delete("/v1/professionals/{rpps}", status_code=204, responses=problems(404), dependencies=[WRITES])
async def deactivate_professional(rpps: Ident, directory: DirectoryDep, caller: CallerDep) -> Response:
    await reach_professional(caller, directory, rpps, write=True)
    await directory.professionals.deactivate(rpps)
    return Response(status_code=204)


class PauseIn(InputModel):
    until: date = Field(strict=False, description="the last day (Paris) with no offers, included; at most a year ahead")


@router.put(
    "/v1/professionals/{rpps}/pause",
    responses=problems(404),
    dependencies=[WRITES],
    response_model=views.ProfessionalView,
    response_model_exclude_unset=True,
)
async def pause_professional(
    rpps: Ident, body: PauseIn, space: SpaceDep, directory: DirectoryDep, caller: CallerDep
) -> dict[str, Any]:
    """Ask the professional nothing until the end of `until` (holidays); they can end it on their page."""
    await reach_professional(caller, directory, rpps, write=True)
    await space.pause_of(rpps, body.until, Actor("client", caller.client_id))
    return views.professional_view(*await directory.professionals.get(rpps))


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


@internal.put("/internal/v1/professionals/{rpps}/pause", response_model=views.Paused)
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


@router.put(
    "/v1/slots/{slot_id}", responses={**CREATED, **problems(409)}, dependencies=[WRITES], response_model=views.SlotView
)
async def put_slot(
    slot_id: Ident, body: SlotIn, response: Response, directory: DirectoryDep, caller: CallerDep
) -> dict[str, Any]:
    await reach_slot(caller, directory, slot_id, write=True)
    await reach_professional(caller, directory, body.rpps, write=True)
    slot, created = await directory.slots.put(slot_id, body.rpps, body.site_id, body.start, body.end, body.mode)
    return _saved(response, views.slot_view(slot), created)


@router.get("/v1/slots/{slot_id}", responses=problems(404), response_model=views.SlotView)
async def get_slot(slot_id: Ident, directory: DirectoryDep, caller: CallerDep) -> dict[str, Any]:
    await reach_slot(caller, directory, slot_id, write=False)
    return views.slot_view(await directory.slots.get(slot_id))


@router.delete("/v1/slots/{slot_id}", status_code=204, responses=problems(404, 409), dependencies=[WRITES])
async def delete_slot(slot_id: Ident, directory: DirectoryDep, caller: CallerDep) -> Response:
    await reach_slot(caller, directory, slot_id, write=True)
    await directory.slots.withdraw(slot_id)
    return Response(status_code=204)


@router.get("/v1/motives", response_model=views.Motives, response_model_exclude_unset=True)
async def motives() -> dict[str, Any]:
    cat = catalogue()
    return {
        "version": cat.version,
        "red_flags": cat.red_flags,
        "motives": [views.motive_view(mo) for mo in cat.motives.values()],
    }
