"""Drawing a page in the reader's language: the one way the front door, the regulators' console
and the trial mailbox render their templates (the shared layout in common/templates, each
service's own texts in its gettext catalogue, French as written)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import ChoiceLoader, Environment, FileSystemLoader

from services.common import i18n

SHARED_TEMPLATES = Path(__file__).parent / "templates"  # page_base.html: the layout every such page extends
LANG_COOKIE = "sas_lang"  # the language asked for once (`?lang=`), remembered by every page


def templates(folder: Path, **filters: Callable[..., Any]) -> Environment:
    """A service's templates (`folder`), with the shared layout beside them."""
    env = i18n.page_templates(folder, **filters)
    env.loader = ChoiceLoader([FileSystemLoader(folder), FileSystemLoader(SHARED_TEMPLATES)])
    return env


def language(request: Request) -> i18n.Lang:
    return i18n.choose(
        request.query_params.get("lang"), request.headers.get("accept-language"), request.cookies.get(LANG_COOKIE)
    )


@dataclass(frozen=True)
class Pages:
    """A service's pages: `page()` renders one, no-store, with `_` from the service's catalogue."""

    env: Environment
    locale: Path  # <locale>/en/LC_MESSAGES/messages.po
    secure_cookies: bool  # PUBLIC_BASE_URL is https

    def gettext(self, lang: str) -> Callable[[str], str]:
        return i18n.translations(self.locale, lang).gettext

    def page(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        asked = request.query_params.get("lang")
        lang = language(request)
        html = self.env.get_template(template).render(
            _=self.gettext(lang),
            lang=lang,
            colon=i18n.colon(lang),
            other_lang="fr" if lang == "en" else "en",
            **context,
        )
        response = HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})
        if asked in ("fr", "en"):
            response.set_cookie(LANG_COOKIE, lang, samesite="strict", secure=self.secure_cookies, max_age=365 * 86400)
        return response
