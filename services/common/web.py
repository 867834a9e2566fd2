"""A process's HTTP application: every hosted service's routes behind the same guards (input
bounds, security headers, problem answers, log context), with /metrics and /healthz."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.common.access.roles import Forbidden
from services.common.http import Problem, ProblemMap, describe_problems, install_problem_handlers
from services.common.http_guards import (
    InputGuard,
    inline_script_hashes,
    install_log_context,
    install_offline_docs,
    install_security_headers,
)
from services.common.rate_limits import TooManyRequests

if TYPE_CHECKING:
    from services.common.runtime import Runtime

# who may call, and how often (services/common/deps.py), answered alike by every service
ACCESS_PROBLEMS: ProblemMap = {
    Forbidden: lambda e: Problem(403, "Forbidden", str(e)),
    TooManyRequests: lambda e: Problem(429, "Too Many Requests", str(e), {"Retry-After": str(e.retry_after)}),
}


def make_app(
    runtime: Runtime,
    title: str = "SAS–CPTS orientation",
    on_started: Callable[[], Awaitable[None]] | None = None,
    documented: Sequence[APIRouter] = (),
) -> FastAPI:
    """The application serving `runtime`'s parts, which it starts and stops with it."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        if on_started:
            await on_started()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title=title, version="1", lifespan=lifespan, docs_url=None, redoc_url=None)
    install_offline_docs(app)
    settings, parts = runtime.settings, runtime.parts
    app.state.settings = settings
    app.state.clients = runtime.clients
    app.state.limits = runtime.limits
    app.state.provided = {type(thing): thing for part in parts for thing in part.provides}
    install_problem_handlers(app, ACCESS_PROBLEMS | {k: a for part in parts for k, a in part.problems.items()})
    install_log_context(app)
    install_security_headers(app, inline_script_hashes(), https=settings.base_url.startswith("https://"))
    app.add_middleware(
        InputGuard,
        max_body_bytes=settings.max_body_bytes,
        uploads=("/rpps-import",),
        max_upload_bytes=settings.max_upload_bytes,
        refusals={prefix: answer for part in parts for prefix, answer in part.refusals.items()},
    )
    served = [router for part in parts for router in part.routers]
    describe_problems(app, [router for router in documented if router not in served])
    for part in parts:
        for router in part.routers:
            app.include_router(router)
    _operations_routes(app, runtime)
    return app


def _operations_routes(app: FastAPI, runtime: Runtime) -> None:
    @app.get("/metrics", tags=["operations"], include_in_schema=False)
    async def prometheus() -> Response:
        await runtime.measure()
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get(
        "/healthz",
        tags=["operations"],
        responses={503: {"description": "not ready: `checks` says which part", "content": {"application/json": {}}}},
    )
    async def healthz() -> JSONResponse:
        checks = await runtime.health()
        ready = all(checks.values())
        return JSONResponse(
            {"status": "ok" if ready else "starting", "checks": checks}, status_code=200 if ready else 503
        )
