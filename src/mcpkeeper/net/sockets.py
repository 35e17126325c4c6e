"""Listening sockets we bind ourselves, before any server starts.

Binding first lets a busy port be reported as a clear error before anything starts,
and lets a Unix socket get its mode *before* it accepts anyone (uvicorn's own ``uds=``
path chmods afterwards).
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

__all__ = ["LOOPBACK", "PortInUseError", "bind_loopback", "bind_tcp", "bind_unix", "free_port"]

LOOPBACK = "127.0.0.1"

_BACKLOG = 128


class PortInUseError(OSError):
    """The requested loopback port is taken by another process."""

    def __init__(self, port: int) -> None:
        super().__init__(errno.EADDRINUSE, f"port {port} on {LOOPBACK} is already in use")
        self.port = port

    def __str__(self) -> str:
        return str(self.args[1])


def _tcp_socket() -> socket.socket:
    """An IPv4 TCP socket that says it is TCP.

    The protocol is named explicitly: asyncio turns on ``TCP_NODELAY`` for accepted
    connections only when the socket says it is TCP (``proto == IPPROTO_TCP``). With the
    default ``proto=0`` Nagle's algorithm meets the client's delayed ACK and every
    keep-alive request waits ~40 ms for nothing.
    """
    return socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)


def bind_loopback(port: int) -> socket.socket:
    """A listening TCP socket on 127.0.0.1:``port`` (0 = any free port), with ``TCP_NODELAY`` for its clients.

    Raises :class:`PortInUseError` when another process listens on ``port``.
    """
    return bind_tcp(LOOPBACK, port)


def bind_tcp(host: str, port: int) -> socket.socket:
    """A listening IPv4 TCP socket on ``host:port``: only the gateway listener (which
    authenticates every caller, ``mcpkeeper.gateway``) binds anything but loopback."""
    sock = _tcp_socket()
    try:
        # Lets a restarted server take its port back while old connections sit in
        # TIME_WAIT; a port with a live listener still refuses the bind.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(_BACKLOG)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(port) from None
        raise
    return sock


def free_port(avoid: set[int] | frozenset[int] = frozenset()) -> int:
    """A loopback port free right now and not in ``avoid`` (ports reserved by other servers)."""
    for _ in range(64):
        with _tcp_socket() as sock:
            sock.bind((LOOPBACK, 0))
            port: int = sock.getsockname()[1]
        if port not in avoid:
            return port
    raise RuntimeError("could not find a free loopback port")


def bind_unix(path: Path, *, mode: int = 0o600) -> socket.socket:
    """A listening Unix socket at ``path`` that has ``mode`` before it accepts anyone."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        os.chmod(path, mode)
        sock.listen(_BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
