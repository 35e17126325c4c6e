"""MCP traffic through the proxy: the official SDK client, the fixture MCP server and AS.

Everything is real HTTP on loopback; the only stand-in is the TokenProvider, which hands
out tokens minted by the fixture authorization server (the monitor is tested elsewhere).
"""

from __future__ import annotations

from typing import Any

import pytest
from mcp.client import Client
from mcp.client.sse import sse_client
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError

from mcpkeeper.auth.errors import AuthRetryingError, UnauthenticatedError
from mcpkeeper.proxy import PROXY_ERROR_CODE, create_proxy_app
from mcpkeeper.testing import FixtureAuthServer, FixtureMCPServer, serve_asgi
from tests.integration.proxy_support import (  # fixture_*: importing registers the fixtures
    FakeProvider,
    exercise_fixture_tools,
    fixture_auth_server,  # noqa: F401
    fixture_servers,  # noqa: F401
    text_of,
)

pytestmark = pytest.mark.integration


def _mint(auth_server: FixtureAuthServer) -> str:
    token: str = auth_server.mint("proxy-tests")["access_token"]
    return token


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_sdk_client_calls_tools_through_the_proxy(
    auth_server: FixtureAuthServer, mcp_server: FixtureMCPServer, mode: str
) -> None:
    token = _mint(auth_server)
    provider = FakeProvider(token)
    async with (
        serve_asgi(create_proxy_app(mcp_server.url, provider, name="fixture")) as proxy,
        Client(proxy.url + "/mcp", mode=mode) as client,
    ):
        await exercise_fixture_tools(client, "through the proxy")
    assert mcp_server.tool_calls["echo"] == 1
    assert mcp_server.saw_token(token)
    assert mcp_server.seen_token_count == 1
    assert mcp_server.statuses[401] == 0


async def test_revoked_token_is_refreshed_once_and_the_call_replayed(
    auth_server: FixtureAuthServer, mcp_server: FixtureMCPServer
) -> None:
    first, second = _mint(auth_server), _mint(auth_server)
    provider = FakeProvider(first, second)
    async with (
        serve_asgi(create_proxy_app(mcp_server.url, provider, name="fixture")) as proxy,
        Client(proxy.url + "/mcp", mode="legacy") as client,
    ):
        await client.call_tool("echo", {"text": "before"})
        assert auth_server.revoke_access_token(first)
        result = await client.call_tool("echo", {"text": "after revocation"})
    assert text_of(result) == "after revocation"
    assert provider.rejected == [first]
    assert mcp_server.statuses[401] == 1  # seen by the proxy only, never by the client
    assert mcp_server.tool_calls["echo"] == 2


async def test_auth_retrying_reaches_the_sdk_client_as_an_error_with_retry_after(
    auth_server: FixtureAuthServer, mcp_server: FixtureMCPServer
) -> None:
    provider = FakeProvider(_mint(auth_server))
    async with (
        serve_asgi(create_proxy_app(mcp_server.url, provider, name="fixture")) as proxy,
        Client(proxy.url + "/mcp", mode="legacy") as client,
    ):
        provider.error = AuthRetryingError("token endpoint answered HTTP 503", retry_after=12.3)
        with pytest.raises(MCPError) as retrying:
            await client.call_tool("echo", {"text": "lost"})
        provider.error = UnauthenticatedError("invalid_grant")
        with pytest.raises(MCPError) as dead:
            await client.call_tool("echo", {"text": "lost"})
        provider.error = None
        recovered = await client.call_tool("echo", {"text": "back"})
    assert retrying.value.code == PROXY_ERROR_CODE
    assert retrying.value.error.data == {"status": "auth_retrying", "http_status": 503, "retry_after": 13}
    assert dead.value.error.data == {"status": "unauthenticated", "http_status": 503}
    assert "mcpkeeper login fixture" in dead.value.message
    assert text_of(recovered) == "back"
    assert mcp_server.tool_calls["echo"] == 1


async def test_legacy_http_sse_transport_through_the_proxy() -> None:
    server: MCPServer[Any] = MCPServer("legacy-sse", log_level="WARNING")

    @server.tool()
    def echo(text: str) -> str:
        return text

    async with (
        serve_asgi(server.sse_app()) as upstream,
        serve_asgi(create_proxy_app(upstream.url + "/sse", None)) as proxy,
        Client(sse_client(proxy.url + "/sse"), mode="legacy") as client,
    ):
        result = await client.call_tool("echo", {"text": "over HTTP+SSE"})
    assert text_of(result) == "over HTTP+SSE"
