"""Bridge newline-delimited JSON-RPC on stdin/stdout to a streamable-HTTP MCP endpoint.

This is what ``mcpkeeper connect NAME`` and ``mcpkeeper proxy URL --stdio`` run for
clients that spawn a command instead of speaking HTTP (Claude Desktop style). The URL is
the local proxy's, so the bridge itself never holds a token.

The HTTP side is the official MCP SDK's streamable-HTTP *client* transport, used as a
raw message pipe (POST per message, JSON or SSE answers, ``Mcp-Session-Id``, the GET
stream for server-initiated messages, resumption, session DELETE on exit); what a client
session would normally add, the per-message headers, comes from
:class:`~mcpkeeper.proxy._bridge_headers.HeaderStamper`. The client's lines are read and
written on the event loop's own pipe transports (:mod:`~mcpkeeper.proxy._stdio_pipes`),
or with the SDK's stdio *server* transport when stdin/stdout are not pipes or are handed
in. Below the SDK transport, the HTTP goes straight to the proxy
(:mod:`~mcpkeeper.proxy._bridge_transport`): to the proxy app itself when it runs in this
process (a ``proxy --stdio`` that hosts the workload passes ``app``), else over the proxy's
own lean connections.
Each saves latency on every message: ``bench/bench_stdio.py`` has the figures.

When the proxy answers ``503`` (no token right now), its body is a JSON-RPC error with
``retry_after`` in ``data``, which the SDK transport hands back for that request: the
client sees an error for one call and the bridge keeps running. When the proxy cannot be
reached at all (the daemon restarting), the failed POST is answered the same way instead
of tearing the bridge down.

Run it directly with ``python -m mcpkeeper.proxy.stdio_bridge URL [-H 'Name: value']``.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import logging
import sys
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from typing import Protocol

import anyio
import httpx2
from mcp.client.streamable_http import streamable_http_client
from mcp.server.stdio import stdio_server
from mcp.shared.message import ClientMessageMetadata, SessionMessage
from mcp_types import JSONRPCError, JSONRPCMessage, JSONRPCRequest, JSONRPCResponse, RequestId
from pydantic import ValidationError
from starlette.types import ASGIApp

from mcpkeeper.proxy._bridge_headers import HeaderStamper
from mcpkeeper.proxy._bridge_transport import BridgeTransport
from mcpkeeper.proxy._in_process import SameProcessFirst
from mcpkeeper.proxy._rewrite import Origin
from mcpkeeper.proxy._stdio_pipes import PipesUnsupported, process_stdio
from mcpkeeper.proxy._upstream import Upstream, direct_upstream, open_upstream

__all__ = ["main", "run_stdio_bridge"]

log = logging.getLogger(__name__)

#: After stdin closes, answers still in flight get this long to arrive before the bridge exits.
DRAIN_TIMEOUT = 10.0
#: Loopback to our own proxy: connecting is instant or impossible. No read timeout: a tool
#: call may run long and an SSE stream may idle; the client decides when to give up.
_TIMEOUT = httpx2.Timeout(10.0, read=None)


async def run_stdio_bridge(
    url: str,
    *,
    headers: dict[str, str] | None = None,
    stdin: anyio.AsyncFile[str] | None = None,
    stdout: anyio.AsyncFile[str] | None = None,
    app: Callable[[], ASGIApp | None] | None = None,
) -> None:
    """Relay messages between stdin/stdout and ``url`` until stdin closes.

    ``headers`` are sent with every HTTP request (never an upstream token: the proxy
    injects that). ``stdin``/``stdout`` default to the process's own. ``app`` says, per
    request, which proxy app serves ``url`` in this process right now (None: none does):
    requests then go to it directly instead of through a socket.
    """
    transport = BridgeTransport(_upstream(url, app), url)
    async with (
        httpx2.AsyncClient(headers=headers or {}, timeout=_TIMEOUT, transport=transport) as http,
        _stdio(stdin, stdout) as (from_client, to_client),
        streamable_http_client(url, http_client=http) as (from_server, to_server),
    ):
        pipe = _Pipe(HeaderStamper())
        async with anyio.create_task_group() as tg:
            tg.start_soon(pipe.server_to_client, from_server, to_client)
            await pipe.client_to_server(from_client, to_server)
            with anyio.move_on_after(DRAIN_TIMEOUT):
                await pipe.drained()
            tg.cancel_scope.cancel()
        await to_client.aclose()


@contextlib.asynccontextmanager
async def _stdio(
    stdin: anyio.AsyncFile[str] | None, stdout: anyio.AsyncFile[str] | None
) -> AsyncIterator[tuple[AsyncIterable[SessionMessage | Exception], _Sender]]:
    """The process's own pipes on the event loop; files handed in (or not pipes): the SDK's transport."""
    if stdin is None and stdout is None:
        try:
            async with process_stdio() as streams:
                yield streams
            return
        except PipesUnsupported:
            pass
    async with stdio_server(stdin, stdout) as streams:
        yield streams


def _upstream(url: str, app: Callable[[], ASGIApp | None] | None) -> Upstream:
    origin = Origin.of(url)
    if origin is None:
        raise ValueError(f"not an absolute http(s) URL: {url!r}")
    # A loopback URL is our own proxy, which an HTTP proxy from the environment cannot reach.
    elsewhere = direct_upstream(origin) if _is_loopback(origin.host) else open_upstream(origin)
    return elsewhere if app is None else SameProcessFirst(app, origin, elsewhere)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Sender(Protocol):
    async def send(self, item: SessionMessage, /) -> None: ...

    async def aclose(self) -> None: ...


class _Pipe:
    """Both relay directions of one session, and the requests still waiting for an answer."""

    def __init__(self, stamper: HeaderStamper) -> None:
        self._stamper = stamper
        self._pending: set[RequestId] = set()
        self._idle = anyio.Event()
        self._idle.set()

    async def client_to_server(
        self,
        from_client: AsyncIterable[SessionMessage | Exception],
        to_server: _Sender,
    ) -> None:
        async for message in _messages(
            from_client, "ignoring a line on stdin that is not a JSON-RPC message"
        ):
            if isinstance(message, JSONRPCRequest):
                self._pending.add(message.id)
                self._idle = anyio.Event()
            headers = self._stamper.outbound(message)
            metadata = ClientMessageMetadata(headers=headers) if headers else None
            await to_server.send(SessionMessage(message, metadata=metadata))

    async def server_to_client(
        self,
        from_server: AsyncIterable[SessionMessage | Exception],
        to_client: _Sender,
    ) -> None:
        async for message in _messages(
            from_server, "dropping a message from the server that could not be read"
        ):
            self._stamper.inbound(message)
            await to_client.send(SessionMessage(message))
            if isinstance(message, JSONRPCResponse | JSONRPCError) and message.id is not None:
                self._stamper.forget(message.id)
                self._answered(message.id)

    def _answered(self, request_id: RequestId) -> None:
        self._pending.discard(request_id)
        if not self._pending:
            self._idle.set()

    async def drained(self) -> None:
        """Return once every request sent so far has had its answer relayed."""
        while self._pending:
            await self._idle.wait()


async def _messages(
    stream: AsyncIterable[SessionMessage | Exception], complaint: str
) -> AsyncIterator[JSONRPCMessage]:
    """The messages of a transport stream; what it could not parse is logged and skipped.

    Blank lines pass silently. The log line says what was wrong, never what the line held
    (a tool argument may be a secret).
    """
    async for item in stream:
        if isinstance(item, Exception):
            problem = _problem(item)
            if problem is not None:
                log.warning("%s: %s", complaint, problem)
            continue
        yield item.message


def _problem(exc: Exception) -> str | None:
    """One line about an unparsable message, or None for a blank line."""
    if not isinstance(exc, ValidationError):
        lines = str(exc).splitlines()
        return lines[0] if lines else type(exc).__name__
    errors = exc.errors(include_url=False)
    raw = errors[0].get("input") if errors else None
    if isinstance(raw, str) and not raw.strip():
        return None
    if len(errors) > 1:
        return "not a JSON-RPC request, notification or response"
    return errors[0]["msg"] if errors else "invalid"


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m mcpkeeper.proxy.stdio_bridge",
        description="Bridge MCP stdio (newline-delimited JSON-RPC) to a streamable-HTTP MCP URL.",
    )
    parser.add_argument("url", help="streamable-HTTP MCP endpoint, e.g. http://127.0.0.1:PORT/mcp")
    parser.add_argument(
        "-H", "--header", action="append", default=[], metavar="'NAME: VALUE'", help="extra HTTP header"
    )
    return parser.parse_args(argv)


def _parse_headers(raw: Sequence[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for item in raw:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise SystemExit(f"error: header must look like 'Name: value', got {item!r}")
        headers[name.strip()] = value.strip()
    return headers


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for ``python -m mcpkeeper.proxy.stdio_bridge``; logs go to stderr."""
    args = _parse_args(argv)
    headers = _parse_headers(args.header)
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        anyio.run(lambda: run_stdio_bridge(args.url, headers=headers))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
