"""Run an ASGI app with uvicorn on loopback, inside the running asyncio loop.

Tests, benchmarks and the demo start several servers in one process and one loop, so
uvicorn must not install signal handlers (the last one started would steal Ctrl+C from
the others, and restore stale handlers on exit). The listening socket is bound here with
``SO_REUSEADDR`` so that a server can stop listening and later come back on the *same*
port: that is how the ``refused`` fault looks to a client (connection refused while down,
the same URL working again afterwards).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Generator
from typing import Literal

import uvicorn
from starlette.types import ASGIApp

__all__ = ["LOOPBACK", "ServedApp", "serve_asgi"]

LOOPBACK = "127.0.0.1"

#: Upper bound on waiting for uvicorn to start or stop; a fixture that takes longer is broken.
_START_STOP_TIMEOUT = 10.0
#: In-flight requests get this long to finish when a server stops; then they are cancelled.
_GRACEFUL_SHUTDOWN = 2

Lifespan = Literal["auto", "on", "off"]


class _QuietServer(uvicorn.Server):
    """uvicorn without signal handling: the owner of the loop decides when to stop.

    It also stops on an event rather than uvicorn's 100 ms polling, which adds up over
    hundreds of short-lived test servers.
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._exit_requested = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def main_loop(self) -> None:
        # on_tick(0) refreshes the Date header and reports should_exit.
        while not await self.on_tick(0):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._exit_requested.wait()

    def request_exit(self) -> None:
        self.should_exit = True
        self._exit_requested.set()


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class ServedApp:
    """One ASGI app served over HTTP on a fixed loopback port.

    The port is chosen once (0 picks a free one) and kept across :meth:`stop_listening` /
    :meth:`start_listening`, so URLs handed out earlier stay valid after a restore.

    Each (re)start is a fresh uvicorn server, so an app *lifespan* (``lifespan="on"`` or
    ``"auto"``) runs again after a restart; apps that need a one-shot lifespan should
    manage it themselves and be served with ``lifespan="off"``.
    """

    def __init__(self, app: ASGIApp, *, host: str = LOOPBACK, port: int = 0, lifespan: Lifespan = "auto"):
        self.app = app
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self._lifespan: Lifespan = lifespan
        self._server: _QuietServer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("server has not been started")
        return self._port

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. ``http://127.0.0.1:43123``."""
        return f"http://{self.host}:{self.port}"

    @property
    def listening(self) -> bool:
        return self._server is not None

    async def start_listening(self) -> None:
        """Bind (the same port as before, if any) and serve until :meth:`stop_listening`."""
        if self._server is not None:
            return
        sock = _bind(self.host, self._port if self._port is not None else self._requested_port)
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            lifespan=self._lifespan,
            interface="asgi3",
            log_config=None,
            log_level=logging.WARNING,
            access_log=False,
            timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN,
        )
        server = _QuietServer(config)
        task = asyncio.create_task(_run(server, sock), name=f"uvicorn:{self._port}")
        try:
            await _wait_started(server, task)
        except BaseException:
            sock.close()
            await _finish(server, task)
            raise
        self._server, self._task = server, task

    async def stop_listening(self) -> None:
        """Close the listener and every connection; new connections are refused.

        In-flight requests get a short grace period and are then cancelled, so a handler
        that never answers cannot keep the server alive.
        """
        server, task = self._server, self._task
        self._server = self._task = None
        if server is None or task is None:
            return
        await _finish(server, task)

    async def __aenter__(self) -> ServedApp:
        await self.start_listening()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop_listening()


async def _run(server: _QuietServer, sock: socket.socket) -> None:
    try:
        await server.serve(sockets=[sock])
    except SystemExit as exc:
        # uvicorn exits the process on a lifespan startup failure; in a shared loop a
        # SystemExit escaping a task would take every other server down with it.
        raise RuntimeError(f"uvicorn exited with status {exc.code}") from None


async def _wait_started(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    async with asyncio.timeout(_START_STOP_TIMEOUT):
        while not server.started:
            if task.done():
                exc = task.exception()
                raise RuntimeError(f"uvicorn failed to start: {exc!r}") from exc
            await asyncio.sleep(0.005)


async def _finish(server: _QuietServer, task: asyncio.Task[None]) -> None:
    server.request_exit()
    done, _ = await asyncio.wait({task}, timeout=_START_STOP_TIMEOUT)
    if not done:
        server.force_exit = True
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return
    if not task.cancelled() and task.exception() is not None and server.started:
        raise RuntimeError("uvicorn stopped with an error") from task.exception()


@contextlib.asynccontextmanager
async def serve_asgi(
    app: ASGIApp, *, host: str = LOOPBACK, port: int = 0, lifespan: Lifespan = "auto"
) -> AsyncIterator[ServedApp]:
    """Serve ``app`` on ``host:port`` (0 = any free port) for the duration of the block."""
    async with ServedApp(app, host=host, port=port, lifespan=lifespan) as served:
        yield served
