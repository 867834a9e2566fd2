"""FastAPI dependencies the services' routes share, as full-stack-fastapi-template's `api/deps.py`.

Routes are declared at module level and ask for what they need: who may call them
(`allow(role…)`, `public(reason)`, `InternalKey`), the calling client (`CallerDep`), the
settings, or one of the objects a service registered with the runtime (`provided(Directory)`).
The composition root puts the settings, the clients and those objects on `app.state` (see
Runtime.app); a test can build an app with its own.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

import structlog
from fastapi import Depends, Request, Security

from services.common.access.registry import ClientRegistry
from services.common.access.roles import Client, Role, require
from services.common.http import BEARER, Problem, invalid_field
from services.common.outbound import RefusedDestination
from services.common.rate_limits import RateLimits
from services.common.settings import Settings

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def provided(kind: type[T]) -> Callable[[Request], T]:
    """A dependency giving the object of this type that a service registered (ServicePart.provides)."""

    def get(request: Request) -> T:
        found: T = request.app.state.provided[kind]
        return found

    get.__name__ = f"provided_{kind.__name__}"
    return get


def check_bearer(request: Request, keys: Sequence[str]) -> None:
    """`Authorization: Bearer <key>` with one of `keys`, or a 401 problem (constant time per key)."""
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not presented:
        raise Problem(401, "Unauthorized", "an API key is required: Authorization: Bearer <key>")
    matched = False
    for key in keys:  # compare with every key, so that timing says nothing
        matched |= hmac.compare_digest(presented.strip().encode(), key.encode())
    if not matched:
        raise Problem(401, "Unauthorized", "this API key is not valid")


def presented_key(request: Request) -> str:
    """The key of `Authorization: Bearer <key>`, or a 401 problem."""
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise Problem(401, "Unauthorized", "an API key is required: Authorization: Bearer <key>")
    return presented.strip()


async def authenticated(request: Request, _: Annotated[Any, Security(BEARER)] = None) -> Client:
    """The client behind the request's key (a revoked key is refused: services/common/access/known.py)."""
    known: Client | None = getattr(request.state, "client", None)
    if known is not None:  # the route's rule looked it up already
        return known
    registry: ClientRegistry = request.app.state.clients
    client = await registry.authenticate(presented_key(request))
    if client is None:
        raise Problem(401, "Unauthorized", "this API key is not valid (unknown or revoked)")
    structlog.contextvars.bind_contextvars(client_id=client.client_id)
    limits: RateLimits = request.app.state.limits
    await limits.hit(request.app.state.settings.api_rate_limit, "client", client.client_id)
    request.state.client = client
    return client


CallerDep = Annotated[Client, Depends(authenticated)]


class Rule:
    """Who may call a route, as a dependency every route carries (tests/unit/test_route_rules.py
    fails for a route without one). `access_rule` says it in words for the table."""

    def __init__(self, roles: Sequence[Role] = (), public: str | None = None) -> None:
        self.roles, self.public = tuple(roles), public
        self.access_rule = f"public: {public}" if public else "key of role " + ", ".join(r for r in roles)

    async def __call__(self, request: Request) -> None:
        if self.public is None:
            require(await authenticated(request), self.roles)


def allow(*roles: Role) -> Any:
    """A key of one of these roles (admin always may)."""
    return Depends(Rule(roles))


def public(reason: str) -> Any:
    """No key: the route checks something else (a link's signature, a session), said in `reason`."""
    return Depends(Rule(public=reason))


def described(rule: str) -> Callable[[F], F]:
    """Marks a dependency that decides access itself (a session or a key) with its rule in words."""

    def mark(function: F) -> F:
        function.access_rule = rule  # type: ignore[attr-defined]
        return function

    return mark


@described("INTERNAL_API_KEY: another service of this deployment")
def internal_key(request: Request, settings: SettingsDep) -> None:
    """Service to service (INTERNAL_API_KEY): the notifier asking the intake for a contact."""
    check_bearer(request, (settings.internal_api_key,) if settings.internal_api_key else ())


InternalKey = Depends(internal_key)


async def checked_destination(settings: Settings, field: str, url: str) -> None:
    """A callback or webhook URL the service may send to, or a 422 naming the field and why not."""
    try:
        await settings.outbound.check_url(url)
    except RefusedDestination as refused:
        raise invalid_field(field, str(refused)) from None


def client_address(request: Request) -> str:
    """Who calls, as far as the network says (behind TRUSTED_PROXIES, the address they saw)."""
    return request.client.host if request.client else "unknown"


def per_address(what: str, setting: str) -> Any:
    """A rate limit per client address on a route (the setting names the `limits` rule)."""

    async def limited(request: Request) -> None:
        limits: RateLimits = request.app.state.limits
        await limits.hit(getattr(request.app.state.settings, setting), what, client_address(request))

    limited.__name__ = f"limit_{what}"
    return Depends(limited)
