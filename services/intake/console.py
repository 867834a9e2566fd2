"""The regulators' console (/r): a SAS whose software does not speak the API sends and follows its
requests in a browser. A regulator logs in with an account of the `regulator` role; it sees its
organisation's requests only, as the organisation's API clients do. Every action goes through
the same service functions as the API (`to_new_request`, `IntakeService`), audited as the
account. Forms carry the session's CSRF token (a double-submit cookie before login); the
session cookie is HttpOnly, SameSite=Strict, Secure behind https.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Cookie, Depends, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from services.common.access.accounts import CONSOLE, Accounts, Operator, TooManyAttempts, WrongDoor
from services.common.audit import Actor
from services.common.clock import PARIS
from services.common.deps import per_address, provided, public
from services.common.http import Problem, failures_answered_by
from services.common.i18n import N_
from services.common.inputs import Ident, has_control_characters
from services.common.motives import catalogue
from services.common.pages import language
from services.intake import console_views as views
from services.intake.api import RequestIn, to_new_request
from services.intake.domain import CannotCancel, ReceivedAtOutOfRange, RequestNotFound
from services.intake.pages import IntakePages
from services.intake.service import IntakeService

SESSION_COOKIE = "sas_console"
CSRF_COOKIE = "sas_console_csrf"
SHOWN = 100  # the organisation's latest requests in the list


@dataclass(frozen=True)
class Console:
    """The console as its routes see it: the intake's use cases, the accounts, the pages."""

    service: IntakeService
    accounts: Accounts  # the shared schema's, reached as the intake's role
    pages: IntakePages

    async def regulator(self, request: Request) -> Operator | None:
        return await self.accounts.operator(request.cookies.get(SESSION_COOKIE), CONSOLE)


ConsoleDep = Annotated[Console, Depends(provided(Console))]


def _refusal(request: Request, error: Exception) -> Response | None:
    """A form that sent what none of its controls sends: a page saying so (422), not JSON."""
    if not isinstance(error, RequestValidationError):
        return None
    text = N_("Ce que le formulaire a envoyé n'est pas valide. Rien n'a changé.")
    return provided(Console)(request).pages.page(request, "console_message.html", 422, text=text)


router = APIRouter(
    include_in_schema=False,
    route_class=failures_answered_by(_refusal),
    dependencies=[public("the regulators' console: the login form; every other page needs a regulator's session")],
)


# --- logging in and out ---------------------------------------------------------------------


def _login_page(request: Request, console: Console, error: str | None = None, status: int = 200) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = console.pages.page(request, "console_login.html", status, csrf=token, error=error)
    response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", secure=console.pages.secure_cookies)
    return response


@router.get("/r/login", response_class=HTMLResponse)
async def show_login(request: Request, console: ConsoleDep) -> HTMLResponse:
    return _login_page(request, console)


@router.post("/r/login", dependencies=[per_address("login", "login_rate_limit")])
async def log_in(
    request: Request,
    email: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=200)],
    csrf: Annotated[str, Form(max_length=100)],
    console: ConsoleDep,
    csrf_cookie: Annotated[str | None, Cookie(alias=CSRF_COOKIE)] = None,
) -> Response:
    if not csrf_cookie or not secrets.compare_digest(csrf, csrf_cookie):
        return _login_page(request, console, N_("Le formulaire a expiré : recommencez."), 403)
    wrong = N_("Adresse ou mot de passe incorrect.")
    if has_control_characters(email):
        return _login_page(request, console, wrong, 401)
    client = request.client.host if request.client else "unknown"
    try:
        token = await console.accounts.log_in(email, password, client, CONSOLE)
    except TooManyAttempts:
        return _login_page(request, console, N_("Trop de tentatives : réessayez dans un quart d'heure."), 429)
    except WrongDoor:
        return _login_page(request, console, N_("Ce compte n'est pas celui d'un régulateur : voyez /ops."), 403)
    if token is None:
        return _login_page(request, console, wrong, 401)
    response = RedirectResponse("/r", status_code=303)
    response.set_cookie(
        SESSION_COOKIE, token, httponly=True, samesite="strict", secure=console.pages.secure_cookies, max_age=12 * 3600
    )
    response.delete_cookie(CSRF_COOKIE)
    return response


def _checked(regulator: Operator, csrf: str) -> None:
    if not secrets.compare_digest(csrf, regulator.csrf):
        raise Problem(403, "Forbidden", "this form is not from your session")  # and nothing changes


@router.post("/r/logout")
async def log_out(request: Request, csrf: Annotated[str, Form(max_length=100)], console: ConsoleDep) -> Response:
    regulator = await console.regulator(request)
    if regulator is not None:
        _checked(regulator, csrf)
        await console.accounts.log_out(request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/r/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


# --- the list and the new-request form ------------------------------------------------------


async def _signed_in(request: Request, console: Console) -> Operator | Response:
    regulator = await console.regulator(request)
    if regulator is None or regulator.organisation is None:
        return RedirectResponse("/r/login", status_code=303)
    return regulator


async def _home(
    request: Request, console: Console, regulator: Operator, status: int = 200, **form: Any
) -> HTMLResponse:
    lang = language(request)
    assert regulator.organisation is not None
    rows = [views.row_view(r) for r in await console.service.recent(regulator.organisation, SHOWN)]
    return console.pages.page(
        request,
        "console.html",
        status,
        regulator=regulator,
        rows=rows,
        motives=views.motive_choices(lang),
        red_flags=catalogue().red_flags,
        form=form.get("form") or {},
        errors=form.get("errors") or {},
        choices=form.get("choices") or [],
    )


@router.get("/r", response_class=HTMLResponse)
async def home(request: Request, console: ConsoleDep) -> Response:
    regulator = await _signed_in(request, console)
    if isinstance(regulator, Response):
        return regulator
    return await _home(request, console, regulator)


@router.get("/r/list", response_class=HTMLResponse)
async def live_list(request: Request, console: ConsoleDep) -> Response:
    """The list alone, polled by the console's page every few seconds (no reload)."""
    regulator = await console.regulator(request)
    if regulator is None or regulator.organisation is None:
        return Response(status_code=401)
    rows = [views.row_view(r) for r in await console.service.recent(regulator.organisation, SHOWN)]
    return console.pages.page(request, "console_list.html", rows=rows)


async def _submit(
    console: Console, regulator: Operator, place: dict[str, Any], form: dict[str, Any]
) -> tuple[str, dict[str, str]]:
    """The request posted through the API's own checks and use case, as the regulator's account;
    its id, or what was refused (by field)."""
    now = console.service.clock()
    request_id = f"R{now.astimezone(PARIS):%Y%m%d-%H%M%S}-{secrets.token_hex(2).upper()}"
    try:
        new = to_new_request(
            RequestIn.model_validate(views.request_body(request_id, now, place, form)),
            organisation=regulator.organisation,
            posted_by=Actor("account", regulator.email),
        )
        await console.service.submit(new)
    except ValidationError as invalid:
        return request_id, views.refused_fields(invalid)
    except Problem as refused:  # what the API's checks refuse, in their words
        said = [str(e.get("message")) for e in refused.extra.get("errors", [])]
        return request_id, {"form": "; ".join(said) or str(refused.detail)}
    except ReceivedAtOutOfRange as refused:
        return request_id, {"form": str(refused)}
    return request_id, {}


@router.post("/r/requests", response_class=HTMLResponse)
async def send(
    request: Request,
    console: ConsoleDep,
    csrf: Annotated[str, Form(max_length=100)],
    place: Annotated[str, Form(max_length=100)] = "",
    commune: Annotated[str, Form(max_length=5)] = "",
    motive: Annotated[str, Form(max_length=100)] = "general",
    urgency: Annotated[str, Form(max_length=3)] = "48h",
    age: Annotated[str, Form(max_length=20)] = "",
    sex: Annotated[str, Form(max_length=1)] = "",
    teleconsultation: Annotated[str, Form(max_length=3)] = "",
    red_flags: Annotated[list[str] | None, Form(max_length=50)] = None,
    contact_name: Annotated[str, Form(max_length=200)] = "",
    contact_phone: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """A new request of the regulator's organisation, through the API's own checks."""
    regulator = await _signed_in(request, console)
    if isinstance(regulator, Response):
        return regulator
    _checked(regulator, csrf)
    form = {
        "place": place,
        "motive": motive,
        "urgency": urgency,
        "age": age,
        "sex": sex,
        "teleconsultation": teleconsultation,
        "red_flags": red_flags or [],
        "contact_name": contact_name,
        "contact_phone": contact_phone,
    }
    found, error, choices = views.located(place, commune)
    errors: dict[str, str] = {"place": error} if error else {}
    if age and not age.isdigit():
        errors["age"] = N_("L'âge est un nombre d'années.")
    if found is None or errors:
        return await _home(request, console, regulator, 422, form=form, errors=errors, choices=choices)
    request_id, errors = await _submit(console, regulator, found, form)
    if errors:
        return await _home(request, console, regulator, 422, form=form, errors=errors)
    return RedirectResponse(f"/r/requests/{request_id}", status_code=303)


# --- one request ----------------------------------------------------------------------------


NOT_OURS = N_("Aucune demande de votre organisation ne porte ce numéro.")


def _not_ours(request: Request, console: Console, regulator: Operator) -> HTMLResponse:
    """Another organisation's request is answered as if it did not exist."""
    return console.pages.page(request, "console_message.html", 404, text=NOT_OURS, regulator=regulator)


async def _request_page(request: Request, request_id: str, console: Console, part: bool) -> Response:
    """A request's page, or its live part (polled: not recorded as a new reading each time)."""
    regulator = await (console.regulator(request) if part else _signed_in(request, console))
    if isinstance(regulator, Response):
        return regulator
    if regulator is None or regulator.organisation is None:
        return Response(status_code=401)
    reader = None if part else Actor("account", regulator.email)
    try:
        found, history = await console.service.get(request_id, regulator.organisation, reader)
    except RequestNotFound:
        return _not_ours(request, console, regulator)
    view = views.row_view(found)
    return console.pages.page(
        request,
        "console_request_part.html" if part else "console_request.html",
        regulator=regulator,
        r=view,
        history=views.history_view(history, language(request)),
        summary=views.summary(view, language(request)),
        done=request.query_params.get("done"),
    )


@router.get("/r/requests/{request_id}", response_class=HTMLResponse)
async def one_request(request: Request, request_id: Ident, console: ConsoleDep) -> Response:
    return await _request_page(request, request_id, console, part=False)


@router.get("/r/requests/{request_id}/part", response_class=HTMLResponse)
async def one_request_part(request: Request, request_id: Ident, console: ConsoleDep) -> Response:
    """The request's state alone, polled by its page every few seconds (no reload)."""
    return await _request_page(request, request_id, console, part=True)


@router.post("/r/requests/{request_id}/cancel", response_class=HTMLResponse)
async def cancel(
    request: Request, request_id: Ident, console: ConsoleDep, csrf: Annotated[str, Form(max_length=100)]
) -> Response:
    regulator = await _signed_in(request, console)
    if isinstance(regulator, Response):
        return regulator
    _checked(regulator, csrf)
    try:
        await console.service.cancel(request_id, regulator.organisation, Actor("account", regulator.email))
    except RequestNotFound:
        return _not_ours(request, console, regulator)
    except CannotCancel:
        return console.pages.page(
            request,
            "console_message.html",
            409,
            text=N_("Cette demande est déjà terminée sans solution : rien à annuler."),
            regulator=regulator,
        )
    return RedirectResponse(f"/r/requests/{request_id}?done=cancelled", status_code=303)


@router.post("/r/requests/{request_id}/erase", response_class=HTMLResponse)
async def erase(
    request: Request,
    request_id: Ident,
    console: ConsoleDep,
    csrf: Annotated[str, Form(max_length=100)],
    confirm: Annotated[str, Form(max_length=3)] = "",
) -> Response:
    """Irreversible: the form's box must be ticked (a stray click erases nothing)."""
    regulator = await _signed_in(request, console)
    if isinstance(regulator, Response):
        return regulator
    _checked(regulator, csrf)
    if confirm != "on":
        text = N_("Cochez « Effacement définitif » pour effacer les données du patient : rien n'est effacé.")
        return console.pages.page(request, "console_message.html", 422, text=text, regulator=regulator)
    try:
        await console.service.erase(request_id, regulator.organisation, Actor("account", regulator.email))
    except RequestNotFound:
        return _not_ours(request, console, regulator)
    return RedirectResponse(f"/r/requests/{request_id}?done=erased", status_code=303)
