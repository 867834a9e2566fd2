"""Every route says who may call it (contract v2): a route added without a rule fails here.

The rule is a dependency carrying `access_rule` (services/common/deps.py: `allow`, `public`,
`described`, `InternalKey`), found anywhere in the route's dependency tree. The few routes every
process serves for its operators are listed below with their reason. The behaviour of each rule
for each role is tested on the running services (tests/e2e/test_access.py)."""

from __future__ import annotations

from pathlib import Path

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from services.common.settings import Settings
from services.main import build_app

# served by every process, outside the services' routers
INFRASTRUCTURE = {
    "/healthz": "readiness for the orchestrator: says which part is down, nothing of the data",
    "/metrics": "Prometheus counters, no personal data (the gateway should restrict it)",
    "/docs": "the API's documentation",
    "/docs/assets": "the documentation's own files",
    "/openapi.json": "the API's description",
}


def rules_of(dependant: Dependant) -> list[str]:
    found = []
    for dependency in dependant.dependencies:
        rule = getattr(dependency.call, "access_rule", None)
        if rule:
            found.append(str(rule))
        found += rules_of(dependency)
    return found


def flattened(routes: list[BaseRoute]) -> list[BaseRoute]:
    """The routes, those of included routers too (FastAPI keeps an included router as one entry)."""
    found: list[BaseRoute] = []
    for route in routes:
        included = getattr(route, "original_router", None)
        found += flattened(list(included.routes)) if included is not None else [route]
    return found


def every_route() -> list[BaseRoute]:
    settings = Settings(secret_key="s", data_dir=Path("/nonexistent"), internal_api_key="ik", demo_data=False)
    app, _ = build_app(settings, "postgresql://nobody@/nowhere?host=/nonexistent", "127.0.0.1:1")
    return flattened(list(app.routes))


def route_rules() -> dict[str, list[str]]:
    table = {}
    for route in every_route():
        path = getattr(route, "path", "")
        if isinstance(route, APIRoute):
            for method in sorted(route.methods):
                table[f"{method} {path}"] = rules_of(route.dependant)
        else:
            table[f"* {path}"] = []
    return table


def test_every_route_has_a_rule() -> None:
    missing = [
        name
        for name, rules in route_rules().items()
        if not rules
        and name.split(" ", 1)[1] not in INFRASTRUCTURE
        and not name.split(" ", 1)[1].startswith("/docs/assets")
    ]
    assert missing == [], f"routes without an access rule: {missing}"


def test_the_check_sees_a_route_without_a_rule() -> None:
    from fastapi import APIRouter

    bare = APIRouter()

    @bare.get("/v1/unguarded")
    async def unguarded() -> None:
        return None

    route = bare.routes[0]
    assert isinstance(route, APIRoute) and rules_of(route.dependant) == []


def test_the_roles_on_each_family() -> None:
    """The table as docs/security.md gives it: which rule guards which family of routes."""
    table = route_rules()
    assert table["POST /v1/requests"] == ["key of role regulator"]
    assert table["GET /v1/requests/{request_id}"] == ["key of role regulator"]
    assert table["PUT /v1/professionals/{rpps}"] == ["key of role directory, regulator", "key of role directory"]
    assert table["GET /v1/professionals/{rpps}"] == ["key of role directory, regulator"]
    assert table["POST /v1/api-clients"] == ["key of role admin"]
    assert table["DELETE /v1/api-clients/{client_id}"] == ["key of role admin"]
    assert table["GET /fhir/Slot"] == ["key of role platform"]
    assert table["GET /fhir/metadata"][0].startswith("public:")
    assert table["PUT /v1/ops/accounts/{email}"] == ["an admin key, or a sas_admin's operations session"]
    assert table["GET /internal/v1/requests/{request_id}/contact"][0].startswith("INTERNAL_API_KEY")
    assert table["GET /o/{token}"][0].startswith("public: the offer link")
