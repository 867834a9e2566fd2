"""The SAS's accounts page (/ops/accounts): a sas_admin creates a coordinator or a regulator (of
an organisation, for the console at /r), sets a new password (which also enables a disabled
account) or disables an account — without the API."""

from __future__ import annotations

import re
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.common.access.accounts import ROLES, Operator
from services.common.access.roles import DEPARTMENT
from services.common.audit import Actor
from services.common.deps import public
from services.common.i18n import N_
from services.common.inputs import IDENT, has_control_characters
from services.ops.deps import Operations, OperationsDep, OperatorDep, PageRoute

router = APIRouter(
    tags=["operations"],
    include_in_schema=False,
    route_class=PageRoute,
    dependencies=[public("a sas_admin's operations session (cookie), checked by each page")],
)
HEADERS = {"Cache-Control": "no-store"}
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
DONE = {"saved": N_("Compte enregistré."), "disabled": N_("Compte désactivé : ses sessions sont fermées.")}


async def _page(
    request: Request,
    ops: Operations,
    operator: Operator,
    status: int = 200,
    error: str | None = None,
    done: str | None = None,
) -> HTMLResponse:
    return ops.page(
        request,
        "ops_accounts.html",
        status,
        operator=operator,
        accounts=await ops.accounts.listed(),
        error=error,
        done=DONE.get(done or ""),
        roles=ROLES,
    )


def _refusal(request: Request, ops: Operations, operator: Operator | None, csrf: str | None = None) -> Response | None:
    """Only a sas_admin, and only with a form of their own session."""
    if operator is None:
        return RedirectResponse("/ops/login", status_code=303)
    if operator.role != "sas_admin":
        return ops.page(request, "ops_message.html", 403, text=N_("Page réservée aux administrateurs SAS."))
    if csrf is not None and not secrets.compare_digest(csrf, operator.csrf):
        return ops.page(request, "ops_message.html", 403, text=N_("Ce formulaire ne vient pas de votre session."))
    return None


@router.get("/ops/accounts", response_class=HTMLResponse)
async def accounts(request: Request, operator: OperatorDep, ops: OperationsDep, done: str | None = None) -> Response:
    refused = _refusal(request, ops, operator)
    if refused is not None:
        return refused
    assert operator is not None  # _refusal sent anyone else away
    return await _page(request, ops, operator, done=done)


def _invalid(
    email: str, password: str, role: str, cpts_id: str, organisation: str, departments: list[str]
) -> str | None:
    if not EMAIL.match(email) or has_control_characters(email):
        return N_("Adresse e-mail non valide.")
    if not 12 <= len(password) <= 200:
        return N_("Le mot de passe doit compter de 12 à 200 caractères.")
    if role not in ROLES:
        return N_("Rôle inconnu.")
    if role == "coordinator" and not re.match(IDENT, cpts_id):
        return N_("Un coordinateur est rattaché à une CPTS : indiquez son identifiant.")
    if role == "regulator" and not re.match(IDENT, organisation):
        return N_("Un régulateur appartient à une organisation (son SAS) : indiquez son identifiant.")
    if role == "regulator" and not all(re.match(DEPARTMENT, d) for d in departments):
        return N_("Départements : des codes comme 79, 2A ou 974, séparés par des virgules.")
    return None


@router.post("/ops/accounts", response_class=HTMLResponse)
async def save_account(
    request: Request,
    operator: OperatorDep,
    ops: OperationsDep,
    csrf: Annotated[str, Form(max_length=100)],
    email: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=200)],
    role: Annotated[str, Form(max_length=20)],
    cpts_id: Annotated[str, Form(max_length=100)] = "",
    organisation: Annotated[str, Form(max_length=100)] = "",
    departments: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Create an account, or set a new password (and role) for an existing one."""
    refused = _refusal(request, ops, operator, csrf)
    if refused is not None:
        return refused
    assert operator is not None  # _refusal sent anyone else away
    chosen = [d.strip().upper() for d in departments.split(",") if d.strip()]
    error = _invalid(email.strip(), password, role, cpts_id.strip(), organisation.strip(), chosen)
    if error:
        return await _page(request, ops, operator, 422, error)
    regulator = role == "regulator"
    await ops.accounts.put(
        email.strip(),
        password,
        role,
        cpts_id.strip() if role == "coordinator" else None,
        Actor("account", operator.email),
        organisation=organisation.strip() if regulator else None,
        departments=(chosen or None) if regulator else None,
    )
    return RedirectResponse("/ops/accounts?done=saved", status_code=303)


@router.post("/ops/accounts/disable", response_class=HTMLResponse)
async def disable_account(
    request: Request,
    operator: OperatorDep,
    ops: OperationsDep,
    csrf: Annotated[str, Form(max_length=100)],
    email: Annotated[str, Form(max_length=200)],
) -> Response:
    refused = _refusal(request, ops, operator, csrf)
    if refused is not None:
        return refused
    assert operator is not None  # _refusal sent anyone else away
    if email.lower() == operator.email:
        return await _page(request, ops, operator, 422, N_("Vous ne pouvez pas désactiver votre propre compte."))
    if not await ops.accounts.disable(email, Actor("account", operator.email)):
        return await _page(request, ops, operator, 404, N_("Aucun compte à cette adresse."))
    return RedirectResponse("/ops/accounts?done=disabled", status_code=303)
