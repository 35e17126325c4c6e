"""What the token-injecting proxy refuses to forward, against a real upstream over loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from starlette.types import Receive, Scope, Send

from mcpkeeper.proxy import create_proxy_app
from mcpkeeper.testing import serve_asgi
from tests.integration.proxy_support import FakeProvider

pytestmark = pytest.mark.integration


@dataclass
class RecordingUpstream:
    """Answers 200 to any method and remembers (method, authorization) of every request."""

    seen: list[tuple[str, bytes | None]] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        auth = dict(scope["headers"]).get(b"authorization")
        self.seen.append((scope["method"], auth))
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
async def upstream_and_proxy() -> AsyncIterator[tuple[RecordingUpstream, int]]:
    upstream = RecordingUpstream()
    async with serve_asgi(upstream, lifespan="off") as up:
        proxy = create_proxy_app(up.url + "/mcp", FakeProvider("upstream-token"), name="w")
        async with serve_asgi(proxy, lifespan="off") as served:
            port = int(served.url.rsplit(":", 1)[1])
            yield upstream, port


async def _raw(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        async with asyncio.timeout(5):
            return await reader.readuntil(b"\r\n\r\n")
    finally:
        writer.close()


@pytest.mark.parametrize(
    ("request_line", "status"),
    [
        (b"TRACE /mcp HTTP/1.1", 501),
        (b"CONNECT /mcp HTTP/1.1", 501),
        (b"CONNECT 127.0.0.1:443 HTTP/1.1", 400),  # the parser refuses the authority form itself
    ],
)
async def test_trace_and_connect_are_refused_and_never_reach_the_upstream(
    upstream_and_proxy: tuple[RecordingUpstream, int], request_line: bytes, status: int
) -> None:
    upstream, port = upstream_and_proxy
    answer = await _raw(port, request_line + b"\r\nHost: 127.0.0.1\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 %d " % status), answer
    # An ordinary request afterwards goes through, so the upstream is reachable:
    # what it has not seen was refused, not lost.
    ok = await _raw(port, b"GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200 ")
    assert [method for method, _ in upstream.seen] == ["GET"]
