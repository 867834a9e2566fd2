"""The page behind an offer link: see the offer, accept or refuse it (HTML forms, no JavaScript).

French by default; English with `?lang=en` or when the browser asks for it first. Every answer
page says plainly what happened; nothing before a valid link shows anything of the offer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment

from services.common import geo, i18n
from services.common.db import database_away
from services.common.deps import per_address, provided, public
from services.common.http import failures_answered_by
from services.common.motives import catalogue
from services.notifier.domain import REFUSAL_REASONS, OfferUnavailable, time_choices
from services.notifier.models import OfferStatus
from services.notifier.service import NotifierService, OfferPage

log = structlog.get_logger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
LOCALE = Path(__file__).parent / "locale"  # gettext catalogues: English in locale/en (French is the source)


def texts(lang: str) -> Callable[[str], str]:
    """The pages' `_`: French as written in the templates, other languages from the catalogue."""
    return i18n.translations(LOCALE, lang).gettext


def refusal_reasons(lang: str) -> dict[str, str]:
    catalogue_ = i18n.translations(LOCALE, lang)
    return {code: catalogue_.gettext(text) for code, text in REFUSAL_REASONS.items()}


@dataclass(frozen=True)
class Notice:
    """A page that says what happened to the link (French as written, translated from the catalogue)."""

    fr: tuple[str, str]
    tone: str
    status: int

    def text(self, lang: str) -> tuple[str, str]:
        catalogue_ = i18n.translations(LOCALE, lang)
        return catalogue_.gettext(self.fr[0]), catalogue_.gettext(self.fr[1])


MESSAGES: dict[str, Notice] = {
    "unknown": Notice(
        fr=("Lien non valide", "Ce lien n'est pas valide. Vérifiez que vous l'avez copié en entier."),
        tone="warn",
        status=404,
    ),
    "expired": Notice(
        fr=(
            "Délai dépassé",
            "Le délai pour répondre à cette demande est dépassé. Elle a été proposée à un autre professionnel. Merci.",
        ),
        tone="warn",
        status=410,
    ),
    "withdrawn": Notice(
        fr=(
            "Demande retirée",
            "Cette demande a été retirée (annulée par le régulateur ou déjà traitée). Vous n'avez rien à faire.",
        ),
        tone="notice",
        status=410,
    ),
    "taken": Notice(
        fr=(
            "Patient déjà pris en charge",
            "Un autre professionnel a accepté ce patient avant vous. Merci de votre disponibilité : vous n'avez "
            "rien à faire.",
        ),
        tone="notice",
        status=410,
    ),
    "refused": Notice(
        fr=(
            "Refus enregistré",
            "Vous avez refusé cette demande ; elle est proposée à un autre professionnel. Merci de votre réponse.",
        ),
        tone="notice",
        status=200,
    ),
    "unavailable": Notice(
        fr=(
            "Service momentanément indisponible",
            "Le service ne peut pas enregistrer votre réponse pour le moment. Réessayez dans un instant avec le "
            "même lien : rien n'a été perdu.",
        ),
        tone="warn",
        status=503,
    ),
    "invalid_time": Notice(
        fr=("Horaire non valide", "L'horaire choisi est hors de la plage proposée."),
        tone="warn",
        status=422,
    ),
}


def motive_label(code: str, lang: str = "fr") -> str:
    motive = catalogue().motives.get(code)
    if motive is None:
        return code
    return motive.label if lang == "fr" else motive.label_en


def templates() -> Environment:
    return i18n.page_templates(TEMPLATES, motive_label=motive_label)


def language(request: Request, asked: str | None = None) -> str:
    return i18n.choose(asked, request.headers.get("accept-language"))


HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


@dataclass(frozen=True)
class OfferPages:
    """The offer page drawn: the notifier's use cases and its templates."""

    service: NotifierService
    env: Environment

    def message(self, state: str, lang: str) -> HTMLResponse:
        known = MESSAGES.get(state, MESSAGES["withdrawn"])
        title, text = known.text(lang)
        html = self.env.get_template("message.html").render(
            title=title, text=text, tone=known.tone, _=texts(lang), lang=lang
        )
        return HTMLResponse(html, status_code=known.status, headers=HEADERS)

    def unavailable(self, request: Request) -> Response:
        response = self.message("unavailable", language(request))
        response.headers["Retry-After"] = "10"
        return response

    def render(self, page: OfferPage, lang: str) -> HTMLResponse:
        offer, now = page.offer, self.service.clock()
        if offer.status in (OfferStatus.ACCEPTED, OfferStatus.CONFIRMED):
            html = self.env.get_template("accepted.html").render(
                offer=offer, contact=page.contact, contact_until=page.contact_until, now=now, _=texts(lang), lang=lang
            )
        elif offer.status == OfferStatus.PENDING and offer.expires_at > now:
            html = self._open_offer(page, lang, now)
        else:
            return self.message(OfferStatus.EXPIRED if offer.status == OfferStatus.PENDING else offer.status, lang)
        return HTMLResponse(html, headers=HEADERS)

    def _open_offer(self, page: OfferPage, lang: str, now: datetime) -> str:
        offer = page.offer
        commune = geo.commune(offer.patient_commune_insee or "")
        return self.env.get_template("offer.html").render(
            offer=offer,
            token=page.token,
            _=texts(lang),
            lang=lang,
            minutes_left=math.ceil((offer.expires_at - now).total_seconds() / 60),
            times=time_choices(offer.choices, offer.start) if offer.kind == "overflow" else [],
            reasons=refusal_reasons(lang),
            patient_commune=commune.name if commune else None,
        )


def _unavailable(request: Request, error: Exception) -> Response | None:
    """While the database is away, a professional's page says "try again in a moment" (503,
    Retry-After) rather than an error: nothing was recorded, the link still works."""
    if not database_away(error):
        return None
    log.warning("offer page while the database is away", error=type(error).__name__)
    return provided(OfferPages)(request).unavailable(request)


PageRoute = failures_answered_by(_unavailable)


PagesDep = Annotated[OfferPages, Depends(provided(OfferPages))]
router = APIRouter(
    tags=["professionals"],
    include_in_schema=False,
    route_class=PageRoute,
    dependencies=[
        public("the offer link's token: one offer, to the professional it was sent to"),
        per_address("page", "page_rate_limit"),
    ],
)


async def _decided_already(pages: OfferPages, token: str, error: OfferUnavailable, lang: str) -> HTMLResponse:
    """A second click, a stale page: what was accepted, or why the offer no longer stands."""
    if error.state in (OfferStatus.ACCEPTED, OfferStatus.CONFIRMED):
        return pages.render(await pages.service.open(token), lang)
    return pages.message(error.state, lang)


@router.get("/o/{token}", response_class=HTMLResponse)
async def show(request: Request, token: str, pages: PagesDep, lang: str | None = None) -> HTMLResponse:
    chosen = language(request, lang)
    try:
        return pages.render(await pages.service.open(token), chosen)
    except OfferUnavailable as error:
        return pages.message(error.state, chosen)


@router.post("/o/{token}/accept", response_class=HTMLResponse)
async def accept(
    request: Request,
    token: str,
    pages: PagesDep,
    start: Annotated[datetime | None, Form()] = None,
    lang: Annotated[str | None, Form(max_length=10)] = None,
) -> HTMLResponse:
    chosen = language(request, lang)
    try:
        return pages.render(await pages.service.accept(token, start), chosen)
    except OfferUnavailable as error:
        return await _decided_already(pages, token, error, chosen)


@router.post("/o/{token}/refuse", response_class=HTMLResponse)
async def refuse(
    request: Request,
    token: str,
    pages: PagesDep,
    reason: Annotated[str | None, Form(max_length=200)] = None,
    lang: Annotated[str | None, Form(max_length=10)] = None,
) -> HTMLResponse:
    chosen = language(request, lang)
    try:
        await pages.service.refuse(token, reason or None)
    except OfferUnavailable as error:
        return await _decided_already(pages, token, error, chosen)
    return pages.message("refused", chosen)
