"""An :class:`~._upstream.Upstream` that is an ASGI app in this process: no socket, no HTTP parsing.

``mcpkeeper proxy URL --stdio`` runs the proxy app and the stdio bridge in one process;
sending the bridge's requests through a loopback socket would cost an HTTP client, a TCP
connection (the SDK transport closes each answer before its end, so a new one per call)
and a server's parsing on the other side, for nothing. The app is called with the scope
a server would build; the response's body is handed out as the app sends it (SSE streams
included, with back-pressure), and closing the response early is the client hanging up
(``http.disconnect``), as with a real server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from urllib.parse import unquote

from starlette.types import ASGIApp, Message, Scope

from mcpkeeper.proxy._headers import RawHeaders
from mcpkeeper.proxy._http1 import UpstreamBroken
from mcpkeeper.proxy._rewrite import Origin
from mcpkeeper.proxy._upstream import Upstream, UpstreamResponse

__all__ = ["InProcessUpstream", "SameProcessFirst"]

log = logging.getLogger(__name__)

_QUEUED_CHUNKS = 64  # body chunks the app may send ahead of the reader before it waits


class InProcessUpstream:
    """Sends every request to ``app`` as if it had arrived at ``origin`` (the app's own URL)."""

    def __init__(self, app: ASGIApp, origin: Origin) -> None:
        self.timeout: dict[str, float | None] = {}  # none of ours: the app applies its own
        self.app = app
        self._origin = origin
        self._host = str(origin).split("://", 1)[1].encode("ascii")
        self._exchanges: set[asyncio.Task[None]] = set()
        self.is_closed = False

    async def send(
        self, method: str, target: bytes, headers: RawHeaders, body: bytes | AsyncIterator[bytes]
    ) -> _AppResponse:
        if self.is_closed:
            raise RuntimeError("the in-process upstream is closed")
        if not isinstance(body, bytes):
            body = b"".join([chunk async for chunk in body])
        path, _, query = target.partition(b"?")
        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method,
            "scheme": self._origin.scheme,
            "path": unquote(path.decode("latin-1")),
            "raw_path": path,
            "query_string": query,
            "root_path": "",
            "headers": [(b"host", self._host)]
            + [(key.lower(), value) for key, value in headers if key.lower() != b"host"],
            "client": ("127.0.0.1", 0),
            "server": (self._origin.host, self._origin.port),
        }
        response = _AppResponse()
        task = asyncio.create_task(self._exchange(scope, body, response))
        self._exchanges.add(task)
        task.add_done_callback(self._exchanges.discard)
        try:
            await response.started()
        except BaseException:
            task.cancel()
            raise
        return response

    async def _exchange(self, scope: Scope, body: bytes, response: _AppResponse) -> None:
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await response.closed.wait()
            return {"type": "http.disconnect"}

        try:
            await self.app(scope, receive, response.take)
        except Exception:
            log.exception("the proxy app failed on an in-process request")
            response.fail()
        finally:
            response.finish()

    async def aclose(self) -> None:
        """Cancel the exchanges still running (streams nobody closed)."""
        self.is_closed = True
        for task in list(self._exchanges):
            task.cancel()
        for task in list(self._exchanges):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


class _AppResponse:
    """What the app sends, as an :class:`~._upstream.UpstreamResponse`."""

    def __init__(self) -> None:
        self.status_code = 0
        self.raw_headers: RawHeaders = []
        self.closed = asyncio.Event()
        self._start: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._chunks: asyncio.Queue[bytes | None] = asyncio.Queue(_QUEUED_CHUNKS)
        self._ended = False
        self._broken = False

    @property
    def complete(self) -> bool:
        return self._ended and self._chunks.empty()

    async def started(self) -> None:
        await self._start

    async def take(self, message: Message) -> None:
        """The app's ``send``."""
        if message["type"] == "http.response.start":
            self.status_code = int(message["status"])
            self.raw_headers = list(message.get("headers", []))
            if not self._start.done():
                self._start.set_result(None)
        elif message["type"] == "http.response.body" and not self._ended:
            if self.closed.is_set():
                return  # the reader hung up: what is left goes nowhere, as on a closed socket
            chunk = message.get("body", b"")
            if chunk:
                await self._chunks.put(chunk)
            if not message.get("more_body", False):
                self.finish()

    def fail(self) -> None:
        """The app raised: a 500 if nothing was sent yet, else a body that breaks off."""
        if not self._start.done():
            self.status_code = 500
            self._start.set_result(None)
        else:
            self._broken = True

    def finish(self) -> None:
        if not self._start.done():  # the app ended without answering
            self.fail()
        if not self._ended:
            self._ended = True
            with contextlib.suppress(asyncio.QueueFull):
                self._chunks.put_nowait(None)

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        while not (self._ended and self._chunks.empty()):
            chunk = await self._chunks.get()
            if chunk is None:
                break
            yield chunk
        if self._broken:
            raise UpstreamBroken("the proxy app failed mid-answer")

    async def aclose(self) -> None:
        self.closed.set()
        while not self._chunks.empty():  # unblock an app waiting to queue more
            self._chunks.get_nowait()


class SameProcessFirst:
    """The proxy app when this process serves the URL right now, else the proxy's connections.

    A ``proxy --stdio`` process may host the workload from the start, take it over later
    from a host that left, or only attach to another process's: ``app`` says, on every
    request, which proxy app (if any) this process runs for the URL.
    """

    def __init__(self, app: Callable[[], ASGIApp | None], origin: Origin, elsewhere: Upstream) -> None:
        self._app = app
        self._origin = origin
        self._elsewhere = elsewhere
        self._local: InProcessUpstream | None = None
        self._spent: list[InProcessUpstream] = []
        self.timeout = elsewhere.timeout

    @property
    def is_closed(self) -> bool:
        return self._elsewhere.is_closed

    async def send(
        self, method: str, target: bytes, headers: RawHeaders, body: bytes | AsyncIterator[bytes]
    ) -> UpstreamResponse:
        app = self._app()
        if app is None:
            return await self._elsewhere.send(method, target, headers, body)
        if self._local is None or self._local.app is not app:
            if self._local is not None:
                self._spent.append(self._local)
            self._local = InProcessUpstream(app, self._origin)
        return await self._local.send(method, target, headers, body)

    async def aclose(self) -> None:
        for upstream in [*self._spent, *([self._local] if self._local else [])]:
            await upstream.aclose()
        await self._elsewhere.aclose()
