"""Who may do what (contract v2, "Clients, roles and scopes"): pure rules, no I/O.

Every API key belongs to a client with one role. A `regulator` belongs to an organisation (a
SAS) and covers départements; a `directory` client writes the directory of its CPTS only; a
`platform` client (the national SAS platform) reaches `/fhir` only; `admin` may do everything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    REGULATOR = "regulator"  # a SAS (service d'accès aux soins) and its regulation software
    DIRECTORY = "directory"  # a CPTS's coordinators' software: its own directory
    PLATFORM = "platform"  # the national SAS platform, over FHIR


@dataclass(frozen=True)
class Client:
    """The caller behind an API key (the key itself is never kept, only its hash)."""

    client_id: str
    name: str
    role: Role
    organisation: str  # a regulator's requests belong to it
    departments: tuple[str, ...] | None = None  # a regulator's; None: every département
    cpts_ids: tuple[str, ...] = ()  # a directory client's CPTS

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    def writes_cpts(self, cpts_id: str | None) -> bool:
        """Whether this client may write (and read in full) the directory of `cpts_id`."""
        if self.is_admin:
            return True
        return self.role == Role.DIRECTORY and cpts_id is not None and cpts_id in self.cpts_ids

    def sees_contact_details(self) -> bool:
        """A professional's e-mail, phone and webhook: never shown to a regulator or the platform."""
        return self.role in (Role.ADMIN, Role.DIRECTORY)

    def reads_indicators_of(self, cpts_id: str, communes: Iterable[str]) -> bool:
        """Indicators of a CPTS: an admin; its own directory client; a regulator whose
        départements hold at least one of its communes (a CPTS on a border serves both SAS)."""
        if self.is_admin:
            return True
        if self.role == Role.DIRECTORY:
            return cpts_id in self.cpts_ids
        if self.role == Role.REGULATOR:
            if self.departments is None:
                return True
            return any(department_of(commune) in self.departments for commune in communes)
        return False


class Forbidden(Exception):
    """A known client asked for what its role or scope does not allow (403, saying what is missing)."""


def department_of(commune_insee: str) -> str:
    """The département of an INSEE commune code: two characters (`79`, `2A`), three overseas (`974`)."""
    return commune_insee[:3] if commune_insee.startswith("97") else commune_insee[:2]


DEPARTMENT = r"^(?:0[1-9]|[1-8][0-9]|9[0-5]|2A|2B|97[1-6])$"


def require(client: Client, roles: Iterable[Role]) -> None:
    """Raises Forbidden unless the client has one of `roles` (admin always has)."""
    allowed = set(roles)
    if client.role not in allowed and not client.is_admin:
        names = " or ".join(sorted(str(r) for r in allowed | {Role.ADMIN}))
        raise Forbidden(f"this route needs the role {names}; this key has the role {client.role}")


def require_cpts(client: Client, cpts_id: str | None) -> None:
    """Raises Forbidden unless the client writes this CPTS's directory, naming it."""
    if client.role not in (Role.ADMIN, Role.DIRECTORY):
        raise Forbidden(
            f"the directory is written by an admin key or its CPTS's directory key; this key has the role {client.role}"
        )
    if not client.writes_cpts(cpts_id):
        if cpts_id is None:
            raise Forbidden("a directory client writes only professionals of its own CPTS: give `cpts_id`")
        raise Forbidden(f"this key does not cover CPTS {cpts_id}")
