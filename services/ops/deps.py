"""What the operations routes ask for: the service's objects, the operator of the session cookie,
and who may read a CPTS's figures (a regulator key, or an operator who sees that CPTS)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from jinja2 import Environment

from services.common.db import Database
from services.common.deps import SettingsDep, check_bearer, provided
from services.common.http import BEARER, Problem
from services.common.inputs import IdentQuery
from services.ops.accounts import Accounts, Operator

SESSION_COOKIE = "sas_ops"
CSRF_COOKIE = "sas_ops_csrf"


@dataclass(frozen=True)
class Operations:
    """The operations service as its routes see it."""

    db: Database  # the read model
    accounts: Accounts
    templates: Environment
    secure_cookies: bool  # PUBLIC_BASE_URL is https


OperationsDep = Annotated[Operations, Depends(provided(Operations))]


async def session_operator(request: Request, ops: OperationsDep) -> Operator | None:
    """The operator logged in with this request's session cookie, if any."""
    return await ops.accounts.operator(request.cookies.get(SESSION_COOKIE))


OperatorDep = Annotated[Operator | None, Depends(session_operator)]


async def cpts_reader(
    request: Request,
    cpts_id: IdentQuery,
    operator: OperatorDep,
    settings: SettingsDep,
    _: Annotated[Any, Security(BEARER)] = None,
) -> None:
    """The SAS reads every CPTS with a regulator key; a coordinator, their own CPTS only."""
    if operator is None:
        check_bearer(request, settings.api_keys)
    elif not operator.may_see(cpts_id):
        raise Problem(403, "Forbidden", f"this account does not see CPTS {cpts_id}")


async def account_manager(
    request: Request, operator: OperatorDep, settings: SettingsDep, _: Annotated[Any, Security(BEARER)] = None
) -> None:
    """The SAS with a regulator key, or a sas_admin's session."""
    if operator is None:
        check_bearer(request, settings.api_keys)
    elif operator.role != "sas_admin":
        raise Problem(403, "Forbidden", "only a sas_admin manages accounts")
