"""A reverse proxy standing for the deployment's nginx: it routes by the same table
(services/routing.py), so that the services can be tested as separate processes behind one port."""

from __future__ import annotations

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from services import routing

HOP_BY_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"content-length", b"content-encoding", b"host"}


class Gateway:
    """ASGI app forwarding each request to the port of the service that owns its path."""

    def __init__(self, ports: dict[str, int]) -> None:
        self.ports = ports
        self.client = httpx.AsyncClient(timeout=30)
        self.forwarded: list[tuple[str, str]] = []  # (path, service), in order

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        path = request.url.path
        service = routing.owner(path)
        if service is None:
            await Response("not routed", status_code=404)(scope, receive, send)
            return
        self.forwarded.append((path, service))
        if path.startswith(tuple(f"{p}/" for p in routing.PER_SERVICE)):
            path = "/" + path.split("/")[1]  # /healthz/ops → that service's /healthz
        headers = [(k, v) for k, v in request.headers.raw if k.lower() not in HOP_BY_HOP]
        client = request.client.host if request.client else "unknown"
        headers.append((b"x-forwarded-for", client.encode()))
        upstream = await self.client.request(
            request.method,
            f"http://127.0.0.1:{self.ports[service]}{path}",
            params=request.url.query,
            content=await request.body(),
            headers=headers,
        )
        response = Response(upstream.content, status_code=upstream.status_code)
        response.raw_headers += [(k, v) for k, v in upstream.headers.raw if k.lower() not in HOP_BY_HOP]
        await response(scope, receive, send)
