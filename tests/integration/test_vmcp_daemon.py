"""The aggregated endpoint of a real daemon process, with OAuth-protected workloads.

Two workloads behind fixture authorization servers; one of them loses its token endpoint
to a WAF (HTML 403), or its grant is revoked, while an MCP client stays connected to the
vMCP: its tools stay listed, calls to it fail at once with ``retry_after`` (or a login
hint), the other workload keeps working, and recovery needs no reconnect.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp import Client

from mcpkeeper.auth.token import Token
from mcpkeeper.testing import FixtureAuthServer, FixtureMCPServer
from mcpkeeper.vmcp.results import RETRY_AFTER_META, STATUS_META
from mcpkeeper.vmcp.runfile import VMCPInfo, read_vmcp_info
from tests.integration.daemon_support import FAST_TIMINGS, DaemonProcess, store_login, wait_for

pytestmark = pytest.mark.integration


#: The monitor's background tick is a minute: a workload that recovers within a test did
#: so because calls through the vMCP reached its proxy, which counts as demand.
_SLOW_TICK = {**FAST_TIMINGS, "MCPKEEPER_TOKEN_AUTH_RETRYING_TICK_INTERVAL": "60s"}


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[DaemonProcess]:
    async with DaemonProcess(tmp_path, _SLOW_TICK) as process:
        yield process


async def _vmcp_info(daemon: DaemonProcess) -> VMCPInfo:
    async def recorded() -> bool:
        info = read_vmcp_info(daemon.home)
        return info is not None and info.pid == daemon.pid

    await wait_for(recorded, timeout=8.0, what="run/vmcp.json of this daemon")
    info = read_vmcp_info(daemon.home)
    assert info is not None
    return info


def _text(result: types.CallToolResult) -> str:
    return " ".join(block.text for block in result.content if isinstance(block, types.TextContent))


async def _echo(client: Client, name: str, text: str) -> types.CallToolResult:
    return await client.call_tool(name, {"text": text})


async def _echoed(client: Client, name: str, text: str) -> str:
    result = await _echo(client, name, text)
    assert not result.is_error, _text(result)
    structured: Any = result.structured_content
    return str(structured["result"])


@dataclass
class TwoWorkloads:
    """Workloads ``steady`` and ``flaky`` in the daemon, and the vMCP URL."""

    url: str
    flaky_auth: FixtureAuthServer
    flaky_mcp: FixtureMCPServer
    flaky_token: Token


@pytest.fixture
async def two(tmp_path: Path, daemon: DaemonProcess) -> AsyncIterator[TwoWorkloads]:
    # flaky's 6 s tokens are handed out only while more than 5 s remain: soon after
    # minting every call needs a refresh, so a failing token endpoint shows at once.
    async with (
        FixtureAuthServer() as steady_auth,
        FixtureMCPServer(steady_auth) as steady_mcp,
        FixtureAuthServer(access_token_lifetime=6.0) as flaky_auth,
        FixtureMCPServer(flaky_auth) as flaky_mcp,
    ):
        store_login(tmp_path, "steady", steady_auth, steady_mcp)
        flaky_token = store_login(tmp_path, "flaky", flaky_auth, flaky_mcp)
        await daemon.client.create_workload("steady", steady_mcp.url)
        await daemon.client.create_workload("flaky", flaky_mcp.url)
        info = await _vmcp_info(daemon)
        assert info.url is not None and info.url == f"http://127.0.0.1:{info.port}/mcp"
        yield TwoWorkloads(info.url, flaky_auth, flaky_mcp, flaky_token)


async def _calls_until_status(daemon: DaemonProcess, client: Client, name: str, status: str) -> None:
    """Keep calling the workload's echo through the vMCP, as a busy client would, until the
    workload's status is ``status`` (each call that reaches the proxy asks for a token)."""

    async def reached() -> bool:
        await _echo(client, f"{name}__echo", "busy")
        return await daemon.status_of(name) == status

    await wait_for(reached, timeout=10.0, interval=0.2, what=f"{name} to be {status}")


async def test_a_degraded_workload_keeps_its_tools_and_its_calls_fail_fast_with_retry_after(
    daemon: DaemonProcess, two: TwoWorkloads
) -> None:
    flaky_auth, flaky_mcp = two.flaky_auth, two.flaky_mcp
    async with Client(two.url) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"steady__echo", "steady__add", "flaky__echo", "flaky__slow"} <= names
        assert await _echoed(client, "flaky__echo", "before") == "before"

        await flaky_auth.set_fault("waf_html_403")
        await _calls_until_status(daemon, client, "flaky", "auth_retrying")
        forwarded = flaky_mcp.tool_calls["echo"]

        result = await _echo(client, "flaky__echo", "during")

        assert result.is_error
        assert result.meta is not None and result.meta[STATUS_META] == "auth_retrying"
        assert isinstance(result.meta[RETRY_AFTER_META], int) and result.meta[RETRY_AFTER_META] >= 1
        data: Any = result.structured_content
        assert data["retry_after"] == result.meta[RETRY_AFTER_META] and data["workload"] == "flaky"
        assert "authorization is retried" in _text(result) and "403" in _text(result)
        assert two.flaky_token.access_token not in _text(result)
        assert flaky_mcp.tool_calls["echo"] == forwarded  # the tool did not run
        detail = await daemon.client.get_workload("flaky")
        assert detail["status"] == "auth_retrying" and detail["health"] == "degraded"
        # Still advertised; the other workload is untouched.
        assert {"flaky__echo", "steady__echo"} <= {t.name for t in (await client.list_tools()).tools}
        assert await _echoed(client, "steady__echo", "meanwhile") == "meanwhile"

        # Calls through the vMCP are demand: they bring the workload back long before the tick.
        await flaky_auth.set_fault("ok")
        await _calls_until_status(daemon, client, "flaky", "running")
        assert await _echoed(client, "flaky__echo", "after") == "after"


async def test_an_unauthenticated_workload_keeps_its_tools_and_calls_say_log_in(
    daemon: DaemonProcess, two: TwoWorkloads
) -> None:
    async with Client(two.url) as client:
        assert "flaky__echo" in {t.name for t in (await client.list_tools()).tools}
        await two.flaky_auth.set_fault("invalid_grant")  # the grant was revoked
        await _calls_until_status(daemon, client, "flaky", "unauthenticated")

        result = await _echo(client, "flaky__echo", "revoked")

        assert result.is_error and "mcpkeeper login flaky" in _text(result)
        assert result.meta is not None and result.meta[STATUS_META] == "unauthenticated"
        assert RETRY_AFTER_META not in result.meta  # waiting will not help
        assert "flaky__echo" in {t.name for t in (await client.list_tools()).tools}
        assert await _echoed(client, "steady__echo", "still") == "still"


async def test_the_vmcp_url_survives_a_daemon_restart(tmp_path: Path) -> None:
    async with FixtureMCPServer(require_auth=False) as mcp:
        async with DaemonProcess(tmp_path, FAST_TIMINGS) as first:
            await first.client.create_workload("open", mcp.url, auth=False)
            before = await _vmcp_info(first)
            assert before.url is not None
            async with Client(before.url) as client:
                assert await _echoed(client, "open__echo", "first") == "first"
            assert await first.terminate() == 0
        after_shutdown = read_vmcp_info(tmp_path)
        assert after_shutdown is not None and after_shutdown.pid is None  # nothing serves it now
        assert after_shutdown.port == before.port
        assert os.stat(tmp_path / "run" / "vmcp.json").st_mode & 0o777 == 0o600

        async with DaemonProcess(tmp_path, FAST_TIMINGS) as second:
            again = await _vmcp_info(second)
            assert again.url == before.url
            await second.wait_status("open", "running")
            async with Client(again.url) as client:
                assert await _echoed(client, "open__echo", "second") == "second"


async def test_a_taken_vmcp_port_is_reported_and_the_workloads_still_run(tmp_path: Path) -> None:
    async with FixtureMCPServer(require_auth=False) as mcp:
        taken = mcp.port  # certainly in use: the fixture listens there
        async with DaemonProcess(tmp_path, {**FAST_TIMINGS, "MCPKEEPER_VMCP_PORT": str(taken)}) as daemon:
            info = await _vmcp_info(daemon)
            assert info.url is None and info.error is not None and str(taken) in info.error
            created = await daemon.client.create_workload("open", mcp.url, auth=False)
            assert created["status"] == "running"


async def test_a_daemon_restarted_during_an_outage_still_lists_the_degraded_workload(tmp_path: Path) -> None:
    async with FixtureAuthServer() as auth, FixtureMCPServer(auth) as mcp:
        store_login(tmp_path, "blocked", auth, mcp)
        async with DaemonProcess(tmp_path, FAST_TIMINGS) as first:
            await first.client.create_workload("blocked", mcp.url)
            info = await _vmcp_info(first)
            assert info.url is not None
            async with Client(info.url) as client:
                assert "blocked__echo" in {t.name for t in (await client.list_tools()).tools}
            assert await first.terminate() == 0
        # While the daemon is down the token expires and a WAF starts blocking the AS.
        store_login(tmp_path, "blocked", auth, mcp, expires_at=time.time() - 1)
        await auth.set_fault("waf_html_403")

        async with DaemonProcess(tmp_path, FAST_TIMINGS) as second:
            await second.wait_status("blocked", "auth_retrying")
            again = await _vmcp_info(second)
            assert again.url is not None
            async with Client(again.url) as client:
                assert "blocked__echo" in {t.name for t in (await client.list_tools()).tools}
                result = await _echo(client, "blocked__echo", "during")
                assert result.is_error and result.meta is not None, result
                assert result.meta[STATUS_META] == "auth_retrying" and result.meta[RETRY_AFTER_META] >= 1

                await auth.set_fault("ok")
                await _calls_until_status(second, client, "blocked", "running")
                assert await _echoed(client, "blocked__echo", "after") == "after"
