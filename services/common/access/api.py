"""The admin's API for clients (contract v2): create (key shown once), list, revoke, rotate the
signing secret. Served by the operations service (services/ops/entrypoint.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.common.access.models import ApiClient
from services.common.access.registry import ClientRegistry, UnknownClient
from services.common.access.roles import DEPARTMENT, Role
from services.common.audit import Actor
from services.common.deps import CallerDep, allow
from services.common.http import Problem, problems
from services.common.inputs import IDENT, InputModel


def registry(request: Request) -> ClientRegistry:
    found: ClientRegistry = request.app.state.clients
    return found


RegistryDep = Annotated[ClientRegistry, Depends(registry)]
router = APIRouter(tags=["clients"], dependencies=[allow(Role.ADMIN)])
CLIENT_ID = r"^[A-Za-z0-9_\-]{1,100}$"


class ClientIn(InputModel):
    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")
    role: Literal["admin", "regulator", "directory", "platform"]
    organisation: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")
    departments: list[Annotated[str, Field(pattern=DEPARTMENT)]] | None = Field(
        default=None, max_length=110, description="a regulator's départements; absent: every one"
    )
    cpts_ids: list[Annotated[str, Field(pattern=IDENT)]] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def scoped(self) -> ClientIn:
        if self.role == "directory" and not self.cpts_ids:
            raise ValueError("a directory client needs `cpts_ids`: the CPTS whose directory it writes")
        if self.role != "directory" and self.cpts_ids:
            raise ValueError("`cpts_ids` applies to directory clients only")
        if self.role != "regulator" and (self.departments is not None or self.organisation is not None):
            raise ValueError("`organisation` and `departments` apply to regulator clients only")
        return self


class ClientView(BaseModel):
    """A client as an admin sees it: never its key nor its signing secret."""

    model_config = ConfigDict(extra="forbid")
    client_id: str
    name: str
    role: str
    organisation: str | None
    departments: list[str] | None
    cpts_ids: list[str]
    source: str
    created_at: str
    last_used_at: str | None
    revoked_at: str | None


class ClientList(BaseModel):
    items: list[ClientView]


class ClientCreated(BaseModel):
    """Its key and signing secret, shown in this answer only."""

    client_id: str
    key: str
    signing_secret: str
    role: str
    organisation: str | None


class SecretRotated(BaseModel):
    client_id: str
    signing_secret: str


def client_view(row: ApiClient) -> dict[str, Any]:
    """A client as the admin sees it: never its key nor its signing secret."""
    return {
        "client_id": row.client_id,
        "name": row.name,
        "role": row.role,
        "organisation": row.organisation or None,
        "departments": row.departments,
        "cpts_ids": row.cpts_ids,
        "source": row.source,
        "created_at": row.created_at.isoformat(),
        "last_used_at": row.last_used_at.isoformat() if row.last_used_at else None,
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
    }


@router.post("/v1/api-clients", status_code=201, responses=problems(401, 403), response_model=ClientCreated)
async def create_client(body: ClientIn, clients: RegistryDep, caller: CallerDep) -> JSONResponse:
    """A new client; its `key` and `signing_secret` are shown in this answer only."""
    by = Actor("client", caller.client_id)
    created = await clients.create(
        body.name, Role(body.role), body.organisation, body.departments, body.cpts_ids, by=by
    )
    return JSONResponse(
        {
            "client_id": created.client.client_id,
            "key": created.key,
            "signing_secret": created.signing_secret,
            "role": str(created.client.role),
            "organisation": created.client.organisation or None,
        },
        status_code=201,
    )


@router.get("/v1/api-clients", responses=problems(401, 403), response_model=ClientList)
async def list_clients(clients: RegistryDep) -> dict[str, Any]:
    return {"items": [client_view(row) for row in await clients.all()]}


@router.delete("/v1/api-clients/{client_id}", responses=problems(401, 403, 404), response_model=ClientView)
async def revoke_client(
    client_id: Annotated[str, Path(pattern=CLIENT_ID)], clients: RegistryDep, caller: CallerDep
) -> dict[str, Any]:
    """The key answers 401 from now on, in every process."""
    try:
        return client_view(await clients.revoke(client_id, Actor("client", caller.client_id)))
    except UnknownClient:
        raise Problem(404, "Not Found", f"no client {client_id}") from None


@router.post(
    "/v1/api-clients/{client_id}/signing-secret", responses=problems(401, 403, 404), response_model=SecretRotated
)
async def rotate_secret(
    client_id: Annotated[str, Path(pattern=CLIENT_ID)], clients: RegistryDep, caller: CallerDep
) -> dict[str, Any]:
    """A new signing secret, shown once; pushes carry both signatures for 24 hours."""
    try:
        secret = await clients.rotate_signing_secret(client_id, by=Actor("client", caller.client_id))
    except UnknownClient:
        raise Problem(404, "Not Found", f"no client {client_id}") from None
    return {"client_id": client_id, "signing_secret": secret}
