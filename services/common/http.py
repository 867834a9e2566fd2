"""HTTP conventions of the public contract: RFC 9457 problems and regulator API keys."""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.base import RequestResponseEndpoint
from starlette.responses import Response

from services.common.db import database_away

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"


class Problem(HTTPException):
    """An error answered as `application/problem+json` with a readable detail."""

    def __init__(self, status: int, title: str, detail: str, **extra: Any) -> None:
        super().__init__(status_code=status, detail=detail)
        self.title = title
        self.extra = extra


def problem_response(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_name(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        if database_away(exc):  # a restart or a failover: nothing was recorded, the call can be made again
            log.warning("database away", error=type(exc).__name__)
            response = problem_response(
                503, "Service Unavailable", "the database cannot be reached right now; nothing was recorded, try again"
            )
            response.headers["Retry-After"] = "2"
            return response
        log.exception("unexpected error", error=type(exc).__name__)
        return problem_response(500, "Internal Server Error", "an unexpected error occurred; it has been logged")

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _field_name(e["loc"]), "message": e["msg"]} for e in exc.errors()]
        fields = sorted({e["field"] for e in errors})
        return problem_response(
            422, "Invalid request", f"invalid or missing fields: {', '.join(fields)}", errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc, Problem):
            return problem_response(exc.status_code, exc.title, str(exc.detail), **exc.extra)
        return problem_response(exc.status_code, _title(exc.status_code), str(exc.detail))


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def bearer_key_checker(keys: Callable[[], Sequence[str]]) -> Callable[[Request], None]:
    """A FastAPI dependency accepting `Authorization: Bearer <key>` for one of `keys()`."""

    def check(request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented:
            raise Problem(401, "Unauthorized", "an API key is required: Authorization: Bearer <key>")
        # Compare with every key, in constant time for each, so timing says nothing.
        matched = False
        for key in keys():
            matched |= hmac.compare_digest(presented.strip().encode(), key.encode())
        if not matched:
            raise Problem(401, "Unauthorized", "this API key is not valid")

    return check


def install_log_context(app: FastAPI) -> None:
    """Bind a correlation id (X-Request-ID, or a new one) and the path to every log line of a call.

    Offer links carry a secret: their path is logged without it.
    """

    @app.middleware("http")
    async def bind(request: Request, call_next: RequestResponseEndpoint) -> Response:
        structlog.contextvars.clear_contextvars()
        correlation = request.headers.get("x-request-id") or uuid.uuid4().hex
        path = request.url.path
        structlog.contextvars.bind_contextvars(
            correlation_id=correlation, http=f"{request.method} {'/o/…' if path.startswith('/o/') else path}"
        )
        response = await call_next(request)
        response.headers["X-Request-ID"] = correlation
        return response
