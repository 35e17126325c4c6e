"""Run an ASGI app with uvicorn on loopback, inside the running asyncio loop.

Tests, benchmarks and the demo start several servers in one process and one loop;
:class:`mcpkeeper.net.InLoopServer` runs uvicorn that way (no signal handlers, no 100 ms
polling, a lifespan failure raised instead of exiting). What this module adds is a
*stable port*: a server can stop listening and later come back on the same port, which
is how the ``refused`` fault looks to a client (connection refused while down, the same
URL working again afterwards).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.types import ASGIApp

from mcpkeeper.net import LOOPBACK, InLoopServer, Lifespan, bind_loopback

__all__ = ["LOOPBACK", "ServedApp", "serve_asgi"]


class ServedApp:
    """One ASGI app served over HTTP on a fixed loopback port.

    The port is chosen once (0 picks a free one) and kept across :meth:`stop_listening` /
    :meth:`start_listening`, so URLs handed out earlier stay valid after a restore.

    Each (re)start is a fresh uvicorn server, so an app *lifespan* (``lifespan="on"`` or
    ``"auto"``) runs again after a restart; apps that need a one-shot lifespan should
    manage it themselves and be served with ``lifespan="off"``.
    """

    host = LOOPBACK

    def __init__(self, app: ASGIApp, *, port: int = 0, lifespan: Lifespan = "auto") -> None:
        self.app = app
        self._requested_port = port
        self._port: int | None = None
        self._lifespan: Lifespan = lifespan
        self._server: InLoopServer | None = None

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
        sock = bind_loopback(self._port if self._port is not None else self._requested_port)
        self._port = sock.getsockname()[1]
        server = InLoopServer(self.app, sock, name=f"fixture:{self._port}", lifespan=self._lifespan)
        await server.start()
        self._server = server

    async def stop_listening(self) -> None:
        """Close the listener and every connection; new connections are refused.

        In-flight requests get a short grace period and are then cancelled, so a handler
        that never answers cannot keep the server alive.
        """
        server, self._server = self._server, None
        if server is not None:
            await server.stop()

    async def __aenter__(self) -> ServedApp:
        await self.start_listening()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop_listening()


@contextlib.asynccontextmanager
async def serve_asgi(app: ASGIApp, *, port: int = 0, lifespan: Lifespan = "auto") -> AsyncIterator[ServedApp]:
    """Serve ``app`` on 127.0.0.1:``port`` (0 = any free port) for the duration of the block."""
    async with ServedApp(app, port=port, lifespan=lifespan) as served:
        yield served
