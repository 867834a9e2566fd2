"""The SAS's accounts page (/ops/accounts): a sas_admin creates a coordinator, sets a new
password (which also enables a disabled account) or disables an account — without the API."""

from __future__ import annotations

import re
import secrets
from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.common.inputs import IDENT, has_control_characters
from services.ops.accounts import ROLES, Operator
from services.ops.deps import Operations, OperationsDep, OperatorDep

router = APIRouter(tags=["operations"], include_in_schema=False)
HEADERS = {"Cache-Control": "no-store"}
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
DONE = {"saved": "Compte enregistré.", "disabled": "Compte désactivé : ses sessions sont fermées."}


async def _page(
    ops: Operations, operator: Operator, status: int = 200, error: str | None = None, done: str | None = None
) -> HTMLResponse:
    html = ops.templates.get_template("ops_accounts.html").render(
        operator=operator, accounts=await ops.accounts.listed(), error=error, done=DONE.get(done or ""), roles=ROLES
    )
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def _refusal(operator: Operator | None, csrf: str | None = None) -> Response | None:
    """Only a sas_admin, and only with a form of their own session."""
    if operator is None:
        return RedirectResponse("/ops/login", status_code=303)
    if operator.role != "sas_admin":
        return HTMLResponse("<p>Page réservée aux administrateurs SAS.</p>", status_code=403, headers=HEADERS)
    if csrf is not None and not secrets.compare_digest(csrf, operator.csrf):
        return HTMLResponse("<p>Ce formulaire ne vient pas de votre session.</p>", status_code=403, headers=HEADERS)
    return None


@router.get("/ops/accounts", response_class=HTMLResponse)
async def accounts(operator: OperatorDep, ops: OperationsDep, done: str | None = None) -> Response:
    refused = _refusal(operator)
    if refused is not None:
        return refused
    assert operator is not None  # _refusal sent anyone else away
    return await _page(ops, operator, done=done)


def _invalid(email: str, password: str, role: str, cpts_id: str) -> str | None:
    if not EMAIL.match(email) or has_control_characters(email):
        return "Adresse e-mail non valide."
    if not 12 <= len(password) <= 200:
        return "Le mot de passe doit compter de 12 à 200 caractères."
    if role not in ROLES:
        return "Rôle inconnu."
    if role == "coordinator" and not re.match(IDENT, cpts_id):
        return "Un coordinateur est rattaché à une CPTS : indiquez son identifiant."
    return None


@router.post("/ops/accounts", response_class=HTMLResponse)
async def save_account(
    operator: OperatorDep,
    ops: OperationsDep,
    csrf: Annotated[str, Form(max_length=100)],
    email: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=200)],
    role: Annotated[str, Form(max_length=20)],
    cpts_id: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Create an account, or set a new password (and role) for an existing one."""
    refused = _refusal(operator, csrf)
    if refused is not None:
        return refused
    assert operator is not None  # _refusal sent anyone else away
    error = _invalid(email.strip(), password, role, cpts_id.strip())
    if error:
        return await _page(ops, operator, 422, error)
    await ops.accounts.put(email.strip(), password, role, cpts_id.strip() if role == "coordinator" else None)
    return RedirectResponse("/ops/accounts?done=saved", status_code=303)


@router.post("/ops/accounts/disable", response_class=HTMLResponse)
async def disable_account(
    operator: OperatorDep,
    ops: OperationsDep,
    csrf: Annotated[str, Form(max_length=100)],
    email: Annotated[str, Form(max_length=200)],
) -> Response:
    refused = _refusal(operator, csrf)
    if refused is not None:
        return refused
    assert operator is not None  # _refusal sent anyone else away
    if email.lower() == operator.email:
        return await _page(ops, operator, 422, "Vous ne pouvez pas désactiver votre propre compte.")
    if not await ops.accounts.disable(email):
        return await _page(ops, operator, 404, "Aucun compte à cette adresse.")
    return RedirectResponse("/ops/accounts?done=disabled", status_code=303)
