"""The operations dashboard (/ops): log in, watch the live queue, read the period's figures.

Coordinators see their own CPTS only; a sas_admin chooses any. Forms carry a CSRF token (a
double-submit cookie before login, the session's token after); the session cookie is HttpOnly,
SameSite=Strict, and Secure when PUBLIC_BASE_URL is https.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Cookie, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.common import i18n
from services.common.access.accounts import Operator, TooManyAttempts, WrongDoor
from services.common.clock import PARIS
from services.common.deps import per_address, public
from services.common.http import Problem, invalid_field
from services.common.i18n import N_
from services.common.inputs import has_control_characters
from services.ops import charts, indicators
from services.ops.adapters import repository
from services.ops.api import checked_period
from services.ops.deps import CSRF_COOKIE, LOCALE, SESSION_COOKIE, Operations, OperationsDep, OperatorDep, PageRoute

NEAR_DEADLINE = timedelta(hours=4)


router = APIRouter(
    tags=["operations"],
    include_in_schema=False,
    route_class=PageRoute,
    dependencies=[public("the login form; every other page needs an operations session (cookie)")],
)
HEADERS = {"Cache-Control": "no-store"}


def _login_page(request: Request, ops: Operations, error: str | None = None, status: int = 200) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = ops.page(request, "ops_login.html", status, csrf=token, error=error)
    response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", secure=ops.secure_cookies)
    return response


@router.get("/ops/login", response_class=HTMLResponse)
async def show_login(request: Request, ops: OperationsDep) -> HTMLResponse:
    return _login_page(request, ops)


@router.post("/ops/login", dependencies=[per_address("login", "login_rate_limit")])
async def log_in(
    request: Request,
    email: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=200)],
    csrf: Annotated[str, Form(max_length=100)],
    ops: OperationsDep,
    csrf_cookie: Annotated[str | None, Cookie(alias=CSRF_COOKIE)] = None,
) -> Response:
    if not csrf_cookie or not secrets.compare_digest(csrf, csrf_cookie):
        return _login_page(request, ops, N_("Le formulaire a expiré : recommencez."), 403)
    if has_control_characters(email):
        return _login_page(
            request, ops, N_("Adresse ou mot de passe incorrect."), 401
        )  # no account has such an address
    client = request.client.host if request.client else "unknown"
    try:
        token = await ops.accounts.log_in(email, password, client)
    except TooManyAttempts:
        return _login_page(request, ops, N_("Trop de tentatives : réessayez dans un quart d'heure."), 429)
    except WrongDoor:
        return _login_page(
            request, ops, N_("Ce compte est celui d'un régulateur : connectez-vous à la console, /r."), 403
        )
    if token is None:
        return _login_page(request, ops, N_("Adresse ou mot de passe incorrect."), 401)
    response = RedirectResponse("/ops", status_code=303)
    response.set_cookie(
        SESSION_COOKIE, token, httponly=True, samesite="strict", secure=ops.secure_cookies, max_age=12 * 3600
    )
    response.delete_cookie(CSRF_COOKIE)
    return response


@router.post("/ops/logout")
async def log_out(
    request: Request, csrf: Annotated[str, Form(max_length=100)], operator: OperatorDep, ops: OperationsDep
) -> Response:
    if operator is not None:
        if not secrets.compare_digest(csrf, operator.csrf):
            raise Problem(403, "Forbidden", "this form is not from your session")  # and nothing changes
        await ops.accounts.log_out(request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/ops/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


def chosen_cpts(operator: Operator, asked: str | None) -> str:
    cpts = asked or operator.cpts_id
    if cpts is None:
        raise invalid_field("cpts_id", "choose a CPTS")
    if not operator.may_see(cpts):
        raise Problem(403, "Forbidden", f"this account does not see CPTS {cpts}")
    return cpts


def _period(request: Request, today: date) -> tuple[date, date]:
    """The dashboard's period: `from` and `to` (YYYY-MM-DD), the last 30 days by default."""
    try:
        first = date.fromisoformat(request.query_params.get("from") or (today - timedelta(days=29)).isoformat())
        last = date.fromisoformat(request.query_params.get("to") or today.isoformat())
    except ValueError:
        raise Problem(
            422,
            "Invalid request",
            "invalid or missing fields: from, to",
            errors=[{"field": "from", "message": "dates are YYYY-MM-DD"}],
        ) from None
    return checked_period(first, last)


@router.get("/ops", response_class=HTMLResponse)
async def dashboard(
    request: Request, operator: OperatorDep, ops: OperationsDep, cpts_id: str | None = None
) -> Response:
    if operator is None:
        return RedirectResponse("/ops/login", status_code=303)
    if cpts_id is None and operator.cpts_id is None:  # a sas_admin sees every CPTS: which one?
        territories = await repository.known_cpts(ops.db)
        return ops.page(request, "ops_pick.html", operator=operator, territories=territories)
    cpts = chosen_cpts(operator, cpts_id)
    first, last = _period(request, ops.accounts.clock().astimezone(PARIS).date())
    requests, offers, versions, slots = await repository.facts(ops.db, first, last)
    figures = indicators.figures(cpts, first, last, requests, offers, versions, slots)
    name, communes = await repository.territory(ops.db, cpts)
    lang = ops.language(request)
    return ops.page(
        request,
        "ops_dashboard.html",
        operator=operator,
        cpts=cpts,
        first=first,
        last=last,
        f=figures,
        live=await live_view(ops, cpts),
        territory_name=name,
        charts=period_charts(
            cpts, first, last, requests, figures, await repository.professional_names(ops.db), communes, lang
        ),
    )


@router.get("/ops/live", response_class=HTMLResponse)
async def live(request: Request, operator: OperatorDep, ops: OperationsDep, cpts_id: str | None = None) -> Response:
    if operator is None:
        return Response(status_code=401)
    cpts = chosen_cpts(operator, cpts_id)
    return ops.page(request, "ops_live.html", live=await live_view(ops, cpts))


async def live_view(ops: Operations, cpts: str) -> dict[str, Any]:
    """Requests in progress, offers waiting with the time left, the latest outcomes."""
    now = ops.accounts.clock()
    open_requests, waiting, outcomes = await repository.live(ops.db, cpts)
    return {
        "now": now,
        "requests": [
            {
                "request_id": r.request_id,
                "status": "offered" if r.offered else "searching",
                "waiting": None if r.offered else r.waiting,  # candidates_busy | not_yet_open | on_pause
                "age_minutes": int((now - r.received_at).total_seconds() // 60),
                "near_deadline": bool(r.deadline and r.deadline - now < NEAR_DEADLINE),
                "deadline": r.deadline,
            }
            for r in open_requests
        ],
        "waiting": [
            {
                "request_id": w.request_id,
                "rpps": w.rpps,
                "name": w.name or w.rpps,
                "minutes_left": max(0, math.ceil((w.answer_by - now).total_seconds() / 60)) if w.answer_by else "?",
            }
            for w in waiting
        ],
        "outcomes": [
            {
                "request_id": o.request_id,
                "outcome": o.outcome,
                "reason": o.reason,
                "at": o.at,
                # an appointment: with whom, and when
                "professional": (o.name or o.appointment_rpps) if o.outcome == "confirmed" else None,
                "start": o.appointment_start if o.outcome == "confirmed" else None,
                "extra": o.kind == "overflow",
            }
            for o in outcomes
        ],
    }


def period_charts(
    cpts: str,
    first: date,
    last: date,
    requests: list[indicators.RequestFacts],
    figures: dict[str, Any],
    names: dict[str, str] | None = None,
    territory: Sequence[str] = (),
    lang: i18n.Lang = "fr",
) -> dict[str, str]:
    """The period's charts and map, as SVG (see charts.py), in the reader's language."""
    t = i18n.translations(LOCALE, lang).gettext
    mine = [
        r
        for r in requests
        if indicators.in_period(r.received_at, first, last) and cpts in (r.patient_cpts, r.appointment_cpts)
    ]
    through = indicators.through_cpts(requests, cpts, first, last)
    utilisation = []
    for rpps, weeks in figures["slot_utilisation"]["by_professional_and_week"].items():
        booked = sum(w["booked"] for w in weeks.values())
        published = sum(w["published"] for w in weeks.values())
        utilisation.append(((names or {}).get(rpps, rpps), round(100 * booked / max(1, published))))
    refusals = [(i18n.label(code, "refusal", lang), n) for code, n in figures["offers"]["refused"].items()]
    waits = t("De la réception de la demande à la confirmation du rendez-vous")
    return {
        "per_day": charts.requests_per_day(mine, first, last, t=t),
        "waits": charts.bars(charts.wait_distribution(through), waits, t=t),
        "refusals": charts.bars(refusals, t("Refus par motif"), "#cf222e", t=t),
        "utilisation": charts.bars(
            utilisation, t("Créneaux réservés, en % des publiés, par professionnel"), "#1a7f37", t=t
        ),
        "map": charts.commune_map(mine, territory, t=t),
    }
