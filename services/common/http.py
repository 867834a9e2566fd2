"""HTTP conventions of the public contract: RFC 9457 problems and regulator API keys."""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import fastapi_offline
import structlog
from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.base import RequestResponseEndpoint
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.audit import CLIENT_IP
from services.common.db import database_away, text_not_storable
from services.common.inputs import has_control_characters

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


# A service's domain exceptions and the problem each is answered with (ServicePart.problems)
ProblemMap = dict[type[Exception], Callable[[Any], Problem]]


def install_problem_handlers(app: FastAPI, domain: ProblemMap | None = None) -> None:
    """Every error of every route as problem+json, from here: validation, HTTP errors, the
    services' domain exceptions (`domain`), a database away, and the unexpected."""
    for kind, problem_of in (domain or {}).items():
        app.add_exception_handler(kind, _domain_handler(problem_of))

    @app.middleware("http")
    async def known_failures(request: Request, call_next: RequestResponseEndpoint) -> Response:
        """Answered here, not by an `Exception` handler: Starlette re-raises after those, and the
        server then closes the connection — a client reusing it saw its next call dropped."""
        try:
            return await call_next(request)
        except Exception as exc:
            answer = _answer_known_failure(exc)
            if answer is None:
                raise
            return answer

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


SECRET_PATHS = ("o", "p")  # /o/<offer link>, /p/<personal link>: the second segment is a secret


def loggable(path: str) -> str:
    """The path as log lines may show it: an offer's or a professional's link without its secret."""
    parts = path.split("/")
    if len(parts) > 2 and parts[1] in SECRET_PATHS and parts[2]:
        parts[2] = "…"
    return "/".join(parts)


def install_log_context(app: FastAPI) -> None:
    """Bind a correlation id (X-Request-ID, or a new one) and the path to every log line of a call
    (without the secret of a link: see `loggable`)."""

    @app.middleware("http")
    async def bind(request: Request, call_next: RequestResponseEndpoint) -> Response:
        structlog.contextvars.clear_contextvars()
        correlation = request.headers.get("x-request-id") or uuid.uuid4().hex
        structlog.contextvars.bind_contextvars(
            correlation_id=correlation, http=f"{request.method} {loggable(request.url.path)}"
        )
        CLIENT_IP.set(request.client.host if request.client else None)  # for the audit trail
        response = await call_next(request)
        response.headers["X-Request-ID"] = correlation
        return response


# how the paths under a prefix say "refused" when no route ran: (status, title, detail) → answer
RefusalFormat = Callable[[int, str, str], Response]


class InputGuard:
    """Refuses, before any route runs, what no route could want: a body over `max_body_bytes`
    (413, counted as it arrives, so a body without Content-Length cannot slip by), and a path
    or query string with control characters or of absurd length (422). As problem+json, or in
    the form the paths under a prefix speak (`refusals`: an OperationOutcome under /fhir)."""

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        max_target_length: int = 4096,
        uploads: tuple[str, ...] = (),
        max_upload_bytes: int = 0,
        refusals: dict[str, RefusalFormat] | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_target_length = max_target_length
        self.uploads, self.max_upload_bytes = uploads, max_upload_bytes  # paths ending so take files
        self.refusals = refusals or {}

    def _refused(self, scope: Scope, status: int, title: str, detail: str, **extra: Any) -> Response:
        path = str(scope.get("path", ""))
        for prefix, answer in self.refusals.items():
            if path == prefix or path.startswith(prefix + "/"):
                return answer(status, title, detail)
        return problem_response(status, title, detail, **extra)

    def _limit(self, scope: Scope) -> int:
        if self.uploads and str(scope.get("path", "")).endswith(self.uploads):
            return self.max_upload_bytes
        return self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        received, over, limit = 0, False, self._limit(scope)

        async def counted() -> Message:
            nonlocal received, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True  # the route sees the client gone; the answer is ours
                    return {"type": "http.disconnect"}
            return message

        async def unless_over(message: Message) -> None:
            if not over:
                await send(message)

        try:
            await self.app(scope, counted, unless_over)
        except Exception:
            if not over:
                raise
        if over:
            await self._too_large(scope, limit)(scope, receive, send)

    def _too_large(self, scope: Scope, limit: int) -> Response:
        return self._refused(scope, 413, "Content Too Large", f"the request body is over {limit} bytes")

    def _refusal(self, scope: Scope) -> Response | None:
        path: str = scope.get("path", "")
        query = unquote_plus(scope.get("query_string", b"").decode("latin-1"))
        for field, value in (("path", path), ("query", query)):
            if len(value) > self.max_target_length or has_control_characters(value):
                message = f"the {field} is too long or holds control characters"
                errors = [{"field": field, "message": message}]
                return self._refused(scope, 422, "Invalid request", f"invalid fields: {field}", errors=errors)
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            if not declared.isdigit():
                return self._refused(scope, 400, "Bad Request", "Content-Length is not a number")
            if int(declared) > self._limit(scope):
                return self._too_large(scope, self._limit(scope))
        return None


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


DOCS_ASSETS = "/docs/assets"
# Swagger UI's files as the `fastapi-offline` package ships them (the version FastAPI's page expects)
SWAGGER_UI = Path(fastapi_offline.__file__).parent / "static"


def install_offline_docs(app: FastAPI) -> None:
    """`/docs` with Swagger UI served by the service itself: FastAPI's default page fetches its
    scripts from a CDN, a blank page without internet."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=SWAGGER_UI), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} — API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        )


# What a browser may do with what the service sends (OWASP secure headers). Pages load nothing
# from elsewhere; their one inline script (the dashboard's live view) is allowed by its hash.
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self' {scripts}; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
DOCS_POLICY = (  # Swagger UI starts from an inline script of FastAPI's page
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
DATA_POLICY = "default-src 'none'; frame-ancestors 'none'"


def install_security_headers(app: FastAPI, script_hashes: Sequence[str], https: bool) -> None:
    """Every answer: no framing, no type sniffing, no referrer (a link's token never leaves in a
    Referer), a Content-Security-Policy (pages: their own resources only); HSTS behind https."""
    page_policy = PAGE_POLICY.format(scripts=" ".join(f"'sha256-{h}'" for h in script_hashes))

    @app.middleware("http")
    async def secure_headers(request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        kind = response.headers.get("content-type", "")
        if request.url.path == "/docs" or request.url.path.startswith("/docs/"):
            policy = DOCS_POLICY
        elif kind.startswith("text/html"):
            policy = page_policy
        else:
            policy = DATA_POLICY
        response.headers.setdefault("Content-Security-Policy", policy)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        if https:
            response.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        return response


TEMPLATES = Path(__file__).resolve().parents[1]  # services/: each service's templates/ below it
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


def inline_script_hashes(root: Path = TEMPLATES) -> list[str]:
    """The base64 SHA-256 of each inline script of the pages' templates (none holds a template
    expression, so the page carries it as written): what the pages' CSP allows to run."""
    found = set()
    for template in sorted(root.glob("*/templates/*.html")):
        for script in _INLINE_SCRIPT.findall(template.read_text(encoding="utf-8")):
            found.add(base64.b64encode(hashlib.sha256(script.encode()).digest()).decode())
    return sorted(found)
