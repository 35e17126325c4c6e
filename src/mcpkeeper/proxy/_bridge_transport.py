"""The stdio bridge's HTTP below the MCP SDK's transport: straight to the proxy.

The SDK's streamable-HTTP client transport takes an httpx2 client; this is that client's
transport. It sends through an :class:`~._upstream.Upstream` instead of httpcore2 and h11:
the proxy app itself when it runs in this process (``proxy --stdio``,
:class:`~._in_process.InProcessUpstream`: no socket at all), else the proxy's own lean
HTTP/1.1 connections (``connect`` to the daemon's proxy). The SDK transport closes each
SSE answer as soon as it has the result, before the stream's end, so the connection it
came on is not reused: a connection per call, which is cheap only on a lean client.

A POST the proxy never received (the daemon restarting) is answered with a JSON-RPC
error, as the proxy itself answers: left alone, the SDK transport lets a connection
error escape the task that sent the POST, which ends the whole session, and a daemon
restart must cost the client one failed call, not its server. GET and DELETE errors
pass through as httpx2 transport errors: the SDK retries the GET stream and tolerates a
failed DELETE.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2

from mcpkeeper.proxy._replies import LocalReply
from mcpkeeper.proxy._upstream import (
    Upstream,
    UpstreamBroken,
    UpstreamResponse,
    UpstreamTimeout,
    UpstreamUnreachable,
)

__all__ = ["BridgeTransport"]

# Set by the connection itself (the Upstream writes its own Host and body framing).
_NOT_SENT = frozenset({b"host", b"content-length", b"transfer-encoding", b"connection"})


class BridgeTransport(httpx2.AsyncBaseTransport):
    """httpx2 requests to the proxy at ``url`` through ``upstream`` (closed with the transport)."""

    def __init__(self, upstream: Upstream, url: str) -> None:
        self._upstream = upstream
        self._url = url

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = await request.aread()
        headers = [(key, value) for key, value in request.headers.raw if key.lower() not in _NOT_SENT]
        try:
            response = await self._upstream.send(request.method, request.url.raw_path, headers, body)
        except (UpstreamUnreachable, UpstreamTimeout) as exc:
            if request.method != "POST":
                raise httpx2.ConnectError(str(exc), request=request) from exc
            reply = LocalReply(
                502,
                "proxy_unreachable",
                f"cannot reach the mcpkeeper proxy at {self._url} ({exc}); is the daemon running?",
            )
            reply_headers, reply_body = reply.render("POST", body)
            return httpx2.Response(reply.status, headers=reply_headers, content=reply_body, request=request)
        return httpx2.Response(
            response.status_code, headers=response.raw_headers, stream=_Body(response), request=request
        )

    async def aclose(self) -> None:
        await self._upstream.aclose()


class _Body(httpx2.AsyncByteStream):
    def __init__(self, response: UpstreamResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_raw():
                yield chunk
        except UpstreamBroken as exc:
            raise httpx2.ReadError(str(exc)) from exc

    async def aclose(self) -> None:
        await self._response.aclose()
