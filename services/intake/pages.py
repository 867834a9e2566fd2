"""The intake's pages: the front door (`/`), what a newcomer sees first at the service's address."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from services.common.deps import SettingsDep, provided, public
from services.common.pages import Pages, templates

TEMPLATES = Path(__file__).parent / "templates"
LOCALE = Path(__file__).parent / "locale"  # English in locale/en; French is the source


class IntakePages(Pages):
    """The intake's templates and catalogue (a type of its own: each service provides its pages)."""


def intake_pages(secure_cookies: bool) -> IntakePages:
    return IntakePages(templates(TEMPLATES), LOCALE, secure_cookies)


PagesDep = Annotated[IntakePages, Depends(provided(IntakePages))]
front = APIRouter(include_in_schema=False)


@front.get(
    "/",
    response_class=HTMLResponse,
    dependencies=[public("the front door: what the service is, with links; nothing of the data")],
)
async def front_door(request: Request, pages: PagesDep, settings: SettingsDep) -> HTMLResponse:
    return pages.page(request, "front.html", trial=settings.smtp_host is None)
