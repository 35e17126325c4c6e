"""The manager's supervisor around a real runtime: a workload that cannot start (its port
taken by another process) is retried with back-off, ends in ``error``, and comes back on
``restart`` once the port is free. In-process, with a fast restart policy."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from mcpkeeper.state.statuses import WorkloadStatus
from mcpkeeper.testing import FixtureMCPServer
from mcpkeeper.workloads.manager import WorkloadManager
from mcpkeeper.workloads.supervisor import RestartPolicy
from tests.integration.daemon_support import call_echo, wait_for

pytestmark = pytest.mark.integration

_FAST = RestartPolicy(initial_backoff=0.05, max_backoff=0.1, max_restarts=3, stable_after=30.0)


async def test_a_workload_whose_port_is_taken_is_retried_then_errors_then_restarts(tmp_path: Path) -> None:
    async with FixtureMCPServer(require_auth=False) as mcp:
        manager = WorkloadManager(tmp_path, restart_policy=_FAST)
        try:
            config = await manager.create("w", mcp.url, auth=False)
            assert config.port is not None
            await manager.stop("w")
            with socket.socket() as squatter:
                squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                squatter.bind(("127.0.0.1", config.port))
                squatter.listen()

                await manager.start("w")

                async def gave_up() -> bool:
                    record = manager.status("w")
                    return record is not None and record.status is WorkloadStatus.ERROR

                await wait_for(gave_up, timeout=5.0, what="status error")
            record = manager.status("w")
            assert record is not None
            assert "failed 4 times in a row" in record.status_context
            assert f"port {config.port}" in record.status_context
            assert "mcpkeeper restart w" in record.status_context
            retries = [t for t in manager.history("w") if t.status is WorkloadStatus.UNHEALTHY]
            assert [t.status_context.rsplit("(", 1)[1] for t in retries] == [
                "attempt 1/3)",
                "attempt 2/3)",
                "attempt 3/3)",
            ]
            assert not manager.is_active("w")

            await manager.restart("w")  # the port is free again

            record = manager.status("w")
            assert record is not None and record.status is WorkloadStatus.RUNNING
            assert await call_echo(f"http://127.0.0.1:{config.port}/mcp", "back") == "back"
        finally:
            await manager.shutdown()


async def test_stop_while_restarting_ends_the_retries(tmp_path: Path) -> None:
    slow = RestartPolicy(initial_backoff=30.0, max_backoff=30.0, max_restarts=3)
    async with FixtureMCPServer(require_auth=False) as mcp:
        manager = WorkloadManager(tmp_path, restart_policy=slow)
        try:
            config = await manager.create("w", mcp.url, auth=False)
            await manager.stop("w")
            assert config.port is not None
            with socket.socket() as squatter:
                squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                squatter.bind(("127.0.0.1", config.port))
                squatter.listen()
                await manager.start("w")
                record = manager.status("w")
                assert record is not None and record.status is WorkloadStatus.UNHEALTHY

                async with asyncio.timeout(5):
                    await manager.stop("w")  # does not wait out the 30 s back-off

            record = manager.status("w")
            assert record is not None and record.status is WorkloadStatus.STOPPED
            assert not manager.is_active("w")
        finally:
            await manager.shutdown()
