"""uvicorn inside the running event loop, on a socket bound beforehand (see :mod:`.sockets`).

The daemon serves the control API and every workload's proxy from one loop, the login
runs its callback server inside the CLI's loop, and tests run several fixture servers in
one loop. So:

- uvicorn must not install signal handlers (the last server started would steal
  SIGTERM from the daemon, or Ctrl+C from a login, and restore stale handlers when it
  stops);
- an app whose lifespan fails must not exit the process (uvicorn calls ``sys.exit``);
- uvicorn's idle loop polls ``should_exit`` ten times a second per server; with a
  hundred workloads that is a thousand wake-ups a second for nothing, so our server
  waits on an event instead and ticks once a second (uvicorn's Date header cadence);
- the app is declared ASGI 3: uvicorn's guess takes a bound method (``server._handle``)
  for ASGI 2;
- every connection is bounded (head size and time, idle keep-alive, connections per
  listener: :mod:`.limits`), whatever the app.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Generator
from typing import Literal

import uvicorn
from starlette.types import ASGIApp

from mcpkeeper.net.limits import DEFAULT_LIMITS, ListenerLimits, protocol_class

__all__ = ["InLoopServer", "Lifespan", "ServerStartError"]

#: Starting or stopping a server that takes longer than this is broken, not slow.
_START_STOP_TIMEOUT = 10.0
_TICK = 1.0

Lifespan = Literal["auto", "on", "off"]


class ServerStartError(RuntimeError):
    """The server ended before it accepted connections (its cause is chained)."""


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

    The server owns ``sock`` from now on and closes it when it ends.
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
        limits: ListenerLimits = DEFAULT_LIMITS,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
    ) -> None:
        self._sock = sock
        self._name = name
        config = uvicorn.Config(
            app,
            interface="asgi3",
            http=protocol_class(limits),
            timeout_keep_alive=limits.keep_alive,  # type: ignore[arg-type]  # uvicorn's call_later takes a float
            lifespan=lifespan,
            log_config=None,
            log_level=logging.WARNING,
            access_log=False,
            timeout_graceful_shutdown=graceful_shutdown,
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
        )
        self._server = _LoopFriendlyServer(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Serve until :meth:`stop`; returns once the server accepts connections.

        Raises :class:`ServerStartError` when the server ends before that (a failed app
        lifespan, say); the socket is closed whatever goes wrong.
        """
        if self._task is not None:
            raise RuntimeError(f"server {self._name} already started")
        self._task = asyncio.create_task(self._serve(), name=f"server:{self._name}")
        try:
            async with asyncio.timeout(_START_STOP_TIMEOUT):
                while not self._server.started:
                    if self._task.done():
                        exc = self._task.exception()
                        raise ServerStartError(f"server {self._name} failed to start: {exc}") from exc
                    await asyncio.sleep(0.005)
        except BaseException:
            await self.stop()
            raise

    async def _serve(self) -> None:
        try:
            await self._server.serve(sockets=[self._sock])
        except SystemExit as exc:
            # uvicorn exits the *process* when an app lifespan fails; in a shared loop
            # that would take every other server down with it.
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
