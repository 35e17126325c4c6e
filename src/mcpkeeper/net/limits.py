"""Bounds on what one client can make a listener hold: head size, head time, connections.

uvicorn's httptools protocol accepts a request head of any size and waits for it
forever: one socket streaming an endless header grew the daemon by hundreds of MB
(httptools buffers a header value until it ends), and slow-loris sockets that send a
byte now and then (or nothing at all) were never closed. uvicorn exposes an idle
keep-alive timeout and a concurrency limit that answers 503 to *requests*, but nothing
for the head itself and nothing that stops connections from piling up. So every
listener of mcpkeeper (workload proxies, the vMCP, the login callback, the control API)
serves through :class:`BoundedHttpToolsProtocol`, a small subclass of uvicorn's own
protocol that adds, per :class:`ListenerLimits`:

* **head size**: request line and headers together at most ``max_head_bytes``, and at
  most ``max_headers`` header fields; beyond either, ``431`` and the connection closes.
  Bytes are counted as they arrive, before the parser buffers them, so an endless header
  costs at most ``max_head_bytes`` of memory;
* **head time**: a request head must be complete ``head_timeout`` seconds after the
  connection opened (or the previous response ended, or the head began); else the
  connection is closed. A connection that sends nothing at all is closed by the same rule;
* **idle keep-alive**: uvicorn's own ``timeout_keep_alive``, set from ``keep_alive``
  (longer than the usual client's idle expiry, so that a client never sends on a
  connection we are closing);
* **connections**: at most ``max_connections`` open at once per listener; one more is
  answered ``503`` and closed at once, before it can hold anything.

Only public names of uvicorn are used: the protocol class passed as ``Config(http=...)``
and the callbacks it already defines.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["DEFAULT_LIMITS", "BoundedHttpToolsProtocol", "ListenerLimits", "protocol_class"]


@dataclass(frozen=True, slots=True)
class ListenerLimits:
    """What one listener accepts; the defaults suit every loopback listener of mcpkeeper.

    MCP requests carry small heads (a bearer token of a few kB is the largest header), so
    64 kB and 100 fields leave room for any real client.
    """

    max_head_bytes: int = 64 * 1024
    max_headers: int = 100
    head_timeout: float = 10.0
    #: Longer than the clients' own idle expiry (httpx and the MCP SDK's httpx2: 5 s): at
    #: 5 s here too, a client reused a connection the moment we closed it, and its request
    #: failed with a read error (1 call in ~1,400 under load, tests/integration/test_gateway.py).
    keep_alive: float = 15.0
    max_connections: int = 512


DEFAULT_LIMITS = ListenerLimits()

_REFUSALS = {
    431: b"Request Header Fields Too Large",
    503: b"Service Unavailable",
}


def _refusal(status: int) -> bytes:
    body = _REFUSALS[status]
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
        b"connection: close\r\n\r\n%s" % (status, body, len(body), body)
    )


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with :class:`ListenerLimits`; see the module docstring."""

    limits: ClassVar[ListenerLimits] = DEFAULT_LIMITS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._awaiting_head = True
        self._head_bytes = 0
        self._header_count = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._refused = False
        self._registered = False

    # -- connection --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            # Not registered with the server at all: refused before it holds anything.
            self.transport = transport
            self._refuse(503)
            return
        self._registered = True
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        if self._registered:  # else refused in connection_made: uvicorn never saw it
            super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        view = memoryview(data)
        while view:
            if not self._awaiting_head:
                super().data_received(view)  # type: ignore[arg-type]
                return
            room = self.limits.max_head_bytes - self._head_bytes
            if room <= 0:
                self._refuse(431)
                return
            chunk, view = view[:room], view[room:]
            self._head_bytes += len(chunk)
            super().data_received(chunk)  # type: ignore[arg-type]
            if self._refused or self.transport.is_closing():
                return

    # -- parser callbacks ----------------------------------------------------------------
    def on_message_begin(self) -> None:
        # ``_head_bytes`` is not reset here: the bytes of this head were already counted
        # when they arrived (the count restarts when the previous message completes).
        super().on_message_begin()
        self._awaiting_head = True
        self._header_count = 0
        self._arm_head_timer()

    def on_header(self, name: bytes, value: bytes) -> None:
        # Counted, but kept only up to the limit: the refusal comes with the end of the head
        # (raising here would make uvicorn log every refused request as a warning).
        self._header_count += 1
        if self._header_count <= self.limits.max_headers:
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._awaiting_head = False
        self._cancel_head_timer()
        if self._header_count > self.limits.max_headers:
            self._refuse(431)
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:  # the parser goes on with the rest of a refused request's bytes
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        super().on_message_complete()
        self._awaiting_head = True
        self._head_bytes = 0

    def on_response_complete(self) -> None:
        idle = not self.pipeline
        super().on_response_complete()
        if idle and not self.transport.is_closing() and self._head_timer is None:
            # Waiting for the next head from now on: a byte now and then must not keep it open.
            self._arm_head_timer()

    # -- internals -------------------------------------------------------------------------
    def _refuse(self, status: int) -> None:
        self._refused = True
        self._cancel_head_timer()
        if not self.transport.is_closing():
            self.transport.write(_refusal(status))
            self.transport.close()

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.limits.head_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._awaiting_head and not self.transport.is_closing():
            self.transport.close()


def protocol_class(limits: ListenerLimits) -> type[BoundedHttpToolsProtocol]:
    """The protocol class uvicorn instantiates per connection, bound to ``limits``."""
    if limits == DEFAULT_LIMITS:
        return BoundedHttpToolsProtocol
    return type("BoundedHttpToolsProtocol", (BoundedHttpToolsProtocol,), {"limits": limits})
