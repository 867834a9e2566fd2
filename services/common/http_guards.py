"""What every answer of every service goes through before and after its route: the log context
(a correlation id, links' secrets left out), input bounds checked before any route reads a byte
(InputGuard), the browser's security headers, and the API documentation served offline."""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import fastapi_offline
import structlog
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.audit import CLIENT_IP
from services.common.http import HttpMiddleware, problem_response
from services.common.inputs import has_control_characters

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
    app.add_middleware(LogContext)


class LogContext(HttpMiddleware):
    """See `install_log_context`."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        structlog.contextvars.clear_contextvars()
        correlation = Headers(scope=scope).get("x-request-id") or uuid.uuid4().hex
        structlog.contextvars.bind_contextvars(
            correlation_id=correlation, http=f"{scope['method']} {loggable(scope['path'])}"
        )
        client = scope.get("client")
        CLIENT_IP.set(client[0] if client else None)  # for the audit trail

        async def with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-ID"] = correlation
            await send(message)

        await self.app(scope, receive, with_id)


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
    app.add_middleware(SecurityHeaders, page_policy=page_policy, https=https)


class SecurityHeaders(HttpMiddleware):
    """See `install_security_headers`."""

    def __init__(self, app: ASGIApp, page_policy: str, https: bool) -> None:
        super().__init__(app)
        self.page_policy, self.https = page_policy, https

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if path == "/docs" or path.startswith("/docs/"):
                    policy = DOCS_POLICY
                elif headers.get("content-type", "").startswith("text/html"):
                    policy = self.page_policy
                else:
                    policy = DATA_POLICY
                headers.setdefault("Content-Security-Policy", policy)
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "no-referrer"
                headers["X-Frame-Options"] = "DENY"
                if self.https:
                    headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
            await send(message)

        await self.app(scope, receive, secured)


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
