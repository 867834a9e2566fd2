"""The deployment, read (no container engine here): the compose file is valid against the
Compose specification and runs what the routing table routes to, with no secret defaulted."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from services import routing
from services.common.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8")))


def test_the_compose_file_follows_the_compose_specification() -> None:
    tool = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
    checked = subprocess.run(
        [tool, "--builtin-schema", "vendor.compose-spec", str(DEPLOY / "compose.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_routed_service_runs_with_its_own_command_and_the_gateway_routes_by_the_table() -> None:
    services = compose()["services"]
    for name in routing.ROUTERS:
        assert services[name]["command"] == [f"sas-{name}"]
    gateway = services["gateway"]
    assert "./nginx.conf:/etc/nginx/conf.d/default.conf:ro" in gateway["volumes"]
    assert set(gateway["depends_on"]) == set(routing.ROUTERS)


def test_only_the_gateway_is_believed_about_the_client_and_no_secret_has_a_default() -> None:
    file = compose()
    services = file["services"]
    gateway_ip = services["gateway"]["networks"]["backend"]["ipv4_address"]
    environment = services["intake"]["environment"]
    assert environment["TRUSTED_PROXIES"] == gateway_ip
    text = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    assert "change-me" not in text
    required = ("POSTGRES_PASSWORD", "ADMIN_API_KEYS", "INTERNAL_API_KEY", "SECRET_KEY", "DATA_KEYS")
    signing = ("CALLBACK_SECRET", "WEBHOOK_SECRET", "SMS_WEBHOOK_SECRET")  # never an empty signing key
    for secret in required + signing:
        assert f"${{{secret}:?" in text, secret
    assert set(Settings().missing_secrets(("intake", "notifier"))) <= {*required, *signing}


def test_kafka_keeps_its_log_on_the_volume_long_enough_to_rebuild_the_read_model() -> None:
    kafka = compose()["services"]["kafka"]
    assert kafka["environment"]["KAFKA_LOG_DIRS"] == "/var/lib/kafka/data"
    assert "kafka-data:/var/lib/kafka/data" in kafka["volumes"]
    assert int(kafka["environment"]["KAFKA_LOG_RETENTION_HOURS"]) >= 400 * 24  # the longest period of indicators


def test_the_service_refuses_to_start_without_the_secrets_it_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside `make run`'s trial mode (a database and a broker given), before anything starts."""
    from services.main import main

    secrets = ("SECRET_KEY", "DATA_KEYS", "CALLBACK_SECRET", "WEBHOOK_SECRET", "SMS_WEBHOOK_SECRET", "INTERNAL_API_KEY")
    for name in secrets:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@/nowhere?host=/nonexistent")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("REGULATOR_API_KEYS", "k")
    missing = "missing secrets: set SECRET_KEY, DATA_KEYS, CALLBACK_SECRET, INTERNAL_API_KEY"
    with pytest.raises(SystemExit, match=missing):
        main(["--service", "intake"])
    monkeypatch.setenv("SMS_WEBHOOK_URL", "https://sms.example.org/send")
    with pytest.raises(SystemExit, match="WEBHOOK_SECRET, SMS_WEBHOOK_SECRET"):
        main(["--service", "notifier"])


def test_the_database_roles_script_is_the_one_the_services_run() -> None:
    from services.common import db_roles

    assert (DEPLOY / "database-roles.sql").read_text(encoding="utf-8") == db_roles.script(), (
        "stale: python -m services.common.db_roles > deploy/database-roles.sql"
    )
    for service in db_roles.SERVICES:  # no role reaches another's schema, and none may rewrite the trail
        statements = " ".join(db_roles.DatabaseRoles("postgresql://o@h/sas", b"k").statements(service))
        assert "GRANT SELECT, INSERT ON access.audit_entry" in statements
        assert "UPDATE ON access.audit_entry" not in statements and "DELETE ON access.audit_entry" not in statements
        others = set(db_roles.SERVICES) - {service}
        assert not any(f'"{other}"' in statements for other in others)
