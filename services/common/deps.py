"""FastAPI dependencies the services' routes share, as full-stack-fastapi-template's `api/deps.py`.

Routes are declared at module level and ask for what they need: a key (`RegulatorKey`,
`InternalKey`, `PlatformKey`), the settings, or one of the objects a service registered with
the runtime (`provided(Directory)`). The composition root puts the settings and those objects
on `app.state` (see Runtime.app); a test can build an app with its own.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request, Security

from services.common.http import BEARER, Problem
from services.common.settings import Settings

T = TypeVar("T")


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


def regulator_key(request: Request, settings: SettingsDep, _: Annotated[Any, Security(BEARER)] = None) -> None:
    """The regulators' and the directory's keys (REGULATOR_API_KEYS)."""
    check_bearer(request, settings.api_keys)


def internal_key(request: Request, settings: SettingsDep) -> None:
    """Service to service (INTERNAL_API_KEY): the notifier asking the intake for a contact."""
    check_bearer(request, (settings.internal_api_key,) if settings.internal_api_key else ())


def platform_key(request: Request, settings: SettingsDep) -> None:
    """The national SAS platform's keys for /fhir (FHIR_API_KEYS), apart from the regulators'."""
    check_bearer(request, settings.fhir_keys)


RegulatorKey = Depends(regulator_key)
InternalKey = Depends(internal_key)
PlatformKey = Depends(platform_key)
