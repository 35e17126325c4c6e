"""WorkloadRuntime on its own, as ``mcpkeeper proxy URL`` uses it (no daemon, no manager)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mcpkeeper.net import PortInUseError, bind_loopback, free_port
from mcpkeeper.state.status_store import StatusStore
from mcpkeeper.state.workload_store import WorkloadConfig
from mcpkeeper.testing import FixtureAuthServer, FixtureMCPServer
from mcpkeeper.workloads.runtime import WorkloadRuntime
from tests.integration.daemon_support import call_echo, store_login

pytestmark = pytest.mark.integration


async def test_standalone_runtime_serves_reports_and_closes(tmp_path: Path) -> None:
    async with FixtureAuthServer() as auth, FixtureMCPServer(auth) as mcp:
        store_login(tmp_path, "fg", auth, mcp)
        config = WorkloadConfig(name="fg", remote_url=mcp.url, port=free_port(), issuer=auth.issuer)
        statuses = StatusStore(tmp_path)

        async with WorkloadRuntime(config, home=tmp_path) as runtime:
            assert runtime.url == f"http://127.0.0.1:{config.port}/mcp"
            record = statuses.get("fg")
            assert record is not None and record.status == "running"
            assert await call_echo(runtime.url, "foreground") == "foreground"
            snapshot = runtime.snapshot()
            assert snapshot is not None and snapshot.state == "fresh"

            waiter = asyncio.create_task(runtime.wait_closed())
            await asyncio.sleep(0)
            assert not waiter.done()
            await runtime.close()
            async with asyncio.timeout(5):
                await waiter  # a deliberate close ends the wait without an error

        record = statuses.get("fg")
        assert record is not None and record.status == "stopped"
        assert [t.status for t in statuses.history("fg")] == ["starting", "running", "stopping", "stopped"]


async def test_a_taken_port_fails_the_start_with_a_clear_error(tmp_path: Path) -> None:
    async with FixtureMCPServer(require_auth=False) as mcp:
        with bind_loopback(0) as busy:
            port = busy.getsockname()[1]
            config = WorkloadConfig(name="busy", remote_url=mcp.url, port=port)
            with pytest.raises(PortInUseError, match=f"port {port} on 127.0.0.1 is already in use"):
                await WorkloadRuntime(config, home=tmp_path).start()
        record = StatusStore(tmp_path).get("busy")
        assert record is not None and record.status == "starting"  # the owner reports the failure
