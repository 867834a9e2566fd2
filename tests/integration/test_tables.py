"""Every service declares its tables as SQLModel models, and the migrations make them: the two
must agree (tables, columns, types, nullability), or the code reads a column the database does
not have. Compared with Alembic's autogenerate on a freshly migrated schema per service."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from services.common import tables as common_tables
from services.intake import models as intake_models
from services.matcher.adapters import models as matcher_models
from services.notifier import models as notifier_models
from services.ops.adapters import models as ops_models
from tests.integration.helpers import migrated

DECLARED: dict[str, ModuleType] = {
    "intake": intake_models,
    "matcher": matcher_models,
    "notifier": notifier_models,
    "ops": ops_models,
}


def declared(module: ModuleType) -> MetaData:
    """The tables the service's models module declares, with the outbox and inbox every service has."""
    metadata = MetaData()
    for found in (module, common_tables):
        for value in vars(found).values():
            if isinstance(value, type) and issubclass(value, SQLModel) and value.__module__ == found.__name__:
                table = getattr(value, "__table__", None)
                if table is not None:
                    table.to_metadata(metadata)
    return metadata


def differences(conn: Connection, metadata: MetaData) -> list[Any]:
    names = set(metadata.tables)

    def compared(obj: Any, name: str | None, type_: str, reflected: bool, _: Any) -> bool:
        if type_ == "table":
            return name in names  # other tables (broker-loss bookkeeping, alembic's) are not models
        return type_ == "column"  # indexes and constraints are the migrations' business

    context = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": compared})
    return list(compare_metadata(context, metadata))


def summary(difference: Any) -> str:
    """One line per difference: what, where, and the two types for a type change."""
    if isinstance(difference, list):  # column changes come as lists of tuples
        return "; ".join(summary(d) for d in difference)
    what, *rest = difference
    if what == "modify_type":
        _, table, column, _, found, wanted = rest
        return f"{table}.{column}: the database has {found}, the model says {wanted}"
    if what == "modify_nullable":
        _, table, column, _, found, wanted = rest
        return f"{table}.{column}: nullable {found} in the database, {wanted} in the model"
    if what in ("add_column", "remove_column"):
        _, table, column = rest
        return f"{what} {table}.{column.name}"
    return f"{what} {getattr(rest[-1], 'name', rest[-1])}"


@pytest.mark.parametrize("service", sorted(DECLARED))
async def test_the_models_match_the_migrated_tables(database_url: str, service: str) -> None:
    db = await migrated(database_url, service)
    metadata = declared(DECLARED[service])
    try:
        async with db.engine.connect() as conn:
            found = await conn.run_sync(differences, metadata)
    finally:
        await db.dispose()
    assert len(metadata.tables) >= 4
    assert [summary(d) for d in found] == []


async def test_the_shared_schemas_models_match_its_migrated_tables(database_url: str) -> None:
    """People's accounts (services/common/access/models.py). The clients' table is left out: its
    model declares `str` (varchar) for the migration's `text` columns, the same in PostgreSQL."""
    from services.common.access import models as access_models
    from services.common.db import Database, service_engine

    await (await migrated(database_url, "ops")).dispose()  # the shared schema, migrated on the way
    db = Database(service_engine(database_url, "access"), schema="access", source="/test/access")
    metadata = MetaData()
    for value in vars(access_models).values():
        if isinstance(value, type) and issubclass(value, SQLModel) and value.__module__ == access_models.__name__:
            table = getattr(value, "__table__", None)
            if table is not None and table.name != "api_client":
                table.to_metadata(metadata)
    try:
        async with db.engine.connect() as conn:
            found = await conn.run_sync(differences, metadata)
    finally:
        await db.dispose()
    assert set(metadata.tables) == {"account", "account_session", "login_attempt"}
    assert [summary(d) for d in found] == []
