"""Every setting of every service, read once from the environment (documented in docs/settings.md)."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.outbound import OutboundPolicy


class Settings(BaseSettings):
    """Typed settings; the environment variable is the field name in upper case."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    # Where things run. Unset URLs mean "start the embedded part".
    database_url: str | None = None
    kafka_bootstrap_servers: str | None = None
    port: int = 8000
    workers: int = Field(default=0, ge=0, le=32, description="processes hosting the services; 0: one per CPU, up to 4")
    host: str = "127.0.0.1"
    data_dir: Path = Path(".data")
    public_base_url: str | None = None

    # Security.
    regulator_api_keys: str = ""  # regulator clients: `key` or `organisation:key`, comma-separated
    admin_api_keys: str = ""  # admin clients (comma-separated)
    fhir_api_keys: str = ""  # the national SAS platform's keys for /fhir (comma-separated)
    outbound_allowed_networks: str = Field(
        default="",
        description="comma-separated CIDR a callback or webhook may reach though not public (127.0.0.0/8: one machine)",
    )
    api_rate_limit: str = Field(default="6000/minute", description="calls of one API client (`limits` notation)")
    login_rate_limit: str = Field(default="30/minute", description="login attempts from one client address")
    link_request_rate_limit: str = Field(
        default="10/hour", description="'send me my link' asked from one client address"
    )
    page_rate_limit: str = Field(default="300/minute", description="offer and personal pages from one client address")
    internal_api_key: str = ""
    secret_key: str = ""
    database_roles: bool = Field(
        default=True,
        description="DATABASE_URL's user creates a role per service, and each service connects as its own "
        "(services/common/db_roles.py); off: DATABASE_URL is used as it is",
    )
    # Fernet keys, comma-separated, the first encrypting: the patient's contact at rest and the
    # per-request keys of the data sealed in events (services/common/sealing.py). `sas-data-key` makes one.
    data_keys: str = ""
    ops_admin_email: str | None = None
    ops_admin_password: str | None = None
    # `make run`'s trial: a regulator's account for the console, of the demo key's organisation
    # (set by services/main.py when no database is given; never in a deployment)
    trial_regulator: tuple[str, str, str] | None = Field(default=None, exclude=True)

    # E-mail: printed and kept under data_dir/mail when SMTP_HOST is unset.
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_tls: bool = False  # implicit TLS (port 465)
    mail_from: str = "SAS orientation <sas-orientation@localhost>"

    # SMS through a provider's JSON webhook; booking software webhooks; regulator callbacks.
    sms_webhook_url: str | None = None
    sms_webhook_secret: str = ""
    webhook_secret: str = ""
    callback_secret: str = ""
    reminder_minutes: float = 5.0  # remind a professional this long before an offer lapses

    # Kafka tuning. The embedded broker answers a consumer's waiting fetch only when the wait
    # times out (measured: 300–500 ms per hop with the Kafka default of 500 ms), so the wait is
    # short there, and consumers rest when idle (consumer_rest.py); the Kafka default against a
    # real cluster.
    topic_prefix: str = "sas."
    topic_partitions: int = 6
    topic_replication_factor: int = Field(
        default=1, ge=1, le=10, description="copies of each topic the brokers keep (3 on a three-broker cluster)"
    )
    kafka_fetch_max_wait_ms: int | None = None
    kafka_session_timeout_ms: int | None = None
    kafka_heartbeat_interval_ms: int | None = None
    kafka_enable_idempotence: bool = False
    consumer_max_attempts: int = 5
    consumer_batch: int = Field(default=200, ge=1, le=10_000, description="events handled in one transaction at most")
    # FastStream sleeps this long again after a look that found nothing: keep it short
    consumer_batch_wait_ms: int = Field(default=5, ge=1, le=1000)
    consumer_rest_after_ms: int | None = Field(
        default=None,
        ge=0,
        le=600_000,
        description="a consumer that found nothing this long stops fetching until an event is published "
        "(services/common/consumer_rest.py); 0: never. Unset: 1000 on the embedded broker, 0 against Kafka",
    )
    consumer_look_seconds: float = Field(
        default=5.0, gt=0, le=300, description="a resting consumer fetches anyway this often"
    )

    # Behaviour.
    demo_data: bool = True
    offer_timeout_minutes: float = 15.0
    lead_time_minutes: float = 30.0
    # the pumps and sweeps are woken when there is work; these rounds are the safety net (retries, time passing)
    sweep_interval_seconds: float = Field(default=5.0, gt=0, le=3600)
    relay_interval_seconds: float = Field(default=5.0, gt=0, le=3600)
    broker_check_seconds: float = Field(default=2.0, gt=0, le=60, description="how often the broker's log is checked")
    replay_margin_seconds: float = Field(
        default=300, ge=0, description="after a broker loss, events published this long before it are replayed too"
    )
    event_retention_hours: float = Field(
        default=168, gt=0, description="published outbox rows and handled event ids are kept this long"
    )
    contact_retention_after_end_hours: float = Field(
        default=2,
        ge=0,
        le=720,
        description="a request that ended without an appointment: its patient contact is erased this long after "
        "(after an appointment: at the end of the day after it, when its page stops showing it)",
    )
    patient_data_retention_days: float = Field(
        default=7,
        ge=4,  # never before an appointment (at most 48 h after the request) and its page's day after are over
        le=3650,
        description="the patient's details (exact age, sex, coordinates, red flags, treating doctor) are erased "
        "this long after the request was received, in every service; commune and age band stay",
    )
    retention_sweep_seconds: float = Field(default=300, gt=0, le=86_400, description="how often retention runs")
    reconcile_seconds: float = Field(
        default=60, gt=0, description="how often each service looks for requests stuck on its side"
    )
    trusted_proxies: str = Field(
        default="",
        description="comma-separated addresses (or networks) of the proxies whose X-Forwarded-For is believed",
    )
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, le=1_073_741_824, description="larger request bodies are refused with 413"
    )
    max_upload_bytes: int = Field(
        default=4 * 1024**3, ge=1024, description="a directory file uploaded for import may be this large"
    )
    log_format: str = Field(default="auto", description="auto, console or json")
    log_level: str = "INFO"

    # Where the notifier asks the intake for a patient's contact when it runs on its own.
    intake_url: str | None = None
    # Where the operations service asks the matcher to pause a professional when it runs on its own.
    matcher_url: str | None = None

    def missing_secrets(self, services: tuple[str, ...]) -> list[str]:
        """The secrets these services need and were not given: outside `make run`'s trial mode
        the service refuses to start without them (it never signs with an empty secret)."""
        needed = {"SECRET_KEY": self.secret_key}
        if {"intake", "matcher", "notifier"} & set(services):
            needed["DATA_KEYS"] = self.data_keys  # they seal, keep or open patient data
        if "intake" in services and self.regulator_api_keys.strip():
            needed["CALLBACK_SECRET"] = self.callback_secret  # the environment's regulators' callbacks
        if "notifier" in services:
            needed["WEBHOOK_SECRET"] = self.webhook_secret
            if self.sms_webhook_url:
                needed["SMS_WEBHOOK_SECRET"] = self.sms_webhook_secret
        if services != ("intake", "matcher", "notifier", "ops"):
            needed["INTERNAL_API_KEY"] = self.internal_api_key  # services apart ask each other
        return [name for name, value in needed.items() if not value.strip()]

    @cached_property
    def outbound(self) -> OutboundPolicy:
        """Where callbacks and webhooks may go (OUTBOUND_ALLOWED_NETWORKS; services/common/outbound.py)."""
        return OutboundPolicy.from_setting(self.outbound_allowed_networks)

    @property
    def fhir_keys(self) -> tuple[str, ...]:
        return tuple(k.strip() for k in self.fhir_api_keys.split(",") if k.strip())

    @property
    def fetch_max_wait_ms(self) -> int:
        if self.kafka_fetch_max_wait_ms is not None:
            return self.kafka_fetch_max_wait_ms
        return 500 if self.kafka_bootstrap_servers else 10

    @property
    def rest_after_ms(self) -> int:
        if self.consumer_rest_after_ms is not None:
            return self.consumer_rest_after_ms
        return 0 if self.kafka_bootstrap_servers else 1000

    @property
    def session_timeout_ms(self) -> int:
        """Group joins take about half of it on the embedded broker: short there."""
        if self.kafka_session_timeout_ms is not None:
            return self.kafka_session_timeout_ms
        return 10_000 if self.kafka_bootstrap_servers else 3_000

    @property
    def heartbeat_interval_ms(self) -> int:
        if self.kafka_heartbeat_interval_ms is not None:
            return self.kafka_heartbeat_interval_ms
        return self.session_timeout_ms // 3  # Kafka's advice: at most a third of the session

    @property
    def worker_count(self) -> int:
        if self.workers:
            return self.workers
        return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))

    @property
    def base_url(self) -> str:
        return (self.public_base_url or f"http://{self.host}:{self.port}").rstrip("/")
