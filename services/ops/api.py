"""GET /v1/indicators (contract v1) and the CSV of the rows behind every figure."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import Field

from services.common import audit
from services.common.access.accounts import InvalidAccount
from services.common.access.roles import DEPARTMENT
from services.common.http import invalid_field, problems
from services.common.inputs import IDENT, IdentQuery, InputModel, has_control_characters
from services.ops import indicators, views
from services.ops.adapters import repository
from services.ops.deps import OperationsDep, OperatorDep, account_manager, actor_of, cpts_reader
from services.ops.exports import Format, to_csv

MAX_DAYS = 400


EARLIEST, LATEST = date(2000, 1, 1), date(2100, 12, 31)


def checked_period(first: date, last: date) -> tuple[date, date]:
    """A period of days the indicators can be computed over, or a 422 saying what is wrong."""
    for field, day in (("from", first), ("to", last)):
        if not EARLIEST <= day <= LATEST:
            raise invalid_field(field, f"a day between {EARLIEST} and {LATEST}")
    if last < first:
        raise invalid_field("to", "`to` is before `from`")
    if (last - first).days > MAX_DAYS:
        raise invalid_field("to", f"a period is at most {MAX_DAYS} days")
    return first, last


class AccountIn(InputModel):
    password: str = Field(min_length=12, max_length=200)
    role: Literal["coordinator", "sas_admin", "regulator"]
    cpts_id: str | None = Field(default=None, pattern=IDENT, description="a coordinator's CPTS")
    organisation: str | None = Field(
        default=None, pattern=IDENT, description="a regulator's: its console shows this organisation's requests"
    )
    departments: list[Annotated[str, Field(pattern=DEPARTMENT)]] | None = Field(
        default=None, max_length=110, description="a regulator's; none: every département"
    )


router = APIRouter(tags=["operations"])


@router.get(
    "/v1/indicators",
    dependencies=[Depends(cpts_reader)],
    responses=problems(401, 403),
    response_model=views.Indicators,
)
async def indicators_of_cpts(
    cpts_id: IdentQuery,
    first: Annotated[date, Query(alias="from")],
    last: Annotated[date, Query(alias="to")],
    ops: OperationsDep,
) -> dict[str, Any]:
    """National indicators 1 and 2 and the coordinators' figures, for one CPTS and period."""
    first, last = checked_period(first, last)
    return indicators.figures(cpts_id, first, last, *await repository.facts(ops.db, first, last))


@router.get(
    "/v1/indicators/export.csv",
    dependencies=[Depends(cpts_reader)],
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "one row per recorded fact"}, **problems(401, 403)},
)
async def export(
    cpts_id: IdentQuery,
    rows: Annotated[str, Query(pattern="^(requests|offers|slots|professionals)$")],
    first: Annotated[date, Query(alias="from")],
    last: Annotated[date, Query(alias="to")],
    ops: OperationsDep,
    request: Request,
    operator: OperatorDep,
    form: Annotated[Format, Query(alias="format")] = "csv-fr",
) -> Response:
    """The recorded rows behind the figures of a period, to check any of them by hand: for a
    French spreadsheet by default (`;`, BOM, Paris times, `oui`/`non`), or `format=csv-rfc4180`."""
    first, last = checked_period(first, last)
    columns, found = await repository.export_rows(ops.db, rows, cpts_id, first, last)
    async with ops.db.transaction() as tx:  # what left the service, and to whom
        detail = f"{rows} of {cpts_id} {first}..{last}"
        await audit.record(
            tx.session, actor_of(request, operator), "export.downloaded", None, ops.accounts.clock(), detail=detail
        )
    return Response(
        to_csv(columns, found, form),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{rows}-{cpts_id}-{first}-{last}.csv"',
            "X-Definition-Version": indicators.DEFINITION_VERSION,
        },
    )


@router.put(
    "/v1/ops/accounts/{email}",
    status_code=204,
    dependencies=[Depends(account_manager)],
    responses=problems(401, 403),
)
async def put_account(
    request: Request,
    email: Annotated[str, Path(max_length=200, pattern=r"^[^@\s]+@[^@\s]+$")],
    body: AccountIn,
    ops: OperationsDep,
    operator: OperatorDep,
) -> Response:
    """Create or update an account: a coordinator (`cpts_id`) or a sas_admin for the operations
    pages, a regulator (`organisation`, `departments`) for the console at /r."""
    if "@" not in email or len(email) > 200 or has_control_characters(email):
        raise invalid_field("email", "an e-mail address")
    try:
        await ops.accounts.put(
            email,
            body.password,
            body.role,
            body.cpts_id,
            actor_of(request, operator),
            organisation=body.organisation,
            departments=body.departments,
        )
    except InvalidAccount as error:
        raise invalid_field("role", str(error)) from None
    return Response(status_code=204)
