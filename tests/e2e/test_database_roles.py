"""Least privilege in the database (services/common/db_roles.py): each service connects as its
own role, owns its own schema, and reaches nothing else but what its work needs in the shared one."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from services.common.db import Database
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e


def db_of(stack: Stack, service: str) -> Database:
    return next(p.db for p in stack.runtime.parts if p.name == service)


async def refused(db: Database, statement: str) -> bool:
    try:
        async with db.transaction() as tx:
            await tx.session.execute(text(statement))
    except Exception as error:
        if "permission denied" in str(error):
            return True
        raise
    return False


async def test_each_service_is_its_own_role_owning_its_own_schema(stack: Stack) -> None:
    database = make_url(stack.database_url).database
    for part in stack.runtime.parts:
        async with part.db.engine.connect() as conn:
            me = (await conn.execute(text("SELECT current_user"))).scalar_one()
            owner = await conn.execute(
                text("SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = :s"), {"s": part.name}
            )
            tables = await conn.execute(
                text("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = :s"), {"s": part.name}
            )
            superuser = await conn.execute(
                text("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user")
            )
        assert me == f"{database}_{part.name}" and owner.scalar_one() == me
        assert set(tables.scalars()) == {me}
        assert superuser.scalar_one() is False


@pytest.mark.parametrize(
    ("service", "statement"),
    [
        ("intake", "SELECT * FROM matcher.search"),
        ("intake", "SELECT * FROM notifier.offer"),
        ("intake", "SELECT * FROM ops.ops_request"),
        (
            "intake",
            "INSERT INTO access.account (email, password_hash, role, organisation, updated_at) "
            "VALUES ('x@y.fr', 'h', 'regulator', 'o', now())",
        ),  # the console logs in; it makes no account
        ("matcher", "SELECT * FROM access.account"),
        ("notifier", "SELECT * FROM access.account_session"),
        ("matcher", "SELECT * FROM intake.patient_contact"),
        ("matcher", "DELETE FROM access.request_key"),
        ("matcher", "INSERT INTO access.request_key VALUES ('x', 'y', now())"),
        ("notifier", "SELECT * FROM intake.orientation_request"),
        ("notifier", "UPDATE access.request_key SET wrapped_key = 'y'"),
        ("ops", "SELECT * FROM access.request_key"),
        ("ops", "SELECT * FROM notifier.notification"),
        ("ops", "CREATE TABLE access.mine (x int)"),
        ("notifier", "CREATE SCHEMA elsewhere"),
    ],
)
async def test_a_service_cannot_reach_what_is_not_its_own(stack: Stack, service: str, statement: str) -> None:
    assert await refused(db_of(stack, service), statement)


async def test_what_each_needs_in_the_shared_schema_is_granted(stack: Stack) -> None:
    await stack.submit("79191")  # a request key and audit entries exist
    for service in ("matcher", "notifier"):
        assert not await refused(db_of(stack, service), "SELECT count(*) FROM access.request_key")
    for service in ("intake", "matcher", "notifier", "ops"):
        assert not await refused(db_of(stack, service), "SELECT count(*) FROM access.audit_entry")
