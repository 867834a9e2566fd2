"""The HTTP port, taken once by the process that `sas-run` starts, before anything else.

uvicorn's worker mode binds in the parent and lets each worker call `listen()`: a bound socket
that is not listening yet does not stop another process binding the same port, so two
`sas-run` started on one port could both come up, one of them failing or the kernel handing
connections to whichever listened. Here the parent binds *and listens* at once (no
SO_REUSEPORT), then hands that one socket to its workers: a port already held by anything else
stops the start with a clear message, before the database and the broker are started.
"""

from __future__ import annotations

import socket


class PortTaken(SystemExit):
    """The port is held by another process: `sas-run` stops with this message."""


def listening_socket(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A TCP socket bound to (host, port) and listening, inheritable by the worker processes."""
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as error:
        raise PortTaken(f"cannot listen on {host}:{port}: HOST does not resolve ({error})") from error
    sock = socket.socket(family, kind, protocol)
    try:
        # a restart may take the port again while old connections linger in TIME_WAIT; on Linux
        # this never lets a second listener in (that would be SO_REUSEPORT, never set here)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError as error:
        sock.close()
        raise PortTaken(
            f"cannot listen on {host}:{port}: {error.strerror or error}. Another process holds that port "
            "(another sas-run or any other program): stop it, or set PORT (and HOST) to a free one."
        ) from error
    sock.set_inheritable(True)
    return sock
