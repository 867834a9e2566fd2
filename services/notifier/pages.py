"""The page behind an offer link: see the offer, accept or refuse it (HTML forms, no JavaScript)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.common import geo
from services.common.clock import PARIS
from services.common.motives import catalogue
from services.notifier.domain import REFUSAL_REASONS, OfferUnavailable, age_band
from services.notifier.models import OfferStatus
from services.notifier.service import NotifierService, OfferPage

TEMPLATES = Path(__file__).parent / "templates"
DAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)


def local_time(value: datetime | None) -> str:
    """`mardi 24 novembre à 14:30`, in Paris time."""
    if value is None:
        return ""
    t = value.astimezone(PARIS)
    return f"{DAYS[t.weekday()]} {t.day} {MONTHS[t.month - 1]} à {t:%H:%M}"


def local_time_only(value: datetime | None) -> str:
    return value.astimezone(PARIS).strftime("%H:%M") if value else ""


def motive_label(code: str) -> str:
    motive = catalogue().motives.get(code)
    return motive.label if motive else code


def templates() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    env.filters.update(local=local_time, local_time=local_time_only, motive_label=motive_label, age_band=age_band)
    return env


MESSAGES = {
    "unknown": ("Lien non valide", "Ce lien n'est pas valide. Vérifiez que vous l'avez copié en entier.", "warn", 404),
    "expired": (
        "Délai dépassé",
        "Le délai pour répondre à cette demande est dépassé. Elle a été proposée à un autre professionnel. Merci.",
        "warn",
        410,
    ),
    "withdrawn": (
        "Demande retirée",
        "Cette demande a été retirée (annulée par le régulateur ou déjà traitée). Vous n'avez rien à faire.",
        "notice",
        410,
    ),
    "refused": (
        "Refus enregistré",
        "Vous avez refusé cette demande ; elle est proposée à un autre professionnel. Merci de votre réponse.",
        "notice",
        200,
    ),
    "invalid_time": ("Horaire non valide", "L'horaire choisi est hors de la plage proposée.", "warn", 422),
}


def build_router(service: NotifierService, env: Environment) -> APIRouter:
    router = APIRouter(tags=["professionals"], include_in_schema=False)

    def message(state: str) -> HTMLResponse:
        title, text, tone, status = MESSAGES.get(state, MESSAGES["withdrawn"])
        html = env.get_template("message.html").render(title=title, text=text, tone=tone)
        return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})

    def render(page: OfferPage) -> HTMLResponse:
        offer = page.offer
        if offer.status in (OfferStatus.ACCEPTED, OfferStatus.CONFIRMED):
            html = env.get_template("accepted.html").render(offer=offer, contact=page.contact)
        elif offer.status == OfferStatus.PENDING and offer.expires_at > service.clock():
            commune = geo.commune(offer.patient_commune_insee or "")
            html = env.get_template("offer.html").render(
                offer=offer,
                token=page.token,
                reasons=REFUSAL_REASONS,
                patient_commune=commune.name if commune else None,
            )
        else:
            return message(OfferStatus.EXPIRED if offer.status == OfferStatus.PENDING else offer.status)
        return HTMLResponse(html, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})

    @router.get("/o/{token}", response_class=HTMLResponse)
    async def show(token: str) -> HTMLResponse:
        try:
            return render(await service.open(token))
        except OfferUnavailable as error:
            return message(error.state)

    @router.post("/o/{token}/accept", response_class=HTMLResponse)
    async def accept(token: str, start: Annotated[datetime | None, Form()] = None) -> HTMLResponse:
        try:
            return render(await service.accept(token, start))
        except OfferUnavailable as error:
            if error.state in (OfferStatus.ACCEPTED, OfferStatus.CONFIRMED):
                return render(await service.open(token))  # a second click: show what was accepted
            return message(error.state)

    @router.post("/o/{token}/refuse", response_class=HTMLResponse)
    async def refuse(token: str, reason: Annotated[str | None, Form()] = None) -> HTMLResponse:
        try:
            await service.refuse(token, reason or None)
        except OfferUnavailable as error:
            if error.state in (OfferStatus.ACCEPTED, OfferStatus.CONFIRMED):
                return render(await service.open(token))
            return message(error.state)
        return message("refused")

    return router
