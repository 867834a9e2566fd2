"""The coordinator's directory page (/ops/directory): the CPTS's professionals, searched by name
or RPPS; one professional's slots of the coming week and participation; pausing them (a
professional on holiday who did not do it on their own page)."""

from __future__ import annotations

import secrets
from datetime import date, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from services.common.access.accounts import Operator
from services.common.clock import PARIS
from services.common.deps import public
from services.common.i18n import N_
from services.common.inputs import IDENT, Ident
from services.ops import professionals
from services.ops.adapters import cards, repository
from services.ops.deps import Operations, OperationsDep, OperatorDep, PageRoute

router = APIRouter(
    tags=["operations"],
    include_in_schema=False,
    route_class=PageRoute,
    dependencies=[public("an operations session (cookie) seeing the CPTS, checked by each page")],
)
DONE = {
    "paused": N_("Pause enregistrée : aucune demande ne lui sera proposée d'ici là."),
    "resumed": N_("Pause terminée : les demandes peuvent de nouveau lui être proposées."),
}


def _cpts(operator: Operator, asked: str | None) -> str | None:
    """The CPTS shown: the coordinator's own; for a sas_admin, the one chosen (None: choose first)."""
    cpts = asked or operator.cpts_id
    return cpts if cpts and operator.may_see(cpts) else None


@router.get("/ops/directory")
async def directory(
    request: Request,
    operator: OperatorDep,
    ops: OperationsDep,
    cpts_id: str | None = None,
    q: str = "",
    page: int = 0,
) -> Response:
    if operator is None:
        return RedirectResponse("/ops/login", status_code=303)
    cpts = _cpts(operator, cpts_id)
    if cpts is None:
        return RedirectResponse("/ops", status_code=303)  # a sas_admin picks a CPTS there
    query, page = q.strip()[:100], max(0, min(page, 1000))
    now = ops.accounts.clock()
    since = now - timedelta(days=professionals.PARTICIPATION_DAYS)
    total, found = await cards.professionals_page(ops.db, cpts_id=cpts, query=query, page=page, now=now, since=since)
    name, _ = await repository.territory(ops.db, cpts)
    return ops.page(
        request,
        "ops_directory.html",
        operator=operator,
        cpts=cpts,
        territory_name=name,
        q=query,
        page=page,
        total=total,
        pages=(total + cards.PAGE - 1) // cards.PAGE,
        professionals=found,
        now=ops.accounts.clock(),
    )


async def _card(
    request: Request,
    ops: Operations,
    operator: Operator,
    rpps: str,
    cpts: str | None,
    done: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    now = ops.accounts.clock()
    found = await professionals.card(ops.db, rpps, now)
    if cpts is None or found is None or found[0].cpts_id != cpts:
        return ops.page(request, "ops_message.html", 404, text=N_("Aucun professionnel de cette CPTS sous ce numéro."))
    version, slots, participation = found
    name, _ = await repository.territory(ops.db, cpts)
    return ops.page(
        request,
        "ops_professional.html",
        status,
        operator=operator,
        cpts=cpts,
        territory_name=name,
        p=version,
        slots=slots,
        part=participation,
        now=now,
        today=now.astimezone(PARIS).date(),
        paused=version.paused_until is not None and version.paused_until > now,
        done=DONE.get(done or ""),
        error=error,
    )


@router.get("/ops/directory/{rpps}")
async def professional(
    request: Request,
    rpps: Ident,
    operator: OperatorDep,
    ops: OperationsDep,
    cpts_id: str | None = None,
    done: str | None = None,
) -> Response:
    if operator is None:
        return RedirectResponse("/ops/login", status_code=303)
    return await _card(request, ops, operator, rpps, _cpts(operator, cpts_id), done)


@router.post("/ops/directory/{rpps}/pause")
async def pause(
    request: Request,
    rpps: Ident,
    operator: OperatorDep,
    ops: OperationsDep,
    csrf: Annotated[str, Form(max_length=100)],
    cpts_id: Annotated[str, Form(pattern=IDENT)],
    until: Annotated[date | None, Form()] = None,
) -> Response:
    """Pause until the end of `until`, or end the pause (no date). The read model shows it once
    the matcher has announced it (a fraction of a second)."""
    if operator is None:
        return RedirectResponse("/ops/login", status_code=303)
    cpts = _cpts(operator, cpts_id)
    if not secrets.compare_digest(csrf, operator.csrf) or cpts is None:
        return ops.page(request, "ops_message.html", 403, text=N_("Ce formulaire ne vient pas de votre session."))
    if await cards.cpts_of(ops.db, rpps=rpps) != cpts:  # one row read; the whole card only when a refusal shows it
        return ops.page(request, "ops_message.html", 404, text=N_("Aucun professionnel de cette CPTS sous ce numéro."))
    try:
        await ops.pauses.pause(rpps, until, operator.email)
    except professionals.PauseRefused as refused:
        return await _card(request, ops, operator, rpps, cpts, error=str(refused), status=422)
    except professionals.MatcherUnreachable:
        unreachable = N_("Le service ne répond pas pour le moment : rien n'a changé, réessayez dans un instant.")
        return await _card(request, ops, operator, rpps, cpts, error=unreachable, status=503)
    back = urlencode({"cpts_id": cpts, "done": "paused" if until else "resumed"})
    return RedirectResponse(f"/ops/directory/{rpps}?{back}", status_code=303)
