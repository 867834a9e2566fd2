"""What every service's wiring needs from the process hosting it."""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.topics import Topics
from services.common.access.registry import ClientRegistry
from services.common.clock import Clock
from services.common.db import Database, service_engine
from services.common.db_listener import DatabaseListener
from services.common.sealing import Vault
from services.common.settings import Settings


@dataclass
class Context:
    settings: Settings
    database_url: str
    topics: Topics
    clock: Clock
    secret: bytes
    clients: ClientRegistry  # who calls the API; a regulator client's signing secrets
    vault: Vault  # the application's keys and each request's (patient data: services/common/sealing.py)
    role_urls: dict[str, str] = field(default_factory=dict)  # each service's own role (db_roles.py)
    listener: DatabaseListener | None = None  # the process's one listening connection (db_listener.py)

    def database(self, schema: str) -> Database:
        """The service's schema, reached as the service's own role when there is one."""
        return self.schema_database(self.role_urls.get(schema, self.database_url), schema)

    def shared(self, service: str) -> Database:
        """The shared schema `access` reached as `service`'s own role (what db_roles.py grants it
        there), for a part that keeps rows of its own there (people's accounts). Disposed by the
        part (`on_stop`)."""
        url = self.role_urls.get(service, self.database_url)
        return Database(
            service_engine(url, "access", pool_size=2), schema="access", source=f"/sas-orientation/{service}"
        )

    @staticmethod
    def schema_database(database_url: str, schema: str) -> Database:
        return Database(service_engine(database_url, schema), schema=schema, source=f"/sas-orientation/{schema}")
