"""GET /v1/indicators (contract v1) and the CSV of the rows behind every figure."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Security
from fastapi.responses import Response
from pydantic import Field

from services.common.db import Database
from services.common.http import BEARER, Problem, problems
from services.common.inputs import IDENT, IdentQuery, InputModel, has_control_characters
from services.ops import indicators as ind
from services.ops import read_model
from services.ops.accounts import Accounts

MAX_DAYS = 400


EARLIEST, LATEST = date(2000, 1, 1), date(2100, 12, 31)


def checked_period(first: date, last: date) -> tuple[date, date]:
    """A period of days the indicators can be computed over, or a 422 saying what is wrong."""
    for field, day in (("from", first), ("to", last)):
        if not EARLIEST <= day <= LATEST:
            raise Problem(
                422,
                "Invalid request",
                f"invalid or missing fields: {field}",
                errors=[{"field": field, "message": f"a day between {EARLIEST} and {LATEST}"}],
            )
    if last < first:
        raise Problem(
            422,
            "Invalid request",
            "invalid or missing fields: to",
            errors=[{"field": "to", "message": "`to` is before `from`"}],
        )
    if (last - first).days > MAX_DAYS:
        raise Problem(
            422,
            "Invalid request",
            "invalid or missing fields: to",
            errors=[{"field": "to", "message": f"a period is at most {MAX_DAYS} days"}],
        )
    return first, last


def build_router(db: Database, require_key: Callable[[Request], None], accounts: Accounts) -> APIRouter:
    """Readable with a regulator key (the SAS reads every CPTS) or an operations session
    (a coordinator reads their own CPTS only)."""
    router = APIRouter(tags=["operations"])

    async def allowed(request: Request, cpts_id: str) -> None:
        operator = await accounts.operator(request.cookies.get("sas_ops"))
        if operator is None:
            require_key(request)  # 401 without a valid key
        elif not operator.may_see(cpts_id):
            raise Problem(403, "Forbidden", f"this account does not see CPTS {cpts_id}")

    @router.get("/v1/indicators", dependencies=[Security(BEARER)], responses=problems(401, 403))
    async def indicators(
        request: Request,
        cpts_id: IdentQuery,
        first: Annotated[date, Query(alias="from")],
        last: Annotated[date, Query(alias="to")],
    ) -> dict[str, Any]:
        """National indicators 1 and 2 and the coordinators' figures, for one CPTS and period."""
        await allowed(request, cpts_id)
        first, last = checked_period(first, last)
        return ind.figures(cpts_id, first, last, *await read_model.facts(db, first, last))

    @router.get(
        "/v1/indicators/export.csv",
        dependencies=[Security(BEARER)],
        response_class=Response,
        responses={
            200: {"content": {"text/csv": {}}, "description": "one row per recorded fact"},
            **problems(401, 403),
        },
    )
    async def export(
        request: Request,
        cpts_id: IdentQuery,
        rows: Annotated[str, Query(pattern="^(requests|offers|slots|professionals)$")],
        first: Annotated[date, Query(alias="from")],
        last: Annotated[date, Query(alias="to")],
    ) -> Response:
        """The recorded rows behind the figures of a period, to check any of them by hand."""
        await allowed(request, cpts_id)
        first, last = checked_period(first, last)
        columns, found = await read_model.export_rows(db, rows, cpts_id, first, last)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows(
            [["" if v is None else (v.isoformat() if hasattr(v, "isoformat") else v) for v in row] for row in found]
        )
        name = f"{rows}-{cpts_id}-{first}-{last}.csv"
        return Response(
            out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{name}"',
                "X-Definition-Version": ind.DEFINITION_VERSION,
            },
        )

    @router.put(
        "/v1/ops/accounts/{email}", status_code=204, dependencies=[Security(BEARER)], responses=problems(401, 403)
    )
    async def put_account(
        request: Request, email: Annotated[str, Path(max_length=200, pattern=r"^[^@\s]+@[^@\s]+$")], body: AccountIn
    ) -> Response:
        """Create or update an operations account (the SAS, or a sas_admin, does it)."""
        operator = await accounts.operator(request.cookies.get("sas_ops"))
        if operator is None:
            require_key(request)
        elif operator.role != "sas_admin":
            raise Problem(403, "Forbidden", "only a sas_admin manages accounts")
        if "@" not in email or len(email) > 200 or has_control_characters(email):
            raise Problem(
                422,
                "Invalid request",
                "invalid or missing fields: email",
                errors=[{"field": "email", "message": "an e-mail address"}],
            )
        try:
            await accounts.put(email, body.password, body.role, body.cpts_id)
        except ValueError as error:
            raise Problem(
                422,
                "Invalid request",
                "invalid or missing fields: cpts_id",
                errors=[{"field": "cpts_id", "message": str(error)}],
            ) from None
        return Response(status_code=204)

    return router


class AccountIn(InputModel):
    password: str = Field(min_length=12, max_length=200)
    role: Literal["coordinator", "sas_admin"]
    cpts_id: str | None = Field(default=None, pattern=IDENT)
