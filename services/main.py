"""The composition root: settings in, running services out.

`make run` → `sas-run` hosts all four services, starting an embedded PostgreSQL and an
embedded Kafka-protocol broker when DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS are unset.
`sas-intake`, `sas-matcher`, `sas-notifier` and `sas-ops` host one service each against a real broker and
database. Either way the services run in WORKERS processes (by default one per CPU, up to 4)
sharing the HTTP port and one consumer group (see SharedConsumer), so that every core works; the embedded
database and broker belong to the parent process, which stops them last.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import structlog
import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors import Multiprocess

from schemas.topics import Topics
from services import routing
from services.common.access.registry import MIGRATIONS as ACCESS_MIGRATIONS
from services.common.access.registry import ClientRegistry, environment_keys
from services.common.audit import Actor
from services.common.clock import Clock, utcnow
from services.common.context import Context
from services.common.db import Database, database_away, service_engine
from services.common.db_listener import DatabaseListener
from services.common.db_roles import DatabaseRoles
from services.common.embedded import EmbeddedKafka, database
from services.common.listening import listening_socket
from services.common.logging import configure_logging
from services.common.messaging import make_broker
from services.common.parts import ServicePart
from services.common.runtime import Runtime
from services.common.sealing import DataKeys, Vault
from services.common.settings import Settings
from services.intake import entrypoint as intake
from services.intake.service import IntakeService
from services.matcher import entrypoint as matcher
from services.matcher.directory.demo import load_demo
from services.matcher.directory.errors import NotFound
from services.matcher.domain.own_space import Refused
from services.matcher.own_space import ProfessionalSpace
from services.notifier import entrypoint as notifier
from services.notifier.channels import ContactSource, ContactUnavailable, HttpContactSource, ShownContact
from services.ops import entrypoint as ops
from services.ops.professionals import HttpPauses, PauseRefused, ProfessionalPauses

log = structlog.get_logger(__name__)
ALL = ("intake", "matcher", "notifier", "ops")


@dataclass
class InProcessContacts:
    """The notifier asks the intake hosted in the same process."""

    intake: IntakeService

    async def contact(self, request_id: str, rpps: str) -> ShownContact | None:
        try:
            found = await self.intake.contact(request_id, Actor("professional", rpps))
        except Exception as error:
            if database_away(error):
                raise ContactUnavailable(type(error).__name__) from error
            raise
        return ShownContact(found.name, found.phone) if found else None


@dataclass
class InProcessPauses:
    """The operations service pauses professionals through the matcher hosted in the same process."""

    space: ProfessionalSpace

    async def pause(self, rpps: str, last_day: date | None, by: str) -> None:
        try:
            await self.space.pause_of(rpps, last_day, Actor("account", by))
        except Refused as refused:
            raise PauseRefused(refused.text) from None
        except NotFound as missing:
            raise PauseRefused(str(missing)) from None


def _persistent_secret(path: Path) -> str:
    """A random value kept in the data folder, so links and keys survive a restart."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    path.write_text(value)
    path.chmod(0o600)
    return value


def trial_keys(settings: Settings, trial: bool) -> None:
    """Keys not given: demo ones, made once and kept in DATA_DIR, printed; in the trial, the
    console's regulator account too."""
    if not settings.regulator_api_keys.strip():
        key = _persistent_secret(settings.data_dir / "demo_api_key")
        settings.regulator_api_keys = key
        print(f"\n  No REGULATOR_API_KEYS set: demo regulator key  {key}\n", flush=True)
    if trial:
        settings.trial_regulator = trial_regulator(settings)
    if not settings.admin_api_keys.strip() and not settings.database_url:
        key = _persistent_secret(settings.data_dir / "demo_admin_key")
        settings.admin_api_keys = key
        print(f"  No ADMIN_API_KEYS set: trial admin key (clients, directory)  {key}\n", flush=True)
    if not settings.fhir_keys:
        key = _persistent_secret(settings.data_dir / "demo_fhir_key")
        settings.fhir_api_keys = key
        print(f"  No FHIR_API_KEYS set: demo key of the national platform (/fhir)  {key}\n", flush=True)


def trial_regulator(settings: Settings) -> tuple[str, str, str]:
    """`make run`'s regulator account for the console: the first regulator key's organisation
    (a bare key is an organisation of its own), a password kept in DATA_DIR."""
    first = environment_keys(settings.regulator_api_keys, "", "")[0]
    organisation = first.organisation or first.client_id
    password = _persistent_secret(settings.data_dir / "trial_regulator_password")[:20]
    return "regulateur@essai.example.org", password, organisation


def data_keys(settings: Settings) -> str:
    """DATA_KEYS; else (the trial, tests) a key made once and kept in DATA_DIR, like SECRET_KEY's."""
    if settings.data_keys.strip():
        return settings.data_keys
    path = settings.data_dir / "data_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(DataKeys.new_key())
        path.chmod(0o600)
    return path.read_text().strip()


def trial_secrets(settings: Settings) -> None:
    """`make run`'s trial mode: the signing secrets not given are made once and kept in DATA_DIR."""
    for name in ("callback_secret", "webhook_secret", "sms_webhook_secret"):
        if not getattr(settings, name):
            kept = _persistent_secret(settings.data_dir / name)  # URL-safe base64: made plain for whsec_
            setattr(settings, name, "whsec_" + kept.replace("-", "+").replace("_", "/"))
    print(f"  Trial mode: CALLBACK_SECRET (signs the demo key's callbacks)  {settings.callback_secret}", flush=True)


def build_runtime(
    settings: Settings,
    database_url: str,
    bootstrap_servers: str,
    services: Sequence[str] = ALL,
    clock: Clock = utcnow,
) -> tuple[Runtime, Callable[[], object]]:
    """Every part of the requested services, wired; returns the runtime and its start-up hook."""
    secret = settings.secret_key or _persistent_secret(settings.data_dir / "secret_key")
    keys = environment_keys(settings.regulator_api_keys, settings.admin_api_keys, settings.fhir_api_keys)
    roles = DatabaseRoles(database_url, secret.encode()) if settings.database_roles else None
    role_urls = {service: roles.url(service) for service in services} if roles else {}
    # the shared schema as the first hosted service's role (each may do what the registry does there)
    access = Context.schema_database(role_urls.get(services[0], database_url), "access")
    listener = DatabaseListener(access)  # the process's one listening connection (db_listener.py)
    clients = ClientRegistry(access, keys, clock, listener)
    vault = Vault(DataKeys.from_setting(data_keys(settings)))
    topics = Topics(settings.topic_prefix)
    ctx = Context(settings, database_url, topics, clock, secret.encode(), clients, vault, role_urls, listener)
    parts: list[ServicePart] = []
    intake_service = directory = space = None
    if "intake" in services:
        intake_service, part = intake.build(ctx)
        parts.append(part)
    if "matcher" in services:
        built = matcher.build(ctx)
        directory, space = built.directory, built.space
        parts.append(built.part)
    if "notifier" in services:
        contacts: ContactSource
        if intake_service is not None:
            contacts = InProcessContacts(intake_service)
        elif settings.intake_url and settings.internal_api_key:
            contacts = HttpContactSource(settings.intake_url, settings.internal_api_key)
        else:
            raise SystemExit("the notifier alone needs INTAKE_URL and INTERNAL_API_KEY to show patient contacts")
        _, part = notifier.build(ctx, contacts)
        parts.append(part)
    if "ops" in services:
        pauses: ProfessionalPauses
        if space is not None:
            pauses = InProcessPauses(space)
        elif settings.matcher_url and settings.internal_api_key:
            pauses = HttpPauses(settings.matcher_url, settings.internal_api_key)
        else:
            raise SystemExit(
                "the operations service alone needs MATCHER_URL and INTERNAL_API_KEY to pause professionals"
            )
        parts.append(ops.build(ctx, pauses))
    provision = (lambda: roles.provision(services, ACCESS_MIGRATIONS)) if roles else None
    broker = make_broker(settings, bootstrap_servers)
    runtime = Runtime(settings, broker, bootstrap_servers, ctx.topics, parts, clients, provision, listener)

    async def demo() -> None:
        if directory is not None and settings.demo_data:
            await load_demo(directory, clock())

    return runtime, demo


def build_app(
    settings: Settings, database_url: str, bootstrap_servers: str, services: Sequence[str] = ALL, clock: Clock = utcnow
) -> tuple[FastAPI, Runtime]:
    runtime, demo = build_runtime(settings, database_url, bootstrap_servers, services, clock)
    # every process documents the whole public API (a gateway sends /openapi.json to one of them)
    return runtime.app(on_started=demo, documented=routing.documented_routers()), runtime  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def service_database(settings: Settings, schema: str, migrations: Path) -> AsyncIterator[Database]:
    """One service's database, migrated, for a command run apart from the services (an import,
    a rebuild): on DATABASE_URL, or on the embedded server in DATA_DIR."""
    with database(settings) as url:
        db = Database(service_engine(url, schema), schema=schema, source=f"/sas-orientation/{schema}")
        try:
            await db.migrate(migrations)
            yield db
        finally:
            await db.dispose()


@contextlib.contextmanager
def infrastructure(settings: Settings) -> Iterator[tuple[str, str]]:
    """The database URL and Kafka bootstrap servers: configured ones, else embedded ones."""
    with contextlib.ExitStack() as stack:
        database_url = stack.enter_context(database(settings))
        bootstrap = settings.kafka_bootstrap_servers
        if not bootstrap:
            kafka = EmbeddedKafka().start()
            stack.callback(kafka.stop)
            bootstrap = kafka.bootstrap_servers
        yield database_url, bootstrap


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--service", choices=[*ALL, "all"], default="all")
    args = parser.parse_args(argv)
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    services = ALL if args.service == "all" else (args.service,)
    if args.service != "all" and not (settings.database_url and settings.kafka_bootstrap_servers):
        sys.exit(
            f"sas-{args.service} runs against a shared database and broker: "
            "set DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS (or use `make run` for everything at once)"
        )
    trial = not (settings.database_url or settings.kafka_bootstrap_servers)  # `make run` on embedded parts
    missing = settings.missing_secrets(services)
    if missing and not trial:
        sys.exit(f"missing secrets: set {', '.join(missing)} (see docs/security.md)")
    if trial:
        trial_secrets(settings)
    trial_keys(settings, trial)
    # uvicorn re-raises SIGTERM once it has shut down: exit through the `with` below, so that
    # the embedded database and broker are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sock = listening_socket(settings.host, settings.port)  # first: a port held elsewhere stops us here
    with infrastructure(settings) as (database_url, bootstrap):
        base, workers = settings.base_url, settings.worker_count
        if settings.trial_regulator:
            email, password, _ = settings.trial_regulator
            print(
                f"  Open {base}/ to begin: the regulators' console is {base}/r\n"
                f"  Trial regulator  {email}  password {password}\n"
                f"  Trial mailbox    {base}/mailbox  (the e-mails to doctors, kept on this machine)\n",
                flush=True,
            )
        print(
            f"  Front door      {base}/\n"
            f"  Regulator API   {base}/v1/requests   (docs: {base}/docs)\n"
            f"  FHIR (platform) {base}/fhir/metadata\n"
            f"  Health          {base}/healthz\n"
            f"  Kafka           {bootstrap}\n"
            f"  Processes       {workers}\n",
            flush=True,
        )
        if workers == 1:
            app, _ = build_app(settings, database_url, bootstrap, services)
            serve(uvicorn.Config(app, **server_options(settings)), sock)
        else:
            os.environ.update(worker_environment(settings, database_url, bootstrap, services))
            serve(
                uvicorn.Config("services.main:worker_app", factory=True, workers=workers, **server_options(settings)),
                sock,
            )


def serve(config: uvicorn.Config, sock: socket.socket) -> None:
    """uvicorn on the socket this process already listens on: its workers share that one socket
    (services/common/listening.py), none binds the port again."""
    if config.workers > 1:
        Multiprocess(config, sockets=[sock]).run()
        return
    config.load_app()
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    if not server.started:
        sys.exit(3)  # uvicorn's start-up failure: the application did not start (its log says why)


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options: the client's address (the login lock-out counts by it) comes from
    X-Forwarded-For only when the connection is from one of TRUSTED_PROXIES."""
    return {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "access_log": os.environ.get("ACCESS_LOG", "0") == "1",
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": settings.trusted_proxies or "",
    }


def worker_environment(
    settings: Settings, database_url: str, bootstrap: str, services: Sequence[str]
) -> dict[str, str]:
    """What a worker process needs to find the parent's database, broker and keys."""
    env = {
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "REGULATOR_API_KEYS": settings.regulator_api_keys,
        "FHIR_API_KEYS": settings.fhir_api_keys,
        "ADMIN_API_KEYS": settings.admin_api_keys,
        "SECRET_KEY": settings.secret_key or _persistent_secret(settings.data_dir / "secret_key"),
        "CALLBACK_SECRET": settings.callback_secret,
        "DATA_KEYS": data_keys(settings),
        "WEBHOOK_SECRET": settings.webhook_secret,
        "SMS_WEBHOOK_SECRET": settings.sms_webhook_secret,
        "SAS_SERVICES": ",".join(services),
    }
    if not settings.kafka_bootstrap_servers:  # the embedded broker's tuning (see Settings), made explicit
        env["KAFKA_FETCH_MAX_WAIT_MS"] = str(settings.fetch_max_wait_ms)
        env["KAFKA_SESSION_TIMEOUT_MS"] = str(settings.session_timeout_ms)
        env["KAFKA_HEARTBEAT_INTERVAL_MS"] = str(settings.heartbeat_interval_ms)
        env["CONSUMER_REST_AFTER_MS"] = str(settings.rest_after_ms)
    if settings.trial_regulator:
        env["TRIAL_REGULATOR"] = json.dumps(settings.trial_regulator)
    return env


def worker_app() -> FastAPI:
    """One worker process of `sas-run` (uvicorn calls this in each process it starts)."""
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    assert settings.database_url and settings.kafka_bootstrap_servers, "set by the parent process"
    services = tuple(os.environ.get("SAS_SERVICES", ",".join(ALL)).split(","))
    app, _ = build_app(settings, settings.database_url, settings.kafka_bootstrap_servers, services)
    return app


def run_intake() -> None:
    main(["--service", "intake"])


def run_matcher() -> None:
    main(["--service", "matcher"])


def run_notifier() -> None:
    main(["--service", "notifier"])


def run_ops() -> None:
    main(["--service", "ops"])


if __name__ == "__main__":
    main()
