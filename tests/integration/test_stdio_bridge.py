"""The stdio bridge as a client spawns it: ``python -m mcpkeeper.proxy.stdio_bridge URL``.

The chain is all real: the SDK's stdio client -> the bridge subprocess -> the proxy (uvicorn)
-> the fixture MCP server, with tokens from the fixture authorization server.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp.shared.exceptions import MCPError

from mcpkeeper.auth.errors import AuthRetryingError
from mcpkeeper.proxy import PROXY_ERROR_CODE, create_proxy_app
from mcpkeeper.testing import FixtureAuthServer, FixtureMCPServer, ServedApp, serve_asgi
from tests.integration.proxy_support import (  # fixture_*: importing registers the fixtures
    FakeProvider,
    exercise_fixture_tools,
    fixture_auth_server,  # noqa: F401
    fixture_servers,  # noqa: F401
    text_of,
)

pytestmark = pytest.mark.integration

WAIT = 20.0  # bound on a subprocess answering (interpreter start-up included)


@pytest.fixture
def provider(auth_server: FixtureAuthServer) -> FakeProvider:
    return FakeProvider(auth_server.mint("bridge-tests")["access_token"])


def _bridge(url: str) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "mcpkeeper.proxy.stdio_bridge", url])


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_stdio_client_calls_tools_through_the_bridge_and_the_proxy(
    mcp_server: FixtureMCPServer, provider: FakeProvider, mode: str
) -> None:
    async with (
        serve_asgi(create_proxy_app(mcp_server.url, provider, name="fixture")) as proxy,
        Client(_bridge(proxy.url + "/mcp"), mode=mode, read_timeout_seconds=WAIT) as client,
    ):
        await exercise_fixture_tools(client, "over stdio")
    assert mcp_server.saw_token(provider.tokens[0])
    assert mcp_server.tool_calls["echo"] == 1


async def test_a_503_becomes_an_error_for_that_call_and_the_bridge_keeps_running(
    mcp_server: FixtureMCPServer, provider: FakeProvider
) -> None:
    async with (
        serve_asgi(create_proxy_app(mcp_server.url, provider, name="fixture")) as proxy,
        Client(_bridge(proxy.url + "/mcp"), mode="legacy", read_timeout_seconds=WAIT) as client,
    ):
        provider.error = AuthRetryingError("token endpoint answered HTTP 429", retry_after=12.3)
        with pytest.raises(MCPError) as refused:
            await client.call_tool("echo", {"text": "lost"})
        provider.error = None
        recovered = await client.call_tool("echo", {"text": "back"})
    assert refused.value.code == PROXY_ERROR_CODE
    assert refused.value.error.data == {"status": "auth_retrying", "http_status": 503, "retry_after": 13}
    assert text_of(recovered) == "back"


async def test_the_bridge_survives_the_proxy_going_away_and_coming_back(
    mcp_server: FixtureMCPServer, provider: FakeProvider
) -> None:
    proxy = ServedApp(create_proxy_app(mcp_server.url, provider, name="fixture"))
    async with proxy, Client(_bridge(proxy.url + "/mcp"), mode="legacy", read_timeout_seconds=WAIT) as client:
        await client.call_tool("echo", {"text": "first"})
        await proxy.stop_listening()
        with pytest.raises(MCPError) as unreachable:
            await client.call_tool("echo", {"text": "lost"})
        await proxy.start_listening()
        recovered = await client.call_tool("echo", {"text": "again"})
    assert "cannot reach the mcpkeeper proxy" in unreachable.value.message
    assert unreachable.value.error.data["status"] == "proxy_unreachable"
    assert text_of(recovered) == "again"


async def test_raw_lines_garbage_is_skipped_and_answers_are_drained_after_stdin_closes(
    mcp_server: FixtureMCPServer, provider: FakeProvider
) -> None:
    async with serve_asgi(create_proxy_app(mcp_server.url, provider, name="fixture")) as proxy:
        bridge = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mcpkeeper.proxy.stdio_bridge",
            proxy.url + "/mcp",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert bridge.stdin is not None and bridge.stdout is not None and bridge.stderr is not None
        try:
            lines = [
                "this is not json",
                _rpc(1, "initialize", protocolVersion="2025-06-18", capabilities={}, clientInfo=_INFO),
            ]
            bridge.stdin.write("\n".join(lines).encode() + b"\n")
            await bridge.stdin.drain()
            init = await _read_message(bridge.stdout)
            assert init["id"] == 1
            assert init["result"]["protocolVersion"] == "2025-06-18"

            bridge.stdin.write(_rpc(None, "notifications/initialized").encode() + b"\n")
            bridge.stdin.write(
                _rpc("call-2", "tools/call", name="slow", arguments={"seconds": 0.2}).encode() + b"\n"
            )
            bridge.stdin.close()  # EOF while the call is still running upstream
            answer = await _read_message(bridge.stdout)
            status = await asyncio.wait_for(bridge.wait(), WAIT)
            stderr = (await bridge.stderr.read()).decode()
        finally:
            if bridge.returncode is None:
                bridge.kill()
                await bridge.wait()
    assert answer["id"] == "call-2"
    assert answer["result"]["content"][0]["text"] == "slept 0.2s"
    assert status == 0
    assert "not a JSON-RPC message" in stderr
    assert provider.tokens[0] not in stderr


_INFO = {"name": "raw-test", "version": "0"}


def _rpc(request_id: Any, method: str, **params: Any) -> str:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if request_id is not None:
        message["id"] = request_id
    if params:
        message["params"] = params
    return json.dumps(message)


async def _read_message(stdout: asyncio.StreamReader) -> dict[str, Any]:
    line = await asyncio.wait_for(stdout.readline(), WAIT)
    assert line, "the bridge closed stdout"
    message: dict[str, Any] = json.loads(line)
    return message


async def test_stdin_from_a_regular_file_falls_back_to_the_sdk_transport(
    mcp_server: FixtureMCPServer, provider: FakeProvider, tmp_path: Path
) -> None:
    """The event loop cannot watch a regular file; the bridge then reads it as the SDK does."""
    requests = tmp_path / "requests.jsonl"
    init = _rpc(1, "initialize", protocolVersion="2025-06-18", capabilities={}, clientInfo=_INFO)
    requests.write_text(init + "\n")
    async with serve_asgi(create_proxy_app(mcp_server.url, provider, name="fixture")) as proxy:
        with requests.open("rb") as stdin:
            bridge = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "mcpkeeper.proxy.stdio_bridge",
                proxy.url + "/mcp",
                stdin=stdin,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
        assert bridge.stdout is not None
        try:
            answer = await _read_message(bridge.stdout)
            status = await asyncio.wait_for(bridge.wait(), WAIT)
        finally:
            if bridge.returncode is None:
                bridge.kill()
                await bridge.wait()
    assert answer["id"] == 1 and answer["result"]["protocolVersion"] == "2025-06-18"
    assert status == 0
