"""The professional's own page (espace professionnel), in HTML forms that work without JavaScript.

Reached from the personal link in every message the notifier sends (`/p/<link>`), or by asking
for it by e-mail (`/p`). Each form posts, then comes back to the page with what was done
(post/redirect/get), or shows the page again with what was wrong. French by default, English
with `?lang=en` or when the browser asks for it first (texts in locale/en).
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import date, time
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

import structlog
from fastapi import APIRouter, Depends, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment
from pydantic import EmailStr

from services.common import i18n
from services.common.clock import PARIS
from services.common.db import database_away
from services.common.deps import per_address, provided, public
from services.common.http import failures_answered_by
from services.common.inputs import IDENT, PHONE
from services.matcher.directory.errors import NotFound
from services.matcher.domain import own_space
from services.matcher.own_space import LinkRefused, ProfessionalSpace, SpaceView

log = structlog.get_logger(__name__)

TEMPLATES = Path(__file__).parents[1] / "templates"
LOCALE = Path(__file__).parents[1] / "locale"  # English in locale/en; French is the source
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}
Lang = Literal["fr", "en"]

# what the page says after a change (post/redirect/get: `?done=<code>`)
DONE = {
    "published": "Créneau publié : il peut être proposé dès la prochaine demande.",
    "withdrawn": "Créneau retiré.",
    "overflow": "Vos réglages de patients en plus sont enregistrés.",
    "today_closed": "Pas de patient en plus aujourd'hui : c'est noté.",
    "today_open": "Vous pouvez de nouveau recevoir des patients en plus aujourd'hui.",
    "paused": "Pause enregistrée : aucune demande ne vous sera proposée d'ici là.",
    "resumed": "Pause terminée : les demandes peuvent de nouveau vous être proposées.",
    "channels": "Vos moyens de contact sont enregistrés.",
}

NOTICES = {  # a link that opens nothing, and the "send me my link" answers: (title, text, status)
    "unknown": ("Lien non valide", "Ce lien n'est pas valide. Vérifiez que vous l'avez copié en entier.", 404),
    "expired": ("Lien expiré", "Ce lien a expiré. Recevez-en un nouveau par e-mail ci-dessous.", 410),
    "revoked": ("Lien révoqué", "Ce lien a été révoqué. Recevez-en un nouveau par e-mail ci-dessous.", 410),
    "sent": (
        "Vérifiez votre messagerie",
        "Si cette adresse est celle d'un professionnel inscrit, un lien vers son espace vient de lui être envoyé. "
        "Il est valable 30 jours.",
        200,
    ),
    "ask": (
        "Recevoir mon lien",
        "Votre espace SAS : vos rendez-vous SAS, vos créneaux, une pause, vos moyens de contact. Indiquez "
        "l'adresse e-mail que vous avez donnée à votre CPTS : le lien qui l'ouvre vous y est envoyé.",
        200,
    ),
    "invalid": (
        "Formulaire non valide",
        "Ce que le formulaire a envoyé n'est pas valide (une date, une heure ou un nombre mal formé). Rien n'a changé.",
        422,
    ),
    "unavailable": (
        "Service momentanément indisponible",
        "Le service ne peut pas afficher votre espace pour le moment. Réessayez dans un instant : rien n'a été perdu.",
        503,
    ),
}


def language(request: Request, asked: str | None = None) -> Lang:
    return i18n.choose(asked, request.headers.get("accept-language"))


def templates() -> Environment:
    return i18n.page_templates(TEMPLATES)


@dataclass(frozen=True)
class SpacePages:
    """The page drawn: the use cases and the templates."""

    space: ProfessionalSpace
    env: Environment

    def _render(self, name: str, lang: Lang, status: int = 200, **context: Any) -> HTMLResponse:
        gettext = i18n.translations(LOCALE, lang).gettext
        html = self.env.get_template(name).render(_=gettext, lang=lang, **context)
        return HTMLResponse(html, status_code=status, headers=HEADERS)

    def notice(self, state: str, lang: Lang, back: str | None = None) -> HTMLResponse:
        title, text, status = NOTICES[state]
        return self._render("own_notice.html", lang, status, title=title, text=text, state=state, back=back)

    def page(
        self, view: SpaceView, token: str, lang: Lang, done: str | None = None, error: str | None = None
    ) -> HTMLResponse:
        days = own_space.publishable_days(view.now)
        return self._render(
            "own_space.html",
            lang,
            422 if error else 200,
            v=view,
            pro=view.professional,
            token=quote(token, safe=""),
            done=DONE.get(done or ""),
            error=error,
            days=days,
            minutes=own_space.SLOT_MINUTES,
            suggested=own_space.suggested_time(view.now).strftime("%H:%M"),
            max_cap=own_space.MAX_OVERFLOW_CAP,
            channel_types={c["type"] for c in view.professional.channels or []},
            day_name=lambda d: _day_name(d, days, lang),
            day_of=lambda at: _day_name(at.astimezone(PARIS).date(), days, lang),
            date_text=lambda d: i18n.date(d, lang),
        )


RELATIVE_DAYS = ("Aujourd'hui", "Demain")  # the first two of the days a slot can be published for


def _day_name(day: date, days: list[date], lang: Lang) -> str:
    """`Aujourd'hui · mar. 1 déc.`, `Demain · mer. 2 déc.`, then `jeu. 3 déc.` (the catalogue's English)."""
    shown = i18n.date(day, lang, short=True)
    index = days.index(day) if day in days else -1
    if 0 <= index < len(RELATIVE_DAYS):
        return i18n.translations(LOCALE, lang).gettext(RELATIVE_DAYS[index]) + " · " + shown
    return shown


def _answered(request: Request, error: Exception) -> Response | None:
    """A page, never problem+json: a form that sent what no control of the page sends (422, a
    link back), and while the database is away "try again in a moment" (503, Retry-After)."""
    pages = provided(SpacePages)(request)
    if isinstance(error, RequestValidationError):
        token = request.path_params.get("token")
        return pages.notice("invalid", language(request), f"/p/{quote(token, safe='')}" if token else None)
    if not database_away(error):
        return None
    log.warning("professional page while the database is away", error=type(error).__name__)
    response = pages.notice("unavailable", language(request))
    response.headers["Retry-After"] = "10"
    return response


PagesDep = Annotated[SpacePages, Depends(provided(SpacePages))]
router = APIRouter(
    tags=["professionals"],
    include_in_schema=False,
    route_class=failures_answered_by(_answered),
    dependencies=[
        public("a professional's signed personal link; `/p` asks for an e-mail address only"),
        per_address("page", "page_rate_limit"),
    ],
)
Token = Annotated[str, "the personal link"]
LangForm = Annotated[str | None, Form(max_length=5)]


async def _show(
    pages: SpacePages, token: str, lang: Lang, done: str | None = None, error: str | None = None
) -> Response:
    try:
        return pages.page(await pages.space.view(token), token, lang, done, error)
    except LinkRefused as refused:
        return pages.notice(refused.state, lang)


async def _then(
    request: Request, pages: SpacePages, token: str, lang: str | None, done: str, change: Awaitable[object]
) -> Response:
    """Run one change, then back to the page (303), or the page again with what was wrong."""
    chosen = language(request, lang)
    try:
        await change
    except LinkRefused as refused:
        return pages.notice(refused.state, chosen)
    except own_space.Refused as refused:
        return await _show(pages, token, chosen, error=i18n.translations(LOCALE, chosen).gettext(refused.text))
    except NotFound:
        return await _show(
            pages, token, chosen, error=i18n.translations(LOCALE, chosen).gettext("Ce créneau n'existe plus.")
        )
    query = urlencode({"done": done, **({"lang": chosen} if lang else {})})
    return RedirectResponse(f"/p/{quote(token, safe='')}?{query}#{done}", status_code=303, headers=HEADERS)


@router.get("/p", response_class=HTMLResponse)
async def ask_for_link(request: Request, pages: PagesDep, lang: str | None = None) -> Response:
    return pages.notice("ask", language(request, lang))


@router.post("/p", response_class=HTMLResponse, dependencies=[per_address("link_request", "link_request_rate_limit")])
async def send_link(
    request: Request, pages: PagesDep, email: Annotated[EmailStr, Form(max_length=254)], lang: LangForm = None
) -> Response:
    """The same answer whether the address is known or not (nobody learns who is registered)."""
    await pages.space.send_link(str(email))
    return pages.notice("sent", language(request, lang))


@router.get("/p/{token}", response_class=HTMLResponse)
async def show(
    request: Request, token: Token, pages: PagesDep, lang: str | None = None, done: str | None = None
) -> Response:
    return await _show(pages, token, language(request, lang), done)


@router.post("/p/{token}/slots", response_class=HTMLResponse)
async def publish(
    request: Request,
    token: Token,
    pages: PagesDep,
    day: Annotated[date, Form()],
    at: Annotated[time, Form()],
    minutes: Annotated[int, Form(ge=5, le=120)],
    site_id: Annotated[str, Form(pattern=IDENT)],
    mode: Annotated[Literal["in_person", "teleconsultation"], Form()] = "in_person",
    lang: LangForm = None,
) -> Response:
    change = pages.space.publish(token, site_id, day, at, minutes, mode)
    return await _then(request, pages, token, lang, "published", change)


@router.post("/p/{token}/slots/{slot_id}/withdraw", response_class=HTMLResponse)
async def withdraw(request: Request, token: Token, slot_id: str, pages: PagesDep, lang: LangForm = None) -> Response:
    return await _then(request, pages, token, lang, "withdrawn", pages.space.withdraw(token, slot_id[:100]))


@router.post("/p/{token}/overflow", response_class=HTMLResponse)
async def overflow(
    request: Request,
    token: Token,
    pages: PagesDep,
    cap: Annotated[int, Form(ge=0, le=own_space.MAX_OVERFLOW_CAP)] = 0,
    accepts: Annotated[bool, Form()] = False,
    lang: LangForm = None,
) -> Response:
    return await _then(request, pages, token, lang, "overflow", pages.space.set_overflow(token, accepts, cap))


@router.post("/p/{token}/today", response_class=HTMLResponse)
async def today(
    request: Request, token: Token, pages: PagesDep, closed: Annotated[bool, Form()] = False, lang: LangForm = None
) -> Response:
    done = "today_closed" if closed else "today_open"
    return await _then(request, pages, token, lang, done, pages.space.not_today(token, closed))


@router.post("/p/{token}/pause", response_class=HTMLResponse)
async def pause(
    request: Request, token: Token, pages: PagesDep, until: Annotated[date | None, Form()] = None, lang: LangForm = None
) -> Response:
    return await _then(request, pages, token, lang, "paused" if until else "resumed", pages.space.pause(token, until))


@router.post("/p/{token}/channels", response_class=HTMLResponse)
async def channels(
    request: Request,
    token: Token,
    pages: PagesDep,
    email: Annotated[EmailStr | None, Form(max_length=254)] = None,
    phone: Annotated[str | None, Form(pattern=PHONE)] = None,
    by_email: Annotated[bool, Form()] = False,
    by_sms: Annotated[bool, Form()] = False,
    lang: LangForm = None,
) -> Response:
    change = pages.space.set_channels(token, str(email) if email else None, phone or None, by_email, by_sms)
    return await _then(request, pages, token, lang, "channels", change)


@router.post("/p/{token}/revoke", response_class=HTMLResponse)
async def revoke(request: Request, token: Token, pages: PagesDep, lang: LangForm = None) -> Response:
    chosen = language(request, lang)
    try:
        await pages.space.revoke_links(token)
    except LinkRefused as refused:
        return pages.notice(refused.state, chosen)
    return pages.notice("revoked", chosen)
