"""uvicorn inside the daemon's event loop, on a socket we bind ourselves.

The daemon serves the control API and every workload's proxy from one loop, so:

- uvicorn must not install signal handlers (the last server started would steal
  SIGTERM from the daemon and restore stale handlers when it stops);
- we bind the listening socket ourselves, which lets a busy port be reported as a clear
  error before anything starts, and lets the control API's Unix socket get its 0600
  mode *before* it starts listening (uvicorn's own ``uds=`` path chmods afterwards);
- uvicorn's idle loop polls ``should_exit`` ten times a second per server; with a
  hundred workloads that is a thousand wake-ups a second for nothing, so our server
  waits on an event instead and ticks once a second (uvicorn's Date header cadence).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
from collections.abc import Generator
from pathlib import Path
from typing import Literal

import uvicorn
from starlette.types import ASGIApp

__all__ = ["LOOPBACK", "InLoopServer", "PortInUseError", "bind_loopback", "bind_unix", "free_port"]

LOOPBACK = "127.0.0.1"

#: Starting or stopping a server that takes longer than this is broken, not slow.
_START_STOP_TIMEOUT = 10.0
_TICK = 1.0

Lifespan = Literal["auto", "on", "off"]


class PortInUseError(OSError):
    """The requested loopback port is taken by another process."""

    def __init__(self, port: int) -> None:
        super().__init__(errno.EADDRINUSE, f"port {port} on {LOOPBACK} is already in use")
        self.port = port

    def __str__(self) -> str:
        return str(self.args[1])


def bind_loopback(port: int) -> socket.socket:
    """A listening TCP socket on 127.0.0.1:``port`` (0 = any free port).

    The protocol is named explicitly: asyncio turns on ``TCP_NODELAY`` for accepted
    connections only when the socket says it is TCP (``proto == IPPROTO_TCP``). With the
    default ``proto=0`` Nagle's algorithm meets the client's delayed ACK and every
    keep-alive request waits ~40 ms for nothing.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        # Lets a restarted workload take its port back while old connections sit in
        # TIME_WAIT; a port with a live listener still refuses the bind.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((LOOPBACK, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(port) from None
        raise
    return sock


def free_port(avoid: set[int] | frozenset[int] = frozenset()) -> int:
    """A loopback port free right now and not in ``avoid`` (ports reserved by other workloads)."""
    for _ in range(64):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
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
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class _LoopFriendlyServer(uvicorn.Server):
    """uvicorn without signal handlers and without the 100 ms polling loop."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._exit_requested = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    def request_exit(self) -> None:
        self.should_exit = True
        self._exit_requested.set()

    async def main_loop(self) -> None:
        # Counter 0 refreshes the Date header; uvicorn does that every tenth 100 ms tick.
        while not await self.on_tick(0):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_TICK):
                    await self._exit_requested.wait()


class InLoopServer:
    """One ASGI app served on an already-bound socket, as a task of the running loop.

    :meth:`wait_closed` returns when the server ends for any reason, which is how a
    supervisor notices a server that died without being asked to.
    """

    def __init__(
        self,
        app: ASGIApp,
        sock: socket.socket,
        *,
        name: str,
        lifespan: Lifespan = "auto",
        graceful_shutdown: int = 2,
    ) -> None:
        self._sock = sock
        self._name = name
        config = uvicorn.Config(
            app,
            lifespan=lifespan,
            log_config=None,
            log_level=logging.WARNING,
            access_log=False,
            timeout_graceful_shutdown=graceful_shutdown,
        )
        self._server = _LoopFriendlyServer(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Serve until :meth:`stop`; returns once the server accepts connections."""
        if self._task is not None:
            raise RuntimeError(f"server {self._name} already started")
        self._task = asyncio.create_task(self._serve(), name=f"server:{self._name}")
        try:
            async with asyncio.timeout(_START_STOP_TIMEOUT):
                while not self._server.started:
                    if self._task.done():
                        exc = self._task.exception()
                        raise RuntimeError(f"server {self._name} failed to start: {exc}") from exc
                    await asyncio.sleep(0.005)
        except BaseException:
            await self.stop()
            raise

    async def _serve(self) -> None:
        try:
            await self._server.serve(sockets=[self._sock])
        except SystemExit as exc:
            # uvicorn exits the *process* when an app lifespan fails; in a shared loop
            # that would take every other workload down with it.
            raise RuntimeError(f"uvicorn exited with status {exc.code}") from None
        finally:
            self._sock.close()

    async def wait_closed(self) -> None:
        """Return when the server has ended; raise what it died of, if it died."""
        if self._task is None:
            return
        await asyncio.shield(self._task)

    async def stop(self) -> None:
        """Close the listener and connections (in-flight requests get a short grace period)."""
        task = self._task
        if task is None:
            self._sock.close()
            return
        self._server.request_exit()
        done, _ = await asyncio.wait({task}, timeout=_START_STOP_TIMEOUT)
        if not done:
            self._server.force_exit = True
            task.cancel()
            await asyncio.wait({task})
        if not task.cancelled():
            task.exception()  # retrieved: a crash was already reported through wait_closed()
