"""Least privilege in the database: each service connects as a role of its own, owning its own
schema and nothing else.

The owner of the database (`DATABASE_URL`'s user, who may create roles) provisions them when a
process starts (`DATABASE_ROLES`, on by default): a login role per service — `<database>_intake`,
`<database>_matcher`, `<database>_notifier`, `<database>_ops`, with a password derived from
`SECRET_KEY` — that owns its schema (and so the tables its migrations create); the shared schema
`access` stays the owner's, and each role is granted there only what its service does:

- `audit_entry`: read and append; never update, delete or truncate (the triggers refuse those
  even to the owner);
- `api_client`, `rate_counter`: what authenticating, rate limits and the clients API do;
- `request_key`: the intake makes and destroys request keys; the matcher and the notifier only
  read them;
- `account`, `account_session`, `login_attempt`: the operations service manages people's
  accounts; the intake logs regulators in to their console (sessions and attempts, no account
  written but a stronger hash).

So a flaw in one service's queries cannot read or change another service's tables, nor rewrite
the audit trail. `deploy/database-roles.sql` is the same, written out for a DBA
(`python -m services.common.db_roles > deploy/database-roles.sql`; a test keeps it current).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from services.common.db import Database, asyncpg_url, service_engine

SERVICES = ("intake", "matcher", "notifier", "ops")
ACCESS_GRANTS: dict[str, dict[str, str]] = {  # table → service → privileges
    "audit_entry": {s: "SELECT, INSERT" for s in SERVICES},
    "api_client": {s: "SELECT, INSERT, UPDATE" for s in SERVICES},
    "rate_counter": {s: "SELECT, INSERT, UPDATE, DELETE" for s in SERVICES},
    "request_key": {"intake": "SELECT, INSERT, UPDATE, DELETE", "matcher": "SELECT", "notifier": "SELECT"},
    # people's accounts: the operations service manages them; the intake's console logs its
    # regulators in (a stronger hash at login is an UPDATE)
    "account": {"ops": "SELECT, INSERT, UPDATE", "intake": "SELECT, UPDATE"},
    "account_session": {s: "SELECT, INSERT, UPDATE, DELETE" for s in ("intake", "ops")},
    "login_attempt": {s: "SELECT, INSERT, DELETE" for s in ("intake", "ops")},
    "alembic_version": {s: "SELECT" for s in SERVICES},  # each process checks the schema is current
}


def _identifier(name: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", name.lower())[:50]


@dataclass(frozen=True)
class DatabaseRoles:
    """The services' roles in the database of `owner_url`."""

    owner_url: str
    secret: bytes

    @property
    def database(self) -> str:
        return make_url(asyncpg_url(self.owner_url)).database or "sas"

    def role(self, service: str) -> str:
        return f"{_identifier(self.database)}_{service}"

    def password(self, service: str) -> str:
        return hmac.new(self.secret, f"database-role:{self.role(service)}".encode(), hashlib.sha256).hexdigest()

    def url(self, service: str) -> str:
        """`DATABASE_URL` as the service's own role."""
        url = make_url(self.owner_url).set(username=self.role(service), password=self.password(service))
        return url.render_as_string(hide_password=False)

    async def provision(self, services: Iterable[str], access_migrations: Path) -> None:
        """As the owner: the roles and their schemas (taking over tables made by the owner
        before), the shared schema migrated, and the grants (serialised across processes)."""
        engine = service_engine(self.owner_url, "access", pool_size=1)
        owner = Database(engine, schema="access", source="/sas-orientation/access")
        try:
            await owner.migrate(access_migrations)
            async with owner.engine.begin() as conn:
                await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('database-roles'))"))
                for service in services:
                    for statement in self.statements(service):
                        await conn.execute(text(statement))
        finally:
            await owner.dispose()

    def statements(self, service: str) -> list[str]:
        role, schema = self.role(service), service
        password = self.password(service)
        found = [
            f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN "
            f"CREATE ROLE {role} LOGIN; END IF; END $$",
            f"ALTER ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '{password}'",
            f"GRANT {role} TO CURRENT_USER",  # (PostgreSQL 16+: the owner may then hand it objects)
            f'CREATE SCHEMA IF NOT EXISTS "{schema}" AUTHORIZATION {role}',
            f'ALTER SCHEMA "{schema}" OWNER TO {role}',
            # what the owner made in the schema before the roles existed becomes the role's
            f"""DO $$ DECLARE r record; BEGIN
                FOR r IN SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname = '{schema}' AND c.relkind IN ('r', 'p', 'v', 'm')
                LOOP EXECUTE format('ALTER TABLE "{schema}".%I OWNER TO {role}', r.relname); END LOOP;
                FOR r IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname = '{schema}' AND c.relkind = 'S' AND NOT EXISTS (
                        SELECT FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i'))
                LOOP EXECUTE format('ALTER SEQUENCE "{schema}".%I OWNER TO {role}', r.relname); END LOOP;
                FOR r IN SELECT p.oid::regprocedure AS f FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                    WHERE n.nspname = '{schema}'
                LOOP EXECUTE format('ALTER FUNCTION %s OWNER TO {role}', r.f); END LOOP;
            END $$""",
            f"GRANT USAGE ON SCHEMA access TO {role}",
        ]
        for table, grants in ACCESS_GRANTS.items():
            found.append(f"REVOKE ALL ON access.{table} FROM {role}")
            if service in grants:
                found.append(f"GRANT {grants[service]} ON access.{table} TO {role}")
        return found


def script(database: str = "sas") -> str:
    """The roles of `database` as a SQL script for a DBA (passwords to be set by hand)."""
    roles = DatabaseRoles(f"postgresql://owner@localhost/{database}", b"")
    lines = [
        "-- Generated by `python -m services.common.db_roles`: the roles each service connects as",
        "-- (services/common/db_roles.py). The services run these themselves at start when their",
        "-- DATABASE_URL's user may create roles (DATABASE_ROLES=1, the default); run them by hand",
        "-- otherwise, as the database's owner, after the shared schema `access` was migrated",
        "-- (`sas-clients list` run once as the owner does it), replacing each password; then give",
        "-- each service its own role's URL as DATABASE_URL, with DATABASE_ROLES=0.",
        "",
    ]
    for service in SERVICES:
        lines.append(f"-- {service}")
        for statement in roles.statements(service):
            lines.append(statement.replace(roles.password(service), f"<{service} password>") + ";")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(script(), end="")
