"""A lean HTTP/1.1 client for one upstream origin: asyncio protocol, httptools parser, LIFO keep-alive.

The proxy's own cost per request was mostly httpx and httpcore (request and URL models,
h11's pure-Python parser, anyio stream wrappers, a write per request part). This client
does only what a reverse proxy needs: it writes the request head and a buffered body in
one ``write``, parses the answer with httptools (C), hands the body out as it arrives
(SSE streams included, with read back-pressure), never follows redirects, and keeps idle
connections on a stack (most recently used first: warm, and the least likely to have been
closed by the server; each request probes only that one, never scans the idle set).

TLS is asyncio's, with httpx's default context (certificate verification on, certifi).
Errors come out as :class:`UpstreamTimeout` (connecting or writing took too long),
:class:`UpstreamUnreachable` (no answer at all) and :class:`UpstreamBroken` (the answer
broke off). A request sent on a kept-alive connection the server had just closed is
retried once on a new one when its body is replayable (nothing of it was answered).
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import cast

import httptools

__all__ = ["Http1Pool", "Http1Response", "UpstreamBroken", "UpstreamTimeout", "UpstreamUnreachable"]

RawHeaders = list[tuple[bytes, bytes]]

_HIGH_WATER = 256 * 1024  # body bytes buffered before reading from the upstream pauses
_BAD_VALUE = re.compile(rb"[\r\n\x00]")


class UpstreamTimeout(Exception):
    """Connecting, or writing the request, took longer than allowed."""


class UpstreamUnreachable(Exception):
    """The upstream could not be reached or closed the connection without answering."""


class UpstreamBroken(Exception):
    """The upstream's answer broke off or was not valid HTTP/1.1."""


class _Stale(Exception):
    """A reused connection was closed by the server before it answered anything."""


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection; one exchange at a time; httptools calls the ``on_*`` methods."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self.idle_since = 0.0
        self._parser: httptools.HttpResponseParser | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None
        self._write_paused = False
        self._reading_paused = False
        self._error: BaseException | None = None
        self._is_head = False
        self._informational = False
        self._to_close = False
        self._received_any = False
        self.chunks: deque[bytes] = deque()
        self._buffered = 0
        self.status = 0
        self.headers: RawHeaders = []
        self.headers_done = False
        self.message_done = False
        self.keep_alive = False
        self.request_sent = False

    # --- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's do not subclass asyncio.Transport, hence no isinstance).
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        if parser is None or self.message_done:
            # Bytes nobody asked for: the connection is out of step, never reuse it.
            self.keep_alive = False
            self.close()
            return
        self._received_any = True
        try:
            parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamBroken(f"invalid HTTP from the upstream: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self._parser is not None and not self.message_done:
            if self.headers_done and self._to_close:
                self.message_done = True  # a body delimited by the end of the connection
                self.keep_alive = False
            elif not self._received_any:
                self._fail(_Stale(str(exc) if exc else "the upstream closed the connection"))
            else:
                self._fail(UpstreamBroken(str(exc) if exc else "the connection closed mid-answer"))
        self._wake()
        self.resume_writing()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    # --- httptools callbacks -----------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        assert self._parser is not None
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self._informational = True
            self.headers = []
            return
        self.status = status
        self.headers_done = True
        if self._is_head:
            self.message_done = True
            self.keep_alive = False
        elif status not in (204, 304):
            framed = any(key.lower() in (b"content-length", b"transfer-encoding") for key, _ in self.headers)
            self._to_close = not framed
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self._is_head:
            return
        self.chunks.append(body)
        self._buffered += len(body)
        if self._buffered > _HIGH_WATER and not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        assert self._parser is not None
        if not self._is_head:
            self.keep_alive = self._parser.should_keep_alive()
        self.message_done = True
        self._wake()

    # --- used by the pool and the response ---------------------------------------------

    def usable(self, now: float, expiry: float) -> bool:
        return not self.lost and self.transport is not None and now - self.idle_since < expiry

    def begin(self, is_head: bool) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._is_head = is_head
        self._informational = self._to_close = self._received_any = False
        self._error = None
        self.chunks.clear()
        self._buffered = 0
        self.status = 0
        self.headers = []
        self.headers_done = self.message_done = self.keep_alive = self.request_sent = False

    def write(self, data: bytes) -> None:
        if self.lost or self.transport is None:
            return  # the reading side reports why
        self.transport.write(data)

    async def drain(self, timeout: float) -> None:
        if not self._write_paused or self.lost:
            return
        self._drain = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout):
                await self._drain
        except TimeoutError:
            raise UpstreamTimeout("WriteTimeout") from None
        finally:
            self._drain = None

    async def head(self) -> None:
        while not self.headers_done:
            if self._error is not None:
                raise self._error
            await self._wait()

    async def next_body(self) -> bytes | None:
        """All body bytes received so far (waiting for some), or None at the end."""
        while True:
            if self.chunks:
                data = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
                self.chunks.clear()
                self._buffered = 0
                if self._reading_paused and self.transport is not None and not self.lost:
                    self._reading_paused = False
                    self.transport.resume_reading()
                return data
            if self.message_done:
                return None
            if self._error is not None:
                raise self._error
            await self._wait()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def _fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None


class Http1Response:
    """The upstream's answer: status and headers at once, the body as it arrives."""

    def __init__(self, connection: _Connection, pool: Http1Pool) -> None:
        self._connection = connection
        self._pool = pool
        self._released = False
        self.status_code = connection.status
        self.raw_headers = connection.headers

    @property
    def complete(self) -> bool:
        """The whole body has been received and handed out."""
        return self._connection.message_done and not self._connection.chunks

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        while (data := await self._connection.next_body()) is not None:
            yield data

    async def aclose(self) -> None:
        if not self._released:
            self._released = True
            self._pool.release(self._connection)


class Http1Pool:
    """Connections to one origin; ``host`` is the ``Host`` header value (port only if not default)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        host_header: str,
        ssl_context: ssl.SSLContext | None,
        connect_timeout: float,
        write_timeout: float,
        keepalive_expiry: float,
        max_idle: int,
    ) -> None:
        self._host = host
        self._port = port
        self._host_line = b"host: " + host_header.encode("ascii") + b"\r\n"
        self._ssl = ssl_context
        self._connect_timeout = connect_timeout
        self._write_timeout = write_timeout
        self._expiry = keepalive_expiry
        self._max_idle = max_idle
        self._idle: list[_Connection] = []
        self.closed = False

    async def send(
        self, method: str, target: bytes, headers: RawHeaders, body: bytes | AsyncIterator[bytes]
    ) -> Http1Response:
        """Send the request; return once the response headers arrived."""
        if self.closed:
            raise RuntimeError("the upstream connection pool is closed")
        head, chunked = self._head(method, target, headers, body)
        for attempt in (1, 2):
            connection, reused = await self._checkout()
            try:
                connection.begin(method == "HEAD")
                if isinstance(body, bytes):
                    connection.write(head + body if body else head)
                    connection.request_sent = True
                else:
                    connection.request_sent = await self._stream(connection, head, body, chunked)
                await connection.head()
            except _Stale as exc:
                connection.close()
                if reused and attempt == 1 and isinstance(body, bytes):
                    continue
                raise UpstreamUnreachable(f"closed the connection without answering ({exc})") from None
            except BaseException:
                connection.close()
                raise
            return Http1Response(connection, self)
        raise AssertionError("unreachable")  # pragma: no cover

    def release(self, connection: _Connection) -> None:
        """Take back a connection whose response was closed (kept if it can carry another)."""
        if (
            self.closed
            or connection.lost
            or not (connection.message_done and connection.keep_alive and connection.request_sent)
        ):
            connection.close()
            return
        connection.idle_since = now = time.monotonic()
        idle = self._idle
        if idle and (len(idle) >= self._max_idle or not idle[0].usable(now, self._expiry)):
            idle.pop(0).close()
        idle.append(connection)

    async def aclose(self) -> None:
        self.closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def _head(
        self, method: str, target: bytes, headers: RawHeaders, body: bytes | AsyncIterator[bytes]
    ) -> tuple[bytes, bool]:
        """The request head, and whether the body goes chunked (streamed, length unknown)."""
        parts = [method.encode("ascii"), b" ", target, b" HTTP/1.1\r\n", self._host_line]
        streamed = not isinstance(body, bytes)
        chunked = streamed
        for key, value in headers:
            if _BAD_VALUE.search(value) is not None or _BAD_VALUE.search(key) is not None:
                raise UpstreamUnreachable("a request header holds a line break; refusing to send it")
            if key == b"content-length":
                if not streamed:
                    continue  # ours below, from the body itself
                chunked = False
            parts += (key, b": ", value, b"\r\n")
        if isinstance(body, bytes) and body:
            parts.append(b"content-length: %d\r\n" % len(body))
        if chunked:
            parts.append(b"transfer-encoding: chunked\r\n")
        parts.append(b"\r\n")
        return b"".join(parts), chunked

    async def _stream(
        self, connection: _Connection, head: bytes, body: AsyncIterator[bytes], chunked: bool
    ) -> bool:
        """Send a streamed body; whether all of it went (the upstream may answer before the end)."""
        connection.write(head)
        async for chunk in body:
            if connection.lost or connection.headers_done:
                return False  # the upstream answered (or went) before the end: stop sending
            if chunk:
                connection.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
                await connection.drain(self._write_timeout)
        if chunked:
            connection.write(b"0\r\n\r\n")
        return True

    async def _checkout(self) -> tuple[_Connection, bool]:
        idle = self._idle
        if idle:
            now = time.monotonic()
            while idle:
                connection = idle.pop()
                if connection.usable(now, self._expiry):
                    return connection, True
                connection.close()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, protocol = await loop.create_connection(
                    _Connection,
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._host if self._ssl is not None else None,
                )
        except TimeoutError:
            raise UpstreamTimeout("ConnectTimeout") from None
        except (OSError, ssl.SSLError) as exc:
            raise UpstreamUnreachable(str(exc) or type(exc).__name__) from None
        return protocol, False
