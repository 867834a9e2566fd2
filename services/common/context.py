"""What every service's wiring needs from the process hosting it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request

from schemas.topics import Topics
from services.common.clock import Clock
from services.common.db import Database, service_engine
from services.common.http import bearer_key_checker
from services.common.settings import Settings


@dataclass
class Context:
    settings: Settings
    database_url: str
    topics: Topics
    clock: Clock
    secret: bytes

    def database(self, schema: str) -> Database:
        return Database(service_engine(self.database_url, schema), schema=schema, source=f"/sas-orientation/{schema}")

    @property
    def require_regulator_key(self) -> Callable[[Request], None]:
        return bearer_key_checker(lambda: self.settings.api_keys)

    @property
    def require_platform_key(self) -> Callable[[Request], None]:
        """The national SAS platform's keys (FHIR_API_KEYS), apart from the regulators'."""
        return bearer_key_checker(lambda: self.settings.fhir_keys)

    @property
    def require_internal_key(self) -> Callable[[Request], None]:
        return bearer_key_checker(lambda: (self.settings.internal_api_key,) if self.settings.internal_api_key else ())
