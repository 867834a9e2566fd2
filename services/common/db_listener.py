"""One connection per process that LISTENs to PostgreSQL's notifications, for everything in it.

PostgreSQL wakes every connection that listens in a database at each commit that notifies — on
any channel, not only the ones it listens to — and each wake costs that backend a transaction
to read the notification queue. With a listening connection per relay, per index and per key
cache (six per process), a busy service made PostgreSQL run about seventy such hidden
transactions per request (measured in issue 24: every listening backend's transaction counter
moved at each notifying commit). So a process listens on one connection, and what waits for a
notification registers a callback here.

When the server ends the connection (a restart, a failover) everyone registered is told at once
(`when_lost`: a cache keeps nothing, an index is to be reloaded), the connection is opened again
in the background, and everyone is told once it listens again (`when_listening`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import asyncpg
import structlog

from services.common.db import Database

log = structlog.get_logger(__name__)

Notified = Callable[[str], None]  # called with the notification's payload


class DatabaseListener:
    def __init__(self, db: Database, retry_seconds: float = 0.5, retry_max_seconds: float = 5.0) -> None:
        """`db`: any schema of the database (LISTEN is database-wide); the connection is its own,
        out of the pool."""
        self.db = db
        self.retry_seconds, self.retry_max_seconds = retry_seconds, retry_max_seconds
        self._callbacks: dict[str, list[Notified]] = defaultdict(list)
        self._on_lost: list[Callable[[], None]] = []
        self._on_listening: list[Callable[[], None]] = []
        self._connection: asyncpg.Connection | None = None
        self._listened: set[str] = set()  # the channels the open connection listens on
        self._connecting = asyncio.Lock()
        self._reconnecting: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def listening(self) -> bool:
        return self._connection is not None and not self._connection.is_closed()

    def when_lost(self, callback: Callable[[], None]) -> None:
        """Called when the connection is lost: notifications may be missed until `when_listening`."""
        self._on_lost.append(callback)

    def when_listening(self, callback: Callable[[], None]) -> None:
        """Called each time the connection listens again after a loss (not at the first start)."""
        self._on_listening.append(callback)

    async def listen(self, channel: str, callback: Notified) -> None:
        """Call `callback(payload)` at every notification on `channel`, from now on. Connects if
        not connected yet; should the database be away, raises — and keeps trying in the
        background, so that the callback is called once it is back."""
        self._callbacks[channel].append(callback)
        try:
            await self._connect()
        except Exception:
            self._reconnect_later()
            raise

    async def close(self) -> None:
        self._closed = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnecting
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            connection.remove_termination_listener(self._terminated)  # closed on purpose
            with contextlib.suppress(Exception):
                await connection.close()

    async def _connect(self) -> bool:
        """Listen on every channel registered, opening the connection first if it is not open;
        True when it was opened now."""
        async with self._connecting:
            if self._closed:
                return False
            fresh = self._connection is None or self._connection.is_closed()
            connection = await self.db.own_connection() if fresh else self._connection
            assert connection is not None
            if fresh:
                self._listened = set()
            try:
                for channel in [c for c in self._callbacks if c not in self._listened]:
                    await connection.add_listener(channel, self._dispatch)
                    self._listened.add(channel)
            except BaseException:
                if fresh:
                    connection.terminate()  # out of the pool: nobody else would close it
                raise
            if fresh:
                connection.add_termination_listener(self._terminated)
                self._connection = connection
            return fresh

    def _dispatch(self, _connection: Any, _pid: int, channel: str, payload: str) -> None:
        for callback in self._callbacks.get(channel, ()):
            try:
                callback(payload)
            except Exception:  # one listener's fault must not keep the others from hearing
                log.exception("a notification's callback failed", channel=channel)

    def _terminated(self, connection: object) -> None:
        """The server ended the connection: tell everyone, and listen again as soon as possible.
        (Told a little after the fact: a connection opened meanwhile is left alone.)"""
        if self._connection is not None and self._connection is not connection:
            return
        self._connection = None
        log.warning("listening connection lost: listening again")
        for callback in self._on_lost:
            callback()
        self._reconnect_later()

    def _reconnect_later(self) -> None:
        if self._closed or (self._reconnecting is not None and not self._reconnecting.done()):
            return
        self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect(), name="db-listener")

    async def _reconnect(self) -> None:
        wait = self.retry_seconds
        while not self._closed:
            await asyncio.sleep(wait)
            try:
                if await self._connect():
                    log.info("listening again")
                    for callback in self._on_listening:
                        callback()
                return
            except Exception as error:  # the database still away
                log.warning("cannot listen yet", error=type(error).__name__)
                wait = min(self.retry_max_seconds, wait * 2)
