"""What the operations routes ask for: the service's objects, the operator of the session cookie,
and who may read a CPTS's figures (a regulator key, or an operator who sees that CPTS)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment

from services.common import i18n
from services.common.access.accounts import Accounts, Operator
from services.common.access.roles import Forbidden, Role, require
from services.common.audit import SYSTEM, Actor
from services.common.db import Database
from services.common.deps import authenticated, described, provided
from services.common.http import BEARER, Problem, failures_answered_by
from services.common.i18n import N_
from services.common.inputs import IdentQuery
from services.ops.adapters import repository
from services.ops.professionals import ProfessionalPauses

SESSION_COOKIE = "sas_ops"
LANG_COOKIE = "sas_lang"
LOCALE = Path(__file__).parent / "locale"  # English in locale/en; French is the source
CSRF_COOKIE = "sas_ops_csrf"


@dataclass(frozen=True)
class Operations:
    """The operations service as its routes see it."""

    db: Database  # the read model
    accounts: Accounts
    templates: Environment
    secure_cookies: bool  # PUBLIC_BASE_URL is https
    pauses: ProfessionalPauses  # the matcher pauses a professional (services/ops/professionals.py)

    def language(self, request: Request) -> i18n.Lang:
        return i18n.choose(
            request.query_params.get("lang"), request.headers.get("accept-language"), request.cookies.get(LANG_COOKIE)
        )

    def page(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        """A page in the reader's language (`?lang=` remembered in a cookie, else the browser's):
        its texts through the catalogue (`_`), codes through `label`, numbers and dates by Babel."""
        asked = request.query_params.get("lang")
        lang = self.language(request)
        gettext = i18n.translations(LOCALE, lang).gettext
        html = self.templates.get_template(template).render(_=gettext, lang=lang, colon=i18n.colon(lang), **context)
        response = HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})
        if asked in ("fr", "en"):
            response.set_cookie(LANG_COOKIE, lang, samesite="strict", secure=self.secure_cookies, max_age=365 * 86400)
        return response


OperationsDep = Annotated[Operations, Depends(provided(Operations))]


def _page_refusal(request: Request, error: Exception) -> Response | None:
    """A page's form that sent what none of its controls sends: a page saying so (422), not JSON."""
    if not isinstance(error, RequestValidationError):
        return None
    text = N_("Ce que le formulaire a envoyé n'est pas valide (une date ou un nombre mal formé). Rien n'a changé.")
    return provided(Operations)(request).page(request, "ops_message.html", 422, text=text)


PageRoute = failures_answered_by(_page_refusal)  # the route class of the operations' HTML pages


async def session_operator(request: Request, ops: OperationsDep) -> Operator | None:
    """The operator logged in with this request's session cookie, if any."""
    return await ops.accounts.operator(request.cookies.get(SESSION_COOKIE))


OperatorDep = Annotated[Operator | None, Depends(session_operator)]


@described(
    "an operations session that sees the CPTS, or a key: admin, directory of that CPTS, regulator of its départements"
)
async def cpts_reader(
    request: Request,
    cpts_id: IdentQuery,
    operator: OperatorDep,
    ops: OperationsDep,
    _: Annotated[Any, Security(BEARER)] = None,
) -> None:
    """Who reads a CPTS's figures (contract v2, "Operations"); any other CPTS → 403."""
    if operator is not None:
        if not operator.may_see(cpts_id):
            raise Problem(403, "Forbidden", f"this account does not see CPTS {cpts_id}")
        return
    client = await authenticated(request)
    if client.role in (Role.ADMIN, Role.DIRECTORY, Role.REGULATOR):
        _, communes = await repository.territory(ops.db, cpts_id)
        if client.reads_indicators_of(cpts_id, communes):
            return
        raise Forbidden(f"this key does not cover CPTS {cpts_id}")
    require(client, (Role.REGULATOR, Role.DIRECTORY))


def actor_of(request: Request, operator: Operator | None) -> Actor:
    """Who made an operations API call, for the audit trail: the session's account, else the key's client."""
    if operator is not None:
        return Actor("account", operator.email)
    client = getattr(request.state, "client", None)
    return Actor("client", client.client_id) if client is not None else SYSTEM


@described("an admin key, or a sas_admin's operations session")
async def account_manager(request: Request, operator: OperatorDep, _: Annotated[Any, Security(BEARER)] = None) -> None:
    """Operations accounts are managed by an admin key or a sas_admin's session only."""
    if operator is not None:
        if operator.role != "sas_admin":
            raise Problem(403, "Forbidden", "only a sas_admin manages accounts")
        return
    require(await authenticated(request), (Role.ADMIN,))
