"""The stdio bridge's way to a proxy app in its own process (``proxy --stdio``): no socket.

The SDK client's streamable-HTTP transport runs over :class:`BridgeTransport` with an
:class:`InProcessUpstream`, against the real proxy app and the fixture MCP server; then the
in-process upstream's own contract with small ASGI apps (streaming, hang-up, failures).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2
import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from starlette.types import ASGIApp, Receive, Scope, Send

from mcpkeeper.auth.errors import AuthRetryingError
from mcpkeeper.proxy import PROXY_ERROR_CODE, create_proxy_app
from mcpkeeper.proxy._bridge_transport import BridgeTransport
from mcpkeeper.proxy._http1 import UpstreamBroken
from mcpkeeper.proxy._in_process import InProcessUpstream, SameProcessFirst
from mcpkeeper.proxy._rewrite import Origin
from mcpkeeper.testing import FixtureAuthServer, FixtureMCPServer
from tests.integration.proxy_support import (  # fixture_*: importing registers the fixtures
    FakeProvider,
    exercise_fixture_tools,
    fixture_auth_server,  # noqa: F401
    fixture_servers,  # noqa: F401
    text_of,
)

pytestmark = pytest.mark.integration

LOCAL = "http://127.0.0.1:9/mcp"  # never listened on: every request stays in this process
ORIGIN = Origin.of(LOCAL)
assert ORIGIN is not None
WAIT = 10.0


def _client(upstream: InProcessUpstream) -> Client:
    http = httpx2.AsyncClient(transport=BridgeTransport(upstream, LOCAL), timeout=httpx2.Timeout(WAIT))
    return Client(streamable_http_client(LOCAL, http_client=http), mode="legacy")


async def test_the_sdk_client_reaches_the_fixture_server_through_the_app_in_process(
    auth_server: FixtureAuthServer, mcp_server: FixtureMCPServer
) -> None:
    provider = FakeProvider(auth_server.mint("in-process")["access_token"])
    app = create_proxy_app(mcp_server.url, provider, name="fixture")
    try:
        async with _client(InProcessUpstream(app, ORIGIN)) as client:
            await exercise_fixture_tools(client, "in process")
            provider.error = AuthRetryingError("token endpoint answered HTTP 429", retry_after=5)
            with pytest.raises(MCPError) as refused:
                await client.call_tool("echo", {"text": "lost"})
            provider.error = None
            assert text_of(await client.call_tool("echo", {"text": "back"})) == "back"
    finally:
        await app.aclose()
    assert mcp_server.saw_token(provider.tokens[0])
    assert refused.value.code == PROXY_ERROR_CODE
    assert refused.value.error.data["status"] == "auth_retrying"


async def test_the_body_streams_while_the_app_runs_and_closing_early_is_a_hang_up() -> None:
    release = asyncio.Event()
    received: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        received.append((await receive())["type"])
        assert dict(scope["headers"])[b"host"] == b"127.0.0.1:9"
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-a", b"1")]})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        received.append((await receive())["type"])  # waits until the reader hangs up
        release.set()

    upstream = InProcessUpstream(app, ORIGIN)
    response = await upstream.send("POST", b"/mcp?x=1", [(b"content-type", b"application/json")], b"{}")
    assert (response.status_code, response.raw_headers) == (200, [(b"x-a", b"1")])
    chunks = response.aiter_raw()
    assert await asyncio.wait_for(anext(chunks), WAIT) == b"first"
    assert not response.complete
    await response.aclose()
    await asyncio.wait_for(release.wait(), WAIT)
    assert received == ["http.request", "http.disconnect"]
    await upstream.aclose()


async def test_an_app_failing_before_it_answers_is_a_500_and_after_a_broken_body() -> None:
    async def fails_at_once(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    async def fails_midway(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise RuntimeError("boom")

    at_once = await InProcessUpstream(fails_at_once, ORIGIN).send("GET", b"/", [], b"")
    assert at_once.status_code == 500
    assert [chunk async for chunk in at_once.aiter_raw()] == []

    midway = await InProcessUpstream(fails_midway, ORIGIN).send("GET", b"/", [], b"")
    seen: list[bytes] = []
    with pytest.raises(UpstreamBroken):
        async for chunk in midway.aiter_raw():
            seen.append(chunk)
    assert seen == [b"part"]


async def test_closing_the_upstream_cancels_streams_nobody_closed() -> None:
    cancelled = asyncio.Event()

    async def endless(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    upstream = InProcessUpstream(endless, ORIGIN)
    await upstream.send("GET", b"/mcp", [], b"")
    await asyncio.wait_for(upstream.aclose(), WAIT)
    assert cancelled.is_set() and upstream.is_closed
    with pytest.raises(RuntimeError, match="closed"):
        await upstream.send("GET", b"/mcp", [], b"")


async def test_same_process_first_follows_which_app_this_process_hosts() -> None:
    """A stdio host's bridge goes in process while it hosts, through the port otherwise."""
    hosted: list[str] = []

    def app_named(name: str) -> ASGIApp:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            hosted.append(name)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": name.encode()})

        return app

    class Elsewhere:
        def __init__(self) -> None:
            self.timeout: dict[str, float | None] = {}
            self.is_closed = False
            self.sent = 0

        async def send(self, method: str, target: bytes, headers: Any, body: Any) -> Any:
            self.sent += 1
            return await InProcessUpstream(app_named("elsewhere"), ORIGIN).send(method, target, headers, body)

        async def aclose(self) -> None:
            self.is_closed = True

    current: list[ASGIApp | None] = [None]
    elsewhere = Elsewhere()
    upstream = SameProcessFirst(lambda: current[0], ORIGIN, elsewhere)
    for app in (None, app_named("first host"), None, app_named("taken over")):
        current[0] = app
        response = await upstream.send("POST", b"/mcp", [], b"{}")
        assert [chunk async for chunk in response.aiter_raw()]
    await upstream.aclose()
    assert hosted == ["elsewhere", "first host", "elsewhere", "taken over"]
    assert elsewhere.sent == 2 and upstream.is_closed
