"""The fixture MCP server, used through real HTTP and the official ``mcp`` client."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qs, urlsplit

import httpx
import httpx2
import pytest
from mcp.client.auth import OAuthClientProvider
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)
from mcp_types import TextContent

from mcpkeeper.testing import FixtureAuthServer, FixtureMCPServer
from mcpkeeper.testing.clock import VirtualClock

pytestmark = pytest.mark.integration


@pytest.fixture
async def auth() -> AsyncIterator[FixtureAuthServer]:
    async with FixtureAuthServer() as server:
        yield server


@pytest.fixture
async def upstream(auth: FixtureAuthServer) -> AsyncIterator[FixtureMCPServer]:
    async with FixtureMCPServer(auth) as server:
        yield server


@asynccontextmanager
async def mcp_session(
    url: str, *, token: str | None = None, auth: httpx2.Auth | None = None
) -> AsyncIterator[ClientSession]:
    """An initialized official-SDK client session over streamable HTTP."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, auth=auth, timeout=10.0) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def text_of(result: object) -> str:
    content = getattr(result, "content", [])
    assert content and isinstance(content[0], TextContent)
    return content[0].text


async def test_401_with_resource_metadata_without_a_valid_token(upstream: FixtureMCPServer) -> None:
    async with httpx.AsyncClient(timeout=5.0) as http:
        missing = await http.post(upstream.url, json={})
        invalid = await http.post(upstream.url, json={}, headers={"Authorization": "Bearer fxat_bogus"})
    for response in (missing, invalid):
        assert response.status_code == 401
        challenge = response.headers["www-authenticate"]
        assert challenge.startswith("Bearer ")
        assert f'resource_metadata="{upstream.resource_metadata_url}"' in challenge
    assert upstream.statuses[401] == 2
    assert upstream.last_authorization_present is True
    assert upstream.saw_token("fxat_bogus")
    assert upstream.tool_calls.total() == 0


async def test_protected_resource_metadata_at_both_paths(
    auth: FixtureAuthServer, upstream: FixtureMCPServer
) -> None:
    assert upstream.url == f"http://127.0.0.1:{upstream.port}/mcp"
    assert (
        upstream.resource_metadata_url
        == f"http://127.0.0.1:{upstream.port}/.well-known/oauth-protected-resource/mcp"
    )
    async with httpx.AsyncClient(timeout=5.0) as http:
        for url in (
            upstream.resource_metadata_url,
            upstream.base_url + "/.well-known/oauth-protected-resource",
        ):
            response = await http.get(url)
            assert response.status_code == 200
            meta = response.json()
            assert meta["resource"] == upstream.url
            assert meta["authorization_servers"] == [auth.issuer]  # exactly, no trailing slash
            assert meta["scopes_supported"] == ["mcp"]
    assert upstream.last_authorization_present is False


async def test_tools_through_the_official_client_with_a_minted_token(
    auth: FixtureAuthServer, upstream: FixtureMCPServer
) -> None:
    token = auth.mint("cli", resource=upstream.url)["access_token"]
    async with mcp_session(upstream.url, token=token) as session:
        tools = {tool.name for tool in (await session.list_tools()).tools}
        assert {"echo", "add", "slow"} <= tools
        assert text_of(await session.call_tool("echo", {"text": "héllo"})) == "héllo"
        assert text_of(await session.call_tool("add", {"a": 2, "b": 40})) == "42"
        assert text_of(await session.call_tool("slow", {"seconds": 0.05})) == "slept 0.05s"
    assert upstream.tool_calls == {"echo": 1, "add": 1, "slow": 1}
    assert upstream.saw_token(token)
    assert upstream.seen_token_count == 1
    assert upstream.last_authorization_present is True
    assert upstream.statuses[401] == 0
    assert upstream.mcp_requests == upstream.requests > 0
    upstream.reset_counters()
    assert upstream.requests == 0 and not upstream.saw_token(token)


async def test_tokens_for_another_resource_revoked_or_without_scope_are_refused(
    auth: FixtureAuthServer, upstream: FixtureMCPServer
) -> None:
    other_resource = auth.mint("cli", resource="http://127.0.0.1:1/mcp")["access_token"]
    revoked = auth.mint("cli")["access_token"]
    auth.revoke_access_token(revoked)
    no_scope = auth.mint("cli", scope="offline_access")["access_token"]
    async with httpx.AsyncClient(timeout=5.0) as http:
        for token, status in ((other_resource, 401), (revoked, 401), (no_scope, 403)):
            response = await http.post(
                upstream.url,
                json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"},
            )
            assert response.status_code == status, token[:8]
    assert upstream.statuses == {401: 2, 403: 1}


async def test_expired_token_is_refused_on_the_auth_servers_clock() -> None:
    clock = VirtualClock()
    async with (
        FixtureAuthServer(access_token_lifetime=60, clock=clock) as auth,
        FixtureMCPServer(auth) as upstream,
    ):
        token = auth.mint("cli")["access_token"]
        async with mcp_session(upstream.url, token=token) as session:
            assert text_of(await session.call_tool("echo", {"text": "before"})) == "before"
        await clock.advance(61)
        async with httpx.AsyncClient(timeout=5.0) as http:
            response = await http.post(upstream.url, json={}, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401


async def test_open_server_needs_no_auth() -> None:
    async with FixtureMCPServer(require_auth=False) as open_server:
        async with mcp_session(open_server.url) as session:
            assert text_of(await session.call_tool("add", {"a": 1, "b": 1})) == "2"
        async with httpx.AsyncClient(timeout=5.0) as http:
            assert (await http.get(open_server.resource_metadata_url)).status_code == 404
        assert open_server.last_authorization_present is False
    with pytest.raises(ValueError, match="needs a FixtureAuthServer"):
        FixtureMCPServer()


async def test_stop_and_start_listening_keeps_the_port(upstream: FixtureMCPServer) -> None:
    port = upstream.port
    await upstream.stop_listening()
    async with httpx.AsyncClient(timeout=5.0) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(upstream.resource_metadata_url)
        await upstream.start_listening()
        assert upstream.port == port
        assert (await http.get(upstream.resource_metadata_url)).status_code == 200


class _MemoryStorage:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


async def test_the_sdk_oauth_client_logs_in_end_to_end(
    auth: FixtureAuthServer, upstream: FixtureMCPServer
) -> None:
    """Discovery, RFC 7591 registration, authorize with PKCE + state, code exchange: all by the SDK."""
    redirects: list[str] = []

    async def follow_authorize(url: str) -> None:  # the "browser": auto-approve answers 302
        async with httpx.AsyncClient(timeout=5.0) as browser:
            response = await browser.get(url)
        assert response.status_code == 302
        redirects.append(response.headers["location"])

    async def callback() -> AuthorizationCodeResult:
        query = parse_qs(urlsplit(redirects[-1]).query)
        return AuthorizationCodeResult(code=query["code"][0], state=query["state"][0], iss=query["iss"][0])

    storage = _MemoryStorage()
    provider = OAuthClientProvider(
        server_url=upstream.url,
        client_metadata=OAuthClientMetadata.model_validate(
            {"redirect_uris": ["http://127.0.0.1:9/callback"], "client_name": "sdk-test"}
        ),
        storage=storage,
        redirect_handler=follow_authorize,
        callback_handler=callback,
    )
    async with mcp_session(upstream.url, auth=provider) as session:
        assert text_of(await session.call_tool("echo", {"text": "via oauth"})) == "via oauth"
    assert len(redirects) == 1
    assert storage.tokens is not None and storage.client_info is not None
    claims = auth.verify_access_token(storage.tokens.access_token)
    assert claims is not None
    assert claims["aud"] == upstream.url  # the SDK sent RFC 8707 resource
    assert auth.counters.by_outcome == {"ok": 1}
    assert upstream.saw_token(storage.tokens.access_token)


async def test_building_the_server_leaves_the_hosts_logging_alone(auth: FixtureAuthServer) -> None:
    root = logging.getLogger()
    saved = (root.level, root.handlers[:])
    root.handlers.clear()  # an unconfigured host, where logging.basicConfig() would act
    try:
        async with FixtureMCPServer(auth):
            assert root.handlers == []
            assert root.level == saved[0]
    finally:
        root.handlers[:] = saved[1]
