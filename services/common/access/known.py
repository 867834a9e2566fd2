"""The clients a process verified lately, so that each call with a known key is not looked up
again (three round trips and an ORM load per call, measured in issue 24).

Kept only while the process listens on `access_clients`: the trigger of access_0005 notifies at
the commit of any change of a client (revoked, rotated, created), and every process listening
forgets everything it kept. So a revocation reaches every process within the time a
notification takes (milliseconds; at once in the process that revoked). When the listening
connection is lost nothing is kept, every call is looked up, until it listens again. An entry
is also kept at most `TOUCH_EVERY` (a minute): then the call is looked up, which records the
client's `last_used_at` as before — and bounds how long a change could go unheard if a
connection died without the process noticing.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import structlog

from services.common.access.roles import Client
from services.common.db import Database

log = structlog.get_logger(__name__)
CHANNEL = "access_clients"
RELISTEN_SECONDS = 5.0  # how often to try listening again after the connection was lost


@dataclass(frozen=True)
class Kept:
    value: Any
    at: datetime  # when it was read from the database


class KnownClients:
    def __init__(self, db: Database, keep_for: timedelta, limit: int = 10_000) -> None:
        self.db, self.keep_for, self.limit = db, keep_for, limit
        self._kept: dict[tuple[str, str], Kept] = {}  # ("key", key hash) → Client; ("secrets", client id) → …
        self._generation = 0  # moved on by every change heard: a read that began before it is not kept
        self._listener: asyncpg.Connection | None = None
        self._tried_at = -float("inf")

    @property
    def listening(self) -> bool:
        return self._listener is not None and not self._listener.is_closed()

    async def listen(self) -> None:
        """Listen if not listening (tried at most every RELISTEN_SECONDS); never raises."""
        loop = asyncio.get_running_loop()
        if self.listening or loop.time() - self._tried_at < RELISTEN_SECONDS:
            return
        self._tried_at = loop.time()
        connection: asyncpg.Connection | None = None
        try:
            connection = await self.db.own_connection()
            await connection.add_listener(CHANNEL, lambda *_: self.forget())
            connection.add_termination_listener(self._terminated)
        except Exception as error:  # the database away (any wrapping): calls are looked up meanwhile
            log.warning("not keeping verified keys: cannot listen for client changes", error=type(error).__name__)
            if connection is not None:
                connection.terminate()  # taken out of the pool: nobody else would close it
            return
        self.forget()  # what changed while nobody listened
        self._listener = connection

    def _terminated(self, _: object) -> None:
        """The server ended the listening connection: keep nothing until listening again."""
        self._listener = None
        self.forget()
        self.db.connections_lost()

    def forget(self) -> None:
        self._generation += 1
        self._kept.clear()

    def generation(self) -> int:
        return self._generation

    def get(self, kind: str, key: str, now: datetime) -> Any | None:
        found = self._kept.get((kind, key)) if self.listening else None
        if found is None or now - found.at >= self.keep_for:
            return None
        return found.value

    def keep(self, kind: str, key: str, value: Any, now: datetime, read_in: int) -> None:
        """Keep what was read in generation `read_in`, unless a change was heard since."""
        if not self.listening or read_in != self._generation:
            return
        if len(self._kept) >= self.limit:
            self._kept.clear()
        self._kept[(kind, key)] = Kept(value, now)

    def client(self, hashed: str, now: datetime) -> Client | None:
        found = self.get("key", hashed, now)
        return found if isinstance(found, Client) else None

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.remove_termination_listener(self._terminated)  # closed on purpose
            with contextlib.suppress(Exception):
                await self._listener.close()
        self._listener = None
        self.forget()
