"""The one routing table: every public path reaches the service that owns it, the gateway's
configuration is generated from it, and any process documents the whole API."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from services import routing
from services.common.http import describe_problems

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


@pytest.mark.parametrize(
    ("path", "service"),
    [
        ("/v1/requests", "intake"),
        ("/v1/requests/R-1/cancel", "intake"),
        ("/v1/territories/cpts-1/rpps-import", "matcher"),
        ("/v1/professionals/10000000001/availability", "matcher"),
        ("/v1/slots", "matcher"),
        ("/v1/motives", "matcher"),
        ("/fhir/Slot", "matcher"),
        ("/fhir/metadata", "matcher"),
        ("/o/some-token/accept", "notifier"),
        ("/ops", "ops"),
        ("/ops/login", "ops"),
        ("/v1/indicators/export.csv", "ops"),
        ("/v1/ops/accounts/a@b.fr", "ops"),
        ("/healthz", "intake"),
        ("/docs", "intake"),
        ("/openapi.json", "intake"),
        ("/healthz/ops", "ops"),
        ("/metrics/matcher", "matcher"),
        ("/internal/v1/requests/R-1/contact", None),
        ("/", "intake"),  # the front door
        ("/mailbox", None),  # the trial mailbox: make run's machine only
        ("/mailbox/x", None),
        ("/v2/anything", None),
    ],
)
def test_each_public_path_goes_to_its_owner(path: str, service: str | None) -> None:
    assert routing.owner(path) == service


def test_every_route_of_every_service_is_routed_to_that_service() -> None:
    for service, routers in routing.ROUTERS.items():
        for router in routers:
            for route in router.routes:
                assert isinstance(route, APIRoute)
                concrete = re.sub(r"\{[^}]+\}", "x", route.path)
                expected = None if concrete.startswith(("/internal/", "/mailbox")) else service
                assert routing.owner(concrete) == expected, (service, route.path)


def test_the_gateway_configuration_is_generated_from_the_table() -> None:
    written = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
    assert written == routing.nginx_conf(), "run: python -m services.routing > deploy/nginx.conf"
    for prefix, service in routing.table().items():
        assert f"location = {prefix} {{ proxy_pass http://{service}:8000; }}" in written
    assert "location /mailbox { return 404; }" in written  # never deployed


def test_a_path_claimed_by_two_services_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(routing.ROUTERS, "intake", [*routing.ROUTERS["intake"], *routing.ROUTERS["matcher"]])
    with pytest.raises(ValueError, match="served by both"):
        routing.table()


def test_a_process_serving_one_service_documents_them_all() -> None:
    app = FastAPI()
    for router in routing.ROUTERS["intake"]:
        app.include_router(router)
    others = [r for r in routing.documented_routers() if r not in routing.ROUTERS["intake"]]
    describe_problems(app, others)
    paths = set(app.openapi()["paths"])
    assert {"/v1/requests", "/v1/slots/{slot_id}", "/v1/indicators", "/v1/ops/accounts/{email}"} <= paths
    assert not any(p.startswith(("/internal", "/fhir", "/o/", "/ops")) for p in paths)  # not in the public document


def test_the_gateway_logs_no_link_secret() -> None:
    """The gateway's access log shows `/o/…` and `/p/…`, never the token, nor any query string."""
    conf = routing.nginx_conf()
    formats = [line for line in conf.splitlines() if line.startswith("log_format")]
    assert formats and "$request_uri" not in formats[0] and "$request " not in formats[0]
    assert "access_log /dev/stdout sas;" in conf
    mapping = re.search(r'"~\^/\((\w)\|(\w)\)/\[\^/\?\]\+', conf)
    assert mapping and set(mapping.groups()) == {"o", "p"}


def test_every_json_route_of_the_contract_says_what_it_answers() -> None:
    """A route in the OpenAPI document that answers JSON declares a response model: the
    document then describes the body, and the fuzzer checks every answer against it."""
    from fastapi.routing import APIRoute
    from pydantic import BaseModel
    from starlette.responses import Response

    untyped = []
    for routers in routing.ROUTERS.values():
        for router in routers:
            for route in router.routes:
                if not isinstance(route, APIRoute) or not route.include_in_schema or route.status_code == 204:
                    continue
                answered_by = getattr(route.response_class, "value", route.response_class)  # a default placeholder
                if (
                    isinstance(answered_by, type)
                    and issubclass(answered_by, Response)
                    and answered_by.media_type != "application/json"
                ):
                    continue  # a page, a CSV: not JSON
                model = route.response_model
                if not (isinstance(model, type) and issubclass(model, BaseModel)):
                    untyped.append(f"{sorted(route.methods)} {route.path}")
    assert untyped == []
