"""PostgreSQL access for one service: its own schema, a unit of work, its migrations.

Each service gets an engine whose connections use `search_path = <its schema>`, so its tables
are declared without a schema and no service can read another's tables by accident.
A `Transaction` commits the state change and the events it causes (outbox rows) together.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError, InterfaceError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlmodel import col

from schemas.events import CloudEvent, EventData
from services.common.clock import utcnow
from services.common.tables import OutboxMessage, ProcessedEvent

MIGRATIONS_ENV = Path(__file__).parent / "migrations"


# The server refused or dropped the connection: it is restarting, failing over, or unreachable.
_AWAY = (
    OSError,  # refused, reset, the socket file gone
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,  # starting up or shutting down
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    InterfaceError,  # SQLAlchemy's: the connection was closed under it
)


def database_away(error: BaseException) -> bool:
    """Whether `error` says the database was not there, rather than anything about the work: the
    work is to be tried again once it is back, never given up on (a restart is not a poison
    message). Follows the explicit causes through SQLAlchemy's wrapping to the driver's error —
    not the implicit context, lest a handler's own error raised while handling one be retried for
    ever."""
    return any(
        isinstance(seen, _AWAY) or (isinstance(seen, DBAPIError) and seen.connection_invalidated)
        for seen in causes(error)
    )


def text_not_storable(error: BaseException) -> bool:
    """Whether the database refused a text value itself (a NUL, an unencodable character): the
    input's fault, though the API's checks should have stopped it before."""
    unstorable = (asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError, UnicodeEncodeError)
    return any(isinstance(seen, unstorable) for seen in causes(error))


def causes(error: BaseException) -> Iterator[BaseException]:
    """`error` and its explicit causes, through SQLAlchemy's wrapping to the driver's error."""
    seen: BaseException | None = error
    while seen is not None:
        yield seen
        seen = seen.__cause__


def asyncpg_url(url: str) -> str:
    """Accept the usual `postgresql://` form and use the asyncpg driver."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError(f"DATABASE_URL must be a postgresql:// URL, got {url.split(':', 1)[0]}://…")


def service_engine(url: str, schema: str, pool_size: int = 5) -> AsyncEngine:
    return create_async_engine(
        asyncpg_url(url),
        pool_size=pool_size,
        # no ping before each use (a round trip per transaction): a connection found dead on use
        # invalidates the pool, and the unit of work is retried by its caller
        pool_pre_ping=False,
        hide_parameters=True,  # an error's message must never carry a patient's name or phone
        connect_args={"server_settings": {"search_path": schema, "application_name": schema}},
    )


@dataclass
class Transaction:
    """One database transaction of one service, with the events to publish when it commits."""

    session: AsyncSession
    source: str
    emitted: list[CloudEvent] = field(default_factory=list)
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    marks: set[str] = field(default_factory=set)  # what its steps note for each other ("done once")

    def emit(self, topic: str, data: EventData, now: datetime | None = None) -> CloudEvent:
        """Record an event in the outbox; it is published only if the transaction commits."""
        event = CloudEvent.wrap(data, source=self.source, time=now or utcnow())
        self.session.add(
            OutboxMessage(
                event_id=uuid.UUID(event.id),
                topic=topic,
                key=event.subject,
                value=event.model_dump(mode="json"),
                created_at=event.time,
            )
        )
        self.emitted.append(event)
        return event

    async def first_time(self, consumer: str, event_id: str) -> bool:
        """Remember that `consumer` handled `event_id`; False if it already had (a redelivery)."""
        result = await self.session.execute(
            insert(ProcessedEvent)
            .values(consumer=consumer, event_id=event_id, processed_at=utcnow())
            .on_conflict_do_nothing()
            .returning(col(ProcessedEvent.event_id))
        )
        return result.first() is not None

    async def first_times(self, consumer: str, event_ids: list[str]) -> set[str]:
        """`first_time` for many events in one statement: the ids not handled before."""
        now = utcnow()
        result = await self.session.execute(
            insert(ProcessedEvent)
            .values([{"consumer": consumer, "event_id": event_id, "processed_at": now} for event_id in event_ids])
            .on_conflict_do_nothing()
            .returning(col(ProcessedEvent.event_id))
        )
        return set(result.scalars().all())


class Database:
    """A service's engine plus the unit of work its use cases run in."""

    def __init__(self, engine: AsyncEngine, schema: str, source: str) -> None:
        self.engine = engine
        self.schema = schema
        self.source = source
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)
        self.on_commit: list[Callable[[], None]] = []
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")  # the same pool
        self._disposing: set[asyncio.Task[None]] = set()

    def connections_lost(self) -> None:
        """A connection of ours saw the server end it (a restart, a failover): the pooled ones are
        dead too. The pool is replaced now, so that the next unit of work — a regulator's request
        just after the restart — opens a live connection instead of failing on a dead one (the
        pool checks nothing on checkout: a round trip per transaction). The old pool's connections
        are dropped without touching their sockets."""
        task = asyncio.get_running_loop().create_task(self.engine.dispose(close=False))
        self._disposing.add(task)
        task.add_done_callback(self._disposing.discard)

    async def statement(self, sql: str, **params: Any) -> list[Any]:
        """One statement on its own, committed as it runs: one round trip where a unit of work
        costs three (BEGIN, the statement, COMMIT) — for single-statement work on a hot path such
        as the rate counters. Returns its rows (none for a statement that returns none). Tried
        twice when the connection was dead (after a database restart the pool's first connection
        is): only for statements that may run twice, as a counter's increment."""
        try:
            return await self._statement(sql, params)
        except Exception as error:
            if not database_away(error):
                raise
            return await self._statement(sql, params)

    async def _statement(self, sql: str, params: dict[str, Any]) -> list[Any]:
        async with self._autocommit.connect() as conn:
            result = await conn.execute(text(sql), params)
            return list(result.all()) if result.returns_rows else []

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with self.sessions() as session, session.begin():
            tx = Transaction(session=session, source=self.source)
            yield tx
        for callback in (self.on_commit if tx.emitted else []) + tx.after_commit:
            callback()

    async def migrate(self, versions: Path) -> None:
        """Create the schema and bring it to the newest migration (serialised across processes)."""
        async with self.engine.connect() as conn:
            # the lock first: two processes creating the same schema at once would collide
            await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"migrate:{self.schema}"})
            exists = await conn.execute(text("SELECT to_regnamespace(:s) IS NOT NULL"), {"s": self.schema})
            if not exists.scalar_one():  # (a service's role may not create schemas: its own is made for it)
                await conn.execute(text(f'CREATE SCHEMA "{self.schema}"'))
            await conn.run_sync(_upgrade, versions)
            await conn.commit()

    async def own_connection(self) -> asyncpg.Connection:
        """An asyncpg connection with the service's search_path, taken out of the pool: for a
        listener or a session lock that must outlive any transaction. The caller closes it."""
        raw = await self.engine.raw_connection()
        connection = raw.driver_connection
        raw.detach()
        assert isinstance(connection, asyncpg.Connection)
        return connection

    @asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[None]:
        """Held by one process at a time across the cluster (a session advisory lock)."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT pg_advisory_lock(hashtext(:k))"), {"k": f"{self.schema}:{name}"})
            await conn.commit()
            try:
                yield
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(hashtext(:k))"), {"k": f"{self.schema}:{name}"})
                await conn.commit()

    async def ping(self) -> bool:
        async with self.engine.connect() as conn:
            return (await conn.execute(text("SELECT 1"))).scalar() == 1

    async def dispose(self) -> None:
        await self.engine.dispose()


def _upgrade(connection: Connection, versions: Path) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_ENV))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(versions))
    config.attributes["connection"] = connection
    command.upgrade(config, "heads")
