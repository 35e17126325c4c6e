"""Cancel an exchange when its client goes away, also while a stream sits idle.

uvicorn does not cancel the app when a client disconnects (``send`` then silently does
nothing), so only a task listening on ``receive`` for ``http.disconnect`` notices. Such
a task per request costs more than the rest of the proxy's own work for a quick JSON
exchange, so it is armed lazily: at once for a response that streams (SSE), otherwise
only when the exchange is still running after :data:`ARM_AFTER` seconds. A client that
hangs up on a long tool call is thus noticed within that delay; one that hangs up on a
millisecond exchange costs nothing.
"""

from __future__ import annotations

import asyncio

import anyio
from starlette.types import Receive

from mcpkeeper.proxy._body import RequestBody

__all__ = ["ARM_AFTER", "DisconnectWatch"]

ARM_AFTER = 0.1


class DisconnectWatch:
    """Use as a context manager around the exchange; cancels ``scope`` on disconnect."""

    def __init__(self, receive: Receive, body: RequestBody, scope: anyio.CancelScope) -> None:
        self._receive = receive
        self._body = body
        self._scope = scope
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    def __enter__(self) -> DisconnectWatch:
        self._timer = asyncio.get_running_loop().call_later(ARM_AFTER, self.arm)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._task is not None:
            self._task.cancel()

    def arm(self) -> None:
        """Start listening now (idempotent)."""
        if self._task is None:
            self._task = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        await self._body.done.wait()  # until then, the body reader owns ``receive``
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self._scope.cancel()
                return
