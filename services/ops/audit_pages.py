"""The audit trail for a sas_admin (/ops/audit): who did what to which request, from where —
the same table the API's `GET /v1/audit` reads, filterable, newest first."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.common import audit
from services.common.clock import PARIS
from services.common.deps import public
from services.common.i18n import N_
from services.common.inputs import IDENT
from services.ops.deps import OperationsDep, OperatorDep, PageRoute

router = APIRouter(
    tags=["operations"],
    include_in_schema=False,
    route_class=PageRoute,
    dependencies=[public("a sas_admin's operations session (cookie), checked by the page")],
)
ACTION = r"^[a-z]+\.[a-z]+$"
SHOWN = 200  # entries on one page; narrower filters find older ones


@router.get("/ops/audit", response_class=HTMLResponse)
async def audit_page(
    request: Request,
    operator: OperatorDep,
    ops: OperationsDep,
    request_id: Annotated[str, Query(max_length=200)] = "",
    action: Annotated[str, Query(max_length=50)] = "",
    actor: Annotated[str, Query(max_length=200)] = "",
    day: Annotated[date | None, Query(alias="until")] = None,
) -> Response:
    if operator is None:
        return RedirectResponse("/ops/login", status_code=303)
    if operator.role != "sas_admin":
        return ops.page(request, "ops_message.html", 403, text=N_("Page réservée aux administrateurs SAS."))
    if (request_id and not re.match(IDENT, request_id)) or (action and not re.match(ACTION, action)):
        return ops.page(request, "ops_message.html", 422, text=N_("Filtre non valide : rien n'a été cherché."))
    until = datetime.combine(day, time.max, tzinfo=PARIS) if day else None
    async with ops.db.transaction() as tx:
        entries = await audit.entries(
            tx.session,
            [request_id] if request_id else None,
            action or None,
            SHOWN,
            actor_id=actor.strip() or None,
            until=until,
            newest_first=True,
        )
    for entry in entries:  # to the second, Paris time: a trail is read against other records
        entry["at_local"] = datetime.fromisoformat(entry["at"]).astimezone(PARIS).strftime("%Y-%m-%d %H:%M:%S")
    return ops.page(
        request,
        "ops_audit.html",
        operator=operator,
        entries=entries,
        shown=SHOWN,
        filters={"request_id": request_id, "action": action, "actor": actor, "until": day.isoformat() if day else ""},
    )
