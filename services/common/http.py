"""HTTP conventions of the public contract: RFC 9457 problems and regulator API keys."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.db import database_away, text_not_storable

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"


class Problem(HTTPException):
    """An error answered as `application/problem+json` with a readable detail."""

    def __init__(
        self, status: int, title: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(status_code=status, detail=detail, headers=headers)
        self.title = title
        self.extra = extra


def invalid_field(field: str, message: str) -> Problem:
    """The 422 for a value no schema could refuse (an unknown commune, an end before its start),
    naming the field as the validation errors do."""
    return Problem(
        422, "Invalid request", f"invalid or missing fields: {field}", errors=[{"field": field, "message": message}]
    )


def problem_response(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_name(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _answer_known_failure(exc: Exception) -> JSONResponse | None:
    """The answer to a failure that is not a bug: the database away, a text it cannot store."""
    if database_away(exc):  # a restart or a failover: nothing was recorded, the call can be made again
        log.warning("database away", error=type(exc).__name__)
        response = problem_response(
            503, "Service Unavailable", "the database cannot be reached right now; nothing was recorded, try again"
        )
        response.headers["Retry-After"] = "2"
        return response
    if text_not_storable(exc):  # the input checks should have caught it: still the input's fault
        log.warning("text the database cannot store", error=type(exc).__name__)
        return problem_response(422, "Invalid request", "a text field holds a character that cannot be stored")
    return None


class HttpMiddleware:
    """A plain ASGI middleware that sees HTTP calls only (anything else passes through): the
    `@app.middleware` kind runs each call in a task of its own, a cost on every request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.http(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class KnownFailures(HttpMiddleware):
    """Answers the failures that are not bugs (see `_answer_known_failure`) here, not by an
    `Exception` handler: Starlette re-raises after those, and the server then closes the
    connection — a client reusing it saw its next call dropped."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            answer = _answer_known_failure(exc)
            if answer is None or started:
                raise
            await answer(scope, receive, send)


# A service's domain exceptions and the problem each is answered with (ServicePart.problems)
ProblemMap = dict[type[Exception], Callable[[Any], Problem]]


def install_problem_handlers(app: FastAPI, domain: ProblemMap | None = None) -> None:
    """Every error of every route as problem+json, from here: validation, HTTP errors, the
    services' domain exceptions (`domain`), a database away, and the unexpected."""
    for kind, problem_of in (domain or {}).items():
        app.add_exception_handler(kind, _domain_handler(problem_of))

    app.add_middleware(KnownFailures)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
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
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc, Problem):
            answer = problem_response(exc.status_code, exc.title, str(exc.detail), **exc.extra)
            answer.headers.update(exc.headers or {})
            return answer
        response = problem_response(exc.status_code, _title(exc.status_code), str(exc.detail))
        response.headers.update(exc.headers or {})
        if exc.status_code == 405:  # Starlette names the methods of one route; a path has one route per method
            response.headers["Allow"] = ", ".join(sorted(_methods_of(request)))
        return response


def _domain_handler(problem_of: Callable[[Any], Problem]) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def answer(_: Request, exc: Exception) -> Response:
        problem = problem_of(exc)
        answer = problem_response(problem.status_code, problem.title, str(problem.detail), **problem.extra)
        answer.headers.update(problem.headers or {})
        return answer

    return answer


_PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "what went wrong, readable"},
        "errors": {
            "type": "array",
            "description": "for invalid input: each offending field and why",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
_EVERY_OPERATION = {
    "422": "invalid input: `errors` names each field (a path or query with control characters included)",
    "503": "the database cannot be reached right now: nothing was recorded, try again after `Retry-After` seconds",
}


_MEANING = {
    401: "no valid API key or session",
    403: "this account may not do or see that",
    404: "no such thing",
    409: "conflicts with its current state, or with what was sent before under the same id",
}


CREATED: dict[int | str, dict[str, Any]] = {201: {"description": "created (200 when it existed and was updated)"}}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """A route's own error answers, for its `responses=`; `describe_problems` gives them their body."""
    return {status: {"description": _MEANING[status]} for status in statuses}


def describe_problems(app: FastAPI, documented: Sequence[APIRouter] = ()) -> None:
    """Make the OpenAPI document say what the API really answers: every error as problem+json,
    401 where a key is required, 413 where a body is read, 422 and 503 anywhere. `documented`:
    routers this process does not serve (not included in `app`) but the document describes — the
    whole public API, for a gateway that sends /openapi.json to one service."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        routes = [*app.routes, *(route for router in documented for route in router.routes)]
        document = get_openapi(title=app.title, version=app.version, description=app.description, routes=routes)
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):  # FastAPI's 422 body, not ours
            schemas.pop(unused, None)
        schemas["Problem"] = _PROBLEM_SCHEMA
        problem = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                if operation.get("security"):
                    responses.setdefault("401", {"description": "no valid API key (unknown or revoked)"})
                    responses.setdefault("403", {"description": "the key's role or scope does not allow this"})
                if "requestBody" in operation:
                    responses.setdefault("400", {"description": "the body could not be read (not UTF-8, say)"})
                    responses.setdefault("413", {"description": "the body is over `MAX_BODY_BYTES`"})
                for status, description in _EVERY_OPERATION.items():
                    responses.setdefault(status, {"description": description})
                for status, response in responses.items():
                    content = response.get("content", {})
                    if status >= "400" and (not content or "HTTPValidationError" in str(content)):
                        response["content"] = problem
                    if status == "503":
                        response.setdefault("headers", {})["Retry-After"] = {
                            "description": "seconds to wait before trying again",
                            "schema": {"type": "integer"},
                        }
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _methods_of(request: Request) -> set[str]:
    methods: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, Route) and route.methods and route.matches(request.scope)[0] != Match.NONE:
            methods |= route.methods
    return methods


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


# Declares the scheme in the OpenAPI document; the check itself is ours (problem+json, constant time).
BEARER = HTTPBearer(
    auto_error=False, scheme_name="apiKey", description="a client's API key: `Authorization: Bearer <key>`"
)


def failures_answered_by(answer: Callable[[Request, Exception], Response | None]) -> type[APIRoute]:
    """A route class whose routes answer their own known failures with `answer(request, error)`
    (an OperationOutcome for FHIR, a "try again" page for a professional), before the app's
    problem+json handlers; `answer` returns None for the failures it does not know."""

    class AnsweringRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def answered(request: Request) -> Response:
                try:
                    return await handler(request)
                except Exception as error:
                    response = answer(request, error)
                    if response is None:
                        raise
                    return response

            return answered

    return AnsweringRoute
