"""The clients a process verified lately, so that each call with a known key is not looked up
again (three round trips and an ORM load per call, measured in issue 24).

Kept only while the process listens on `access_clients` (through its one listening connection,
services/common/db_listener.py): the trigger of access_0005 notifies at the commit of any change
of a client (revoked, rotated, created), and every process listening forgets everything it kept.
So a revocation reaches every process within the time a notification takes (milliseconds; at
once in the process that revoked). When the listening connection is lost nothing is kept, every
call is looked up, until it listens again. An entry is also kept at most `TOUCH_EVERY` (a
minute): then the call is looked up, which records the client's `last_used_at` as before — and
bounds how long a change could go unheard if a connection died without the process noticing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from services.common.access.roles import Client
from services.common.db import Database
from services.common.db_listener import DatabaseListener

log = structlog.get_logger(__name__)
CHANNEL = "access_clients"


@dataclass(frozen=True)
class Kept:
    value: Any
    at: datetime  # when it was read from the database


class KnownClients:
    def __init__(
        self, db: Database, keep_for: timedelta, limit: int = 10_000, listener: DatabaseListener | None = None
    ) -> None:
        """`listener`: the process's listening connection (one of its own when not given)."""
        self.db, self.keep_for, self.limit = db, keep_for, limit
        self.listener = listener or DatabaseListener(db)
        self._own_listener = listener is None
        self._kept: dict[tuple[str, str], Kept] = {}  # ("key", key hash) → Client; ("secrets", client id) → …
        self._generation = 0  # moved on by every change heard: a read that began before it is not kept
        self._asked = False  # whether the listener was asked for our channel

    @property
    def listening(self) -> bool:
        return self._asked and self.listener.listening

    async def listen(self) -> None:
        """Ask the listener for client changes, once; never raises (should the database be away,
        the listener keeps trying, and calls are looked up meanwhile)."""
        if self._asked:
            return
        self._asked = True
        self.listener.when_lost(self._lost)
        self.listener.when_listening(self.forget)  # what changed while nobody listened
        try:
            await self.listener.listen(CHANNEL, lambda _: self.forget())
        except Exception as error:  # the database away (any wrapping)
            log.warning("not keeping verified keys: cannot listen for client changes", error=type(error).__name__)

    def _lost(self) -> None:
        """The server ended the listening connection: keep nothing until listening again."""
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
        if self._own_listener:
            await self.listener.close()
        self.forget()
