"""Only one `sas-run` holds its port: a process whose port is taken stops at start with a clear
message, and the process already serving it goes on answering (issue 24: an intake and a
notifier started on one port both came up, offer links answering 404 at random)."""

from __future__ import annotations

import socket
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from services.common.listening import PortTaken, listening_socket
from tests.integration.helpers import fresh_topics, start_service, wait_healthy


def test_a_port_held_by_another_program_is_refused_with_a_reason() -> None:
    other = socket.socket()
    other.bind(("127.0.0.1", 0))
    other.listen()
    port = other.getsockname()[1]
    try:
        with pytest.raises(PortTaken, match=f"cannot listen on 127.0.0.1:{port}.*Another process holds that port"):
            listening_socket("127.0.0.1", port)
    finally:
        other.close()


def test_our_own_socket_keeps_a_second_start_out() -> None:
    ours = listening_socket("127.0.0.1", 0)
    port = ours.getsockname()[1]
    try:
        assert ours.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 0
        with pytest.raises(PortTaken):
            listening_socket("127.0.0.1", port)
    finally:
        ours.close()
    listening_socket("127.0.0.1", port).close()  # free again once we let it go


def test_a_second_service_on_a_taken_port_stops_and_the_first_keeps_serving(
    database_url: str, kafka_bootstrap: str
) -> None:
    prefix = fresh_topics().prefix
    logs = [Path(tempfile.mkstemp(suffix=".log")[1]) for _ in range(2)]
    intake, port = start_service("intake", database_url, kafka_bootstrap, prefix, logs[0])
    try:
        wait_healthy(port, intake)
        notifier, _ = start_service(
            "notifier", database_url, kafka_bootstrap, prefix, logs[1], PORT=str(port), INTAKE_URL="http://127.0.0.1:9"
        )
        try:
            code = notifier.wait(timeout=30)
        finally:
            notifier.kill()
        assert code != 0
        assert f"cannot listen on 127.0.0.1:{port}" in logs[1].read_text()
        for _ in range(20):  # every connection still reaches the intake
            assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()["checks"].get("intake.database")
    finally:
        intake.terminate()
        intake.wait(timeout=20)


def test_two_services_started_together_on_one_port_leave_one_serving(database_url: str, kafka_bootstrap: str) -> None:
    """The race of the report: both started at once, each with two workers (uvicorn's own mode
    let both parents bind before any worker listened)."""
    prefix = fresh_topics().prefix
    logs = [Path(tempfile.mkstemp(suffix=".log")[1]) for _ in range(2)]
    port = listening_socket("127.0.0.1", 0)
    number = port.getsockname()[1]
    port.close()
    both = {"PORT": str(number), "WORKERS": "2", "INTAKE_URL": "http://127.0.0.1:9"}
    processes = [
        start_service(service, database_url, kafka_bootstrap, prefix, log, **both)[0]
        for service, log in zip(("intake", "notifier"), logs, strict=True)
    ]
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and all(p.poll() is None for p in processes):
            time.sleep(0.2)
        stopped = [i for i, p in enumerate(processes) if p.poll() is not None]
        assert len(stopped) == 1, "exactly one of the two must give up the port"
        assert f"cannot listen on 127.0.0.1:{number}" in logs[stopped[0]].read_text()
        survivor = processes[1 - stopped[0]]
        wait_healthy(number, survivor)
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=20)
