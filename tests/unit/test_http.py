"""The HTTP conventions every service shares: problems, keys, correlation ids."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from pydantic import BaseModel

from services.common.access.roles import Client, Forbidden, Role
from services.common.deps import allow
from services.common.http import Problem, install_problem_handlers
from services.common.http_guards import install_log_context
from services.common.settings import Settings


class Body(BaseModel):
    count: int


KNOWN = {
    "k1": Client("c1", "SAS 79", Role.REGULATOR, "sas79"),
    "k2": Client("c2", "SAS 86", Role.REGULATOR, "sas86"),
    "p1": Client("c3", "Plateforme", Role.PLATFORM, ""),
}


class Clients:
    """The registry's one method a route's rule calls (services/common/access/registry.py)."""

    async def authenticate(self, key: str) -> Client | None:
        return KNOWN.get(key)


class NoLimits:
    async def hit(self, rule: str, what: str, who: str) -> None:
        return None


def app() -> FastAPI:
    app = FastAPI()
    app.state.settings = Settings()
    app.state.clients = Clients()
    app.state.limits = NoLimits()
    install_problem_handlers(app, {Forbidden: lambda e: Problem(403, "Forbidden", str(e))})
    install_log_context(app)

    @app.post("/things", dependencies=[allow(Role.REGULATOR)])
    async def things(body: Body) -> dict[str, int]:
        return {"count": body.count}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    @app.get("/database-restarting")
    async def restarting() -> None:
        raise RuntimeError("could not reach the database") from ConnectionRefusedError(111, "Connection refused")

    return app


async def call(method: str, path: str, **kwargs: object) -> httpx.Response:
    transport = httpx.ASGITransport(app=app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.request(method, path, **kwargs)  # type: ignore[arg-type]


async def test_keys() -> None:
    assert (await call("POST", "/things", json={"count": 1}, headers={"Authorization": "Bearer k2"})).status_code == 200
    missing = await call("POST", "/things", json={"count": 1})
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert missing.headers["content-type"] == "application/problem+json"
    wrong = await call("POST", "/things", json={"count": 1}, headers={"Authorization": "Bearer k3"})
    assert wrong.status_code == 401 and wrong.json()["detail"] == "this API key is not valid (unknown or revoked)"
    other_role = await call("POST", "/things", json={"count": 1}, headers={"Authorization": "Bearer p1"})
    assert other_role.status_code == 403 and other_role.headers["content-type"] == "application/problem+json"
    assert "needs the role admin or regulator" in other_role.json()["detail"]


async def test_validation_errors_name_the_fields_without_echoing_values() -> None:
    response = await call("POST", "/things", json={"count": "many"}, headers={"Authorization": "Bearer k1"})
    assert response.status_code == 422
    problem = response.json()
    assert problem["errors"] == [{"field": "count", "message": problem["errors"][0]["message"]}]
    assert "many" not in response.text


async def test_an_unexpected_error_is_a_500_problem_without_internals() -> None:
    response = await call("GET", "/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "secret internals" not in response.text


async def test_every_answer_carries_a_correlation_id() -> None:
    assert (await call("GET", "/nowhere", headers={"X-Request-ID": "abc"})).headers["x-request-id"] == "abc"
    assert len((await call("GET", "/nowhere")).headers["x-request-id"]) == 32


async def test_a_database_that_is_away_answers_503_with_retry_after() -> None:
    response = await call("GET", "/database-restarting")
    assert response.status_code == 503 and response.headers["retry-after"] == "2"
    assert response.headers["content-type"] == "application/problem+json"
    assert "Connection refused" not in response.text
    assert (await call("GET", "/boom")).status_code == 500  # anything else stays a 500


async def test_a_database_away_is_answered_without_the_error_reaching_the_server() -> None:
    """Starlette re-raises after an `Exception` handler and uvicorn then closes the connection:
    a client reusing it would see its next call dropped. A 503 must end the call cleanly."""
    transport = httpx.ASGITransport(app=app(), raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/database-restarting")
    assert response.status_code == 503 and response.headers["retry-after"] == "2"
