"""Shared by the proxy and stdio-bridge tests: the TokenProvider seam (faked) and the fixture servers.

A test module that wants the fixtures ``auth_server`` and ``mcp_server`` imports
``fixture_auth_server`` and ``fixture_servers`` (importing them registers the fixtures).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from mcp.client import Client

from mcpkeeper.auth.errors import TokenUnavailableError
from mcpkeeper.auth.token import Token
from mcpkeeper.testing import FixtureAuthServer, FixtureMCPServer


@pytest.fixture(name="auth_server")
async def fixture_auth_server() -> AsyncIterator[FixtureAuthServer]:
    async with FixtureAuthServer() as server:
        yield server


@pytest.fixture(name="mcp_server")
async def fixture_servers(auth_server: FixtureAuthServer) -> AsyncIterator[FixtureMCPServer]:
    async with FixtureMCPServer(auth_server) as server:
        yield server


class FakeProvider:
    """The TokenProvider seam: hands out ``tokens[i]``; ``force_refresh`` moves to the next one."""

    def __init__(self, *tokens: str, error: TokenUnavailableError | None = None) -> None:
        self.tokens = list(tokens) or ["token-0"]
        self.index = 0
        self.error = error
        self.refresh_error: TokenUnavailableError | None = None
        self.rejected: list[str] = []
        self.token_calls = 0

    async def token(self) -> Token:
        self.token_calls += 1
        if self.error is not None:
            raise self.error
        return Token(access_token=self.tokens[self.index])

    async def force_refresh(self, rejected: Token) -> Token:
        self.rejected.append(rejected.access_token)
        if self.refresh_error is not None:
            raise self.refresh_error
        self.index = min(self.index + 1, len(self.tokens) - 1)
        return Token(access_token=self.tokens[self.index])


async def exercise_fixture_tools(client: Client, text: str) -> None:
    """List the fixture MCP server's tools and call ``echo`` and ``add``, as any MCP client would."""
    tools = await client.list_tools()
    assert {tool.name for tool in tools.tools} >= {"echo", "add", "slow"}
    assert text_of(await client.call_tool("echo", {"text": text})) == text
    assert text_of(await client.call_tool("add", {"a": 40, "b": 2})) == "42"


def text_of(result: Any) -> str:
    """The text of a tool result's first content block."""
    text: str = result.content[0].text
    return text
