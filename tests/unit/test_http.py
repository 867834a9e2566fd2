"""The HTTP conventions every service shares: problems, keys, correlation ids."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from pydantic import BaseModel

from services.common.deps import RegulatorKey
from services.common.http import install_log_context, install_problem_handlers
from services.common.settings import Settings


class Body(BaseModel):
    count: int


def app() -> FastAPI:
    app = FastAPI()
    app.state.settings = Settings(regulator_api_keys="k1,k2")
    install_problem_handlers(app)
    install_log_context(app)

    @app.post("/things", dependencies=[RegulatorKey])
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
    assert wrong.status_code == 401 and wrong.json()["detail"] == "this API key is not valid"


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
