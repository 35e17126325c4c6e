"""The aggregated MCP endpoint in-process: a real WorkloadManager running real workload
proxies in front of fixture MCP servers, the vMCP served on a loopback port, and the
official SDK client connecting to it as any MCP client would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import mcp_types as types
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError

from mcpkeeper.testing import FixtureMCPServer, ServedApp
from mcpkeeper.vmcp.results import RETRY_AFTER_META, STATUS_META
from mcpkeeper.vmcp.runfile import read_vmcp_info
from mcpkeeper.vmcp.service import VMCPService
from mcpkeeper.vmcp.settings import VMCPSettings
from mcpkeeper.workloads.manager import WorkloadManager
from tests.integration.daemon_support import wait_for

pytestmark = pytest.mark.integration

_FIXTURE_TOOLS = {"echo", "add", "slow"}


@dataclass
class Setup:
    manager: WorkloadManager
    url: str
    alpha: FixtureMCPServer
    beta: FixtureMCPServer


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    async with FixtureMCPServer(require_auth=False) as alpha, FixtureMCPServer(require_auth=False) as beta:
        manager = WorkloadManager(tmp_path)
        service = VMCPService(tmp_path, manager, VMCPSettings(call_timeout=10.0))
        try:
            await manager.create("alpha", alpha.url, auth=False)
            await manager.create("beta", beta.url, auth=False)
            await service.start()
            assert service.url is not None
            yield Setup(manager, service.url, alpha, beta)
        finally:
            await service.stop()
            await manager.shutdown()


def _names(tools: types.ListToolsResult) -> set[str]:
    return {tool.name for tool in tools.tools}


def _text(result: types.CallToolResult) -> str:
    return " ".join(block.text for block in result.content if isinstance(block, types.TextContent))


async def _echo(client: Client, name: str, text: str) -> str:
    result = await client.call_tool(name, {"text": text})
    assert not result.is_error, _text(result)
    structured: Any = result.structured_content
    return str(structured["result"])


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_two_workloads_tools_are_listed_namespaced_and_calls_reach_the_right_backend(
    setup: Setup, mode: str
) -> None:
    async with Client(setup.url, mode=mode) as client:
        listing = await client.list_tools()
        expected = {f"{w}__{t}" for w in ("alpha", "beta") for t in _FIXTURE_TOOLS}
        assert _names(listing) == expected
        echo = next(tool for tool in listing.tools if tool.name == "alpha__echo")
        assert echo.description is not None and echo.description.startswith("[alpha] ")
        assert echo.input_schema["properties"].keys() == {"text"}

        assert await _echo(client, "alpha__echo", "to alpha") == "to alpha"
        added = await client.call_tool("beta__add", {"a": 2, "b": 3})

    assert not added.is_error and added.structured_content == {"result": 5}
    assert setup.alpha.tool_calls == {"echo": 1}
    assert setup.beta.tool_calls == {"add": 1}


async def test_an_unknown_tool_is_an_mcp_error(setup: Setup) -> None:
    async with Client(setup.url) as client:
        for name in ("nope", "gamma__echo", "alpha__nope"):
            with pytest.raises(MCPError) as caught:
                await client.call_tool(name, {})
            assert caught.value.code == types.INVALID_PARAMS
            assert name in caught.value.message
        assert await _echo(client, "alpha__echo", "still fine") == "still fine"


async def test_stopped_workload_tools_disappear_removed_ones_are_unknown(setup: Setup) -> None:
    async with Client(setup.url) as client:
        assert "beta__echo" in _names(await client.list_tools())

        await setup.manager.stop("beta")

        assert _names(await client.list_tools()) == {f"alpha__{t}" for t in _FIXTURE_TOOLS}
        refused = await client.call_tool("beta__echo", {"text": "x"})
        assert refused.is_error
        assert "not running" in _text(refused) and "mcpkeeper start beta" in _text(refused)
        assert refused.meta is not None and refused.meta[STATUS_META] == "stopped"
        assert setup.beta.tool_calls["echo"] == 0

        await setup.manager.start("beta")
        assert "beta__echo" in _names(await client.list_tools())
        assert await _echo(client, "beta__echo", "back") == "back"

        await setup.manager.remove("beta")
        assert "beta__echo" not in _names(await client.list_tools())
        with pytest.raises(MCPError) as caught:
            await client.call_tool("beta__echo", {"text": "x"})
        assert caught.value.code == types.INVALID_PARAMS


async def test_a_backend_that_goes_away_is_a_tool_error_and_the_session_goes_on(setup: Setup) -> None:
    async with Client(setup.url) as client:
        await client.list_tools()
        await setup.beta.stop_listening()

        failed = await client.call_tool("beta__echo", {"text": "lost"})

        assert failed.is_error
        assert "beta" in _text(failed)
        assert failed.meta is not None and failed.meta[STATUS_META] == "upstream_unreachable"
        assert RETRY_AFTER_META not in failed.meta  # waiting alone does not bring it back
        assert await _echo(client, "alpha__echo", "unaffected") == "unaffected"

        await setup.beta.start_listening()
        assert await _echo(client, "beta__echo", "recovered") == "recovered"


async def test_tool_lists_are_cached_and_fetched_again_after_a_restart(setup: Setup) -> None:
    async with Client(setup.url) as client:
        await client.list_tools()
        seen = setup.beta.mcp_requests

        await client.list_tools()
        assert setup.beta.mcp_requests == seen  # served from the cache

        await setup.manager.restart("beta")
        await client.list_tools()
        assert setup.beta.mcp_requests > seen  # a restarted workload is asked again


async def test_the_url_is_recorded_and_stays_stable_across_restarts(setup: Setup, tmp_path: Path) -> None:
    info = read_vmcp_info(tmp_path)
    assert info is not None and info.url == setup.url and info.error is None
    assert info.port is not None and info.pid is not None

    again = VMCPService(tmp_path, setup.manager)
    await again.start()  # the first one still holds the port: a new one is chosen
    try:
        moved = read_vmcp_info(tmp_path)
        assert moved is not None and moved.port != info.port and moved.url == again.url
    finally:
        await again.stop()
    stopped = read_vmcp_info(tmp_path)
    assert stopped is not None and stopped.pid is None and stopped.port == moved.port


async def test_a_call_cut_off_by_a_workload_stop_is_a_tool_error(setup: Setup) -> None:
    async with Client(setup.url) as client:
        await client.list_tools()
        in_flight = asyncio.create_task(client.call_tool("beta__slow", {"seconds": 20}))

        async def reached_the_backend() -> bool:
            return setup.beta.tool_calls["slow"] == 1

        await wait_for(reached_the_backend, timeout=5.0, what="the slow call to reach beta")
        await setup.manager.stop("beta")

        async with asyncio.timeout(10.0):
            cut = await in_flight
        assert cut.is_error and "beta" in _text(cut)
        assert await _echo(client, "alpha__echo", "unaffected") == "unaffected"


async def test_requests_from_a_foreign_host_or_origin_are_refused(setup: Setup) -> None:
    # A web page must not reach the user's tools through DNS rebinding or a cross-origin POST.
    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    async with httpx.AsyncClient(timeout=10.0) as http:
        wrong_host = await http.post(setup.url, json=body, headers={**headers, "host": "evil.example"})
        wrong_origin = await http.post(
            setup.url, json=body, headers={**headers, "origin": "http://evil.example"}
        )
    assert wrong_host.status_code == 421
    assert wrong_origin.status_code == 403
    assert setup.alpha.mcp_requests == setup.beta.mcp_requests == 0  # nothing was forwarded


async def test_a_workload_speaking_the_older_sse_transport_is_aggregated_too(tmp_path: Path) -> None:
    legacy = MCPServer("legacy-sse", log_level="WARNING")

    @legacy.tool(description="Return the text unchanged.")
    def echo(text: str) -> str:
        return text

    async with ServedApp(legacy.sse_app(), lifespan="off") as served:
        manager = WorkloadManager(tmp_path)
        service = VMCPService(tmp_path, manager)
        try:
            config = await manager.create("old", f"{served.url}/sse", auth=False)
            # The config's transport (no API sets it yet; a config file may say so).
            manager.configs.put(config.replace(transport="sse"))
            await manager.restart("old")
            await service.start()
            assert service.url is not None
            async with Client(service.url) as client:
                assert {t.name for t in (await client.list_tools()).tools} == {"old__echo"}
                assert await _echo(client, "old__echo", "over sse") == "over sse"
        finally:
            await service.stop()
            await manager.shutdown()


async def test_workload_names_with_the_separator_never_shadow_each_other(tmp_path: Path) -> None:
    # Workload "a" with tool "b__c" and workload "a__b" with tool "c": joined plainly, both
    # are "a__b__c", and which one a client reaches depended on which workloads existed.
    def server(name: str, tool: str) -> MCPServer:
        mcp = MCPServer(name, log_level="WARNING")

        @mcp.tool(name=tool, description="Say which workload answered.")
        def which() -> str:
            return name

        return mcp

    first, second = server("a", "b__c"), server("a__b", "c")
    async with (
        ServedApp(first.streamable_http_app(), lifespan="on") as served_a,
        ServedApp(second.streamable_http_app(), lifespan="on") as served_ab,
    ):
        manager = WorkloadManager(tmp_path)
        service = VMCPService(tmp_path, manager, VMCPSettings(call_timeout=10.0, tools_max_age=0.0))
        try:
            await manager.create("a__b", f"{served_ab.url}/mcp", auth=False)
            await service.start()
            assert service.url is not None
            async with Client(service.url) as client:
                (learnt,) = _names(await client.list_tools())
                await manager.create("a", f"{served_a.url}/mcp", auth=False)
                await wait_for(lambda: _listed(client, 2), timeout=10, what="workload a's tool to be listed")
                names = _names(await client.list_tools())
                assert learnt in names  # the name a client learnt still exists...
                answered = await client.call_tool(learnt, {})
                assert _text(answered) == "a__b"  # ...and still reaches the same tool
                (other,) = names - {learnt}
                assert _text(await client.call_tool(other, {})) == "a"
        finally:
            await service.stop()
            await manager.shutdown()


async def _listed(client: Client, count: int) -> bool:
    return len(_names(await client.list_tools())) == count
