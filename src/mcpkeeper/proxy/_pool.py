"""Upstream keep-alive connections, kept so that every request costs O(1) bookkeeping.

httpcore's pool (the one under httpx) re-examines every connection it holds each time a
request starts and each time a response is closed: it probes the socket of every idle
connection (a system call each) and recounts the idle ones for each of them (quadratic).
A proxy holds many connections to one origin, since every MCP session keeps an SSE
stream open besides its POSTs; measured with 16 sessions, that bookkeeping was the largest
part of the proxy's CPU time per tool call.

Here the idle connections of each origin wait on a stack. A request takes the most
recently used one (warm, and the least likely to have been closed by the server), probes
only that one, and puts it back when its response is closed; each return also checks the
oldest idle connection, so stale ones are closed over time without any scan.

:class:`UpstreamTransport` is httpx's own transport (request/response mapping, exception
mapping, proxies from the environment) with this pool in place of httpcore's. Should
httpx ever stop keeping its pool in ``_pool``, the transport falls back to httpcore's pool:
slower, equally correct.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterable, AsyncIterator

import anyio
import httpcore
import httpx

__all__ = ["LifoPool", "UpstreamTransport"]

_Key = tuple[bytes, bytes, int]  # an origin: scheme, host, port


class LifoPool:
    """Speaks httpcore's request interface (``handle_async_request``, ``aclose``), HTTP/1.1 only."""

    def __init__(
        self, *, ssl_context: ssl.SSLContext | None, keepalive_expiry: float | None, max_idle: int
    ) -> None:
        self._ssl_context = ssl_context
        self._keepalive_expiry = keepalive_expiry
        self._max_idle = max_idle
        self._idle: dict[_Key, list[httpcore.AsyncHTTPConnection]] = {}
        self._closed = False

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        if self._closed:
            raise RuntimeError("the upstream connection pool is closed")
        origin = request.url.origin
        key = (origin.scheme, origin.host, origin.port)
        connection = await self._checkout(origin, key)
        try:
            response = await connection.handle_async_request(request)
        except BaseException:
            await _close(connection)
            raise
        stream = response.stream
        assert isinstance(stream, AsyncIterable)  # an async connection gives an async body
        return httpcore.Response(
            status=response.status,
            headers=response.headers,
            content=_ReturningStream(stream, connection, key, self),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        self._closed = True
        idle = [connection for stack in self._idle.values() for connection in stack]
        self._idle.clear()
        for connection in idle:
            await _close(connection)

    async def __aenter__(self) -> LifoPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _checkout(self, origin: httpcore.Origin, key: _Key) -> httpcore.AsyncHTTPConnection:
        stack = self._idle.get(key)
        while stack:
            connection = stack.pop()
            if connection.is_idle() and not connection.has_expired():
                return connection
            await _close(connection)
        return httpcore.AsyncHTTPConnection(
            origin, ssl_context=self._ssl_context, keepalive_expiry=self._keepalive_expiry
        )

    async def checkin(self, connection: httpcore.AsyncHTTPConnection, key: _Key) -> None:
        """Take back a connection whose response was closed."""
        if self._closed or not connection.is_idle():
            await _close(connection)
            return
        stack = self._idle.setdefault(key, [])
        if stack and (len(stack) >= self._max_idle or stack[0].has_expired()):
            await _close(stack.pop(0))
        stack.append(connection)


class _ReturningStream:
    """A response body that gives its connection back to the pool once closed."""

    def __init__(
        self,
        stream: AsyncIterable[bytes],
        connection: httpcore.AsyncHTTPConnection,
        key: _Key,
        pool: LifoPool,
    ) -> None:
        self._stream = stream
        self._connection = connection
        self._key = key
        self._pool = pool
        self._returned = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for part in self._stream:
            yield part

    async def aclose(self) -> None:
        if self._returned:
            return
        self._returned = True
        with anyio.CancelScope(shield=True):
            aclose = getattr(self._stream, "aclose", None)
            if aclose is not None:
                await aclose()
            await self._pool.checkin(self._connection, self._key)


async def _close(connection: httpcore.AsyncHTTPConnection) -> None:
    if not connection.is_closed():
        with anyio.CancelScope(shield=True):
            await connection.aclose()


class UpstreamTransport(httpx.AsyncHTTPTransport):
    """httpx's HTTP transport with :class:`LifoPool` as its pool."""

    def __init__(self, *, keepalive_expiry: float | None, max_idle: int) -> None:
        super().__init__(http1=True, http2=False)
        self._pool = LifoPool(  # type: ignore[assignment]
            ssl_context=httpx.create_ssl_context(), keepalive_expiry=keepalive_expiry, max_idle=max_idle
        )
