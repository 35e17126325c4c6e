"""The control API's contract over the daemon's real Unix socket: errors, and the
lifecycle endpoints (stop/start/restart, reload-credentials, delete, shutdown)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from mcpkeeper.api.client import DaemonClient, DaemonError, DaemonUnavailableError
from mcpkeeper.api.paths import API_PREFIX, socket_path
from mcpkeeper.auth.credentials import CredentialStore
from mcpkeeper.state.status_store import StatusStore
from mcpkeeper.state.workload_store import WorkloadStore
from mcpkeeper.testing import FixtureAuthServer, FixtureMCPServer
from tests.integration.daemon_support import (
    FAST_TIMINGS,
    DaemonProcess,
    call_echo,
    raw_post,
    store_login,
    wait_for,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[DaemonProcess]:
    async with DaemonProcess(tmp_path, FAST_TIMINGS) as process:
        yield process


async def _raw(home: Path, method: str, path: str, **kwargs: object) -> httpx.Response:
    transport = httpx.AsyncHTTPTransport(uds=str(socket_path(home)))
    async with httpx.AsyncClient(transport=transport, base_url="http://mcpkeeper") as http:
        return await http.request(method, API_PREFIX + path, **kwargs)  # type: ignore[arg-type]


async def test_error_statuses_and_one_line_messages(tmp_path: Path, daemon: DaemonProcess) -> None:
    async with FixtureMCPServer(require_auth=False) as mcp:
        client = daemon.client
        await client.create_workload("open", mcp.url, auth=False)

        cases: list[tuple[str, str, dict[str, object], int, str]] = [
            ("GET", "/workloads/ghost", {}, 404, "no workload named 'ghost'"),
            ("POST", "/workloads/ghost/stop", {}, 404, "no workload named 'ghost'"),
            ("DELETE", "/workloads/ghost", {}, 404, "no workload named 'ghost'"),
            ("POST", "/workloads/open/explode", {}, 404, "unknown action 'explode'"),
            (
                "POST",
                "/workloads",
                {"json": {"name": "open", "remote_url": mcp.url, "auth": False}},
                409,
                "already exists",
            ),
            ("POST", "/workloads", {"json": {"name": "x", "remote_url": "ftp://nowhere"}}, 400, "remote_url"),
            (
                "POST",
                "/workloads",
                {"json": {"name": "../etc", "remote_url": mcp.url}},
                400,
                "invalid workload name",
            ),
            ("POST", "/workloads", {"json": {"remote_url": mcp.url}}, 400, "missing field 'name'"),
            (
                "POST",
                "/workloads",
                {"json": {"name": "p", "remote_url": mcp.url, "port": "80"}},
                400,
                "'port' must be a int",
            ),
            (
                "POST",
                "/workloads",
                {"content": b"{not json", "headers": {"content-type": "application/json"}},
                400,
                "not valid JSON",
            ),
            ("GET", "/nothing-here", {}, 404, "Not Found"),
        ]
        for method, path, kwargs, status, message in cases:
            response = await _raw(tmp_path, method, path, **kwargs)
            assert response.status_code == status, (method, path, response.text)
            body = response.json()
            assert set(body) == {"error"} and message in body["error"], (method, path, body)
            assert "\n" not in body["error"]

        # A port another process listens on, and a port another workload owns.
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            with pytest.raises(DaemonError) as taken:
                await client.create_workload("p1", mcp.url, port=port, auth=False)
        assert taken.value.status == 400 and f"port {port}" in taken.value.message
        owned = (await client.get_workload("open"))["port"]
        with pytest.raises(DaemonError) as clash:
            await client.create_workload("p2", mcp.url, port=owned, auth=False)
        assert clash.value.status == 400 and "'open'" in clash.value.message
        # Refused creations left nothing behind.
        assert [c.name for c in WorkloadStore(tmp_path).list()] == ["open"]


async def test_stop_start_restart_keep_the_port_and_list_hides_stopped(
    tmp_path: Path, daemon: DaemonProcess
) -> None:
    async with FixtureMCPServer(require_auth=False) as mcp:
        client = daemon.client
        created = await client.create_workload("open", mcp.url, auth=False)

        stopped = await client.stop_workload("open")
        assert stopped["status"] == "stopped" and stopped["health"] == "unhealthy"
        assert await client.list_workloads() == []
        assert [w["name"] for w in await client.list_workloads(include_all=True)] == ["open"]
        with pytest.raises(httpx.ConnectError):
            await raw_post(created["url"], {})

        started = await client.start_workload("open")
        assert started["status"] == "running" and started["port"] == created["port"]
        assert await call_echo(created["url"], "back") == "back"

        restarted = await client.restart_workload("open")
        assert restarted["status"] == "running"
        assert await call_echo(created["url"], "again") == "again"
        history = [h["status"] for h in (await client.get_workload("open"))["history"]]
        assert history == [
            "starting",
            "running",
            "stopping",
            "stopped",
            "starting",
            "running",
            "starting",
            "running",
        ]


async def test_without_a_stored_login_the_workload_is_unauthenticated_until_reload(
    tmp_path: Path, daemon: DaemonProcess
) -> None:
    async with FixtureAuthServer() as auth, FixtureMCPServer(auth) as mcp:
        client = daemon.client
        info = await client.create_workload("later", mcp.url)
        assert info["status"] == "unauthenticated" and info["health"] == "unauthenticated"
        assert "mcpkeeper login later" in info["status_context"]
        with pytest.raises(DaemonError) as nothing_yet:
            await client.reload_credentials("later")
        assert nothing_yet.value.status == 400 and "mcpkeeper login later" in nothing_yet.value.message

        store_login(tmp_path, "later", auth, mcp)  # what `mcpkeeper login later` does
        reloaded = await client.reload_credentials("later")

        assert reloaded["status"] == "running"
        assert await call_echo(info["url"], "logged in") == "logged in"


async def test_delete_forgets_config_status_history_and_secrets(
    tmp_path: Path, daemon: DaemonProcess
) -> None:
    async with FixtureAuthServer() as auth, FixtureMCPServer(auth) as mcp:
        store_login(tmp_path, "gone", auth, mcp)
        info = await daemon.client.create_workload("gone", mcp.url)

        await daemon.client.stop_workload("gone")
        stopped = await daemon.client.get_workload("gone")
        assert stopped["auth"]["state"] == "stored" and stopped["auth"]["has_refresh_token"] is True

        await daemon.client.remove_workload("gone")

        assert WorkloadStore(tmp_path).get("gone") is None
        assert StatusStore(tmp_path).get("gone") is None and StatusStore(tmp_path).history("gone") == []
        assert CredentialStore.open(tmp_path).load("gone") is None
        assert await daemon.client.list_workloads(include_all=True) == []
        with pytest.raises(httpx.ConnectError):
            await raw_post(info["url"], {})
        with pytest.raises(DaemonError) as missing:
            await daemon.client.get_workload("gone")
        assert missing.value.status == 404


async def test_health_openapi_and_shutdown(tmp_path: Path, daemon: DaemonProcess) -> None:
    health = await daemon.client.health()
    assert health["status"] == "ok" and health["pid"] == daemon.pid and health["version"]

    transport = httpx.AsyncHTTPTransport(uds=str(socket_path(tmp_path)))
    async with httpx.AsyncClient(transport=transport, base_url="http://mcpkeeper") as http:
        spec = (await http.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.")
    assert f"{API_PREFIX}/workloads/{{name}}/reload-credentials" in spec["paths"]

    await daemon.client.shutdown()

    async def exited() -> bool:
        assert daemon.process is not None
        return daemon.process.poll() is not None

    await wait_for(exited, timeout=8.0, what="the daemon to exit")
    assert daemon.process is not None and daemon.process.returncode == 0
    assert not socket_path(tmp_path).exists()


def test_sync_client_reports_a_missing_daemon_in_one_line(tmp_path: Path) -> None:
    with DaemonClient(tmp_path) as client:
        assert client.ping() is False
        with pytest.raises(DaemonUnavailableError) as exc:
            client.list_workloads()
    assert exc.value.status is None
    assert str(socket_path(tmp_path)) in exc.value.message and "\n" not in exc.value.message


async def test_sync_client_against_the_daemon(tmp_path: Path, daemon: DaemonProcess) -> None:
    def use_sync_client() -> list[str]:
        with DaemonClient(tmp_path) as client:
            assert client.health()["pid"] == daemon.pid
            return [w["name"] for w in client.list_workloads(include_all=True)]

    assert await asyncio.to_thread(use_sync_client) == []
    assert json.loads(json.dumps(await daemon.client.list_workloads())) == []


async def test_ensure_daemon_starts_one_detached_daemon_for_racing_callers(tmp_path: Path) -> None:
    """Two CLI commands at once: one daemon (`python -m mcpkeeper serve`), both get a client."""
    import os
    import signal

    from mcpkeeper.api.client import ensure_daemon
    from mcpkeeper.api.paths import pid_path

    def start() -> int:
        with ensure_daemon(tmp_path) as client:
            return int(client.health()["pid"])

    try:
        pids = await asyncio.gather(asyncio.to_thread(start), asyncio.to_thread(start))
        assert pids[0] == pids[1]
        assert pid_path(tmp_path).read_text().strip() == str(pids[0])
        assert os.getsid(pids[0]) == pids[0]  # its own session: the terminal's Ctrl-C does not reach it
        assert "serving" in (tmp_path / "logs" / "daemon.log").read_text()
        await asyncio.to_thread(DaemonClient(tmp_path).shutdown)

        async def gone() -> bool:
            return not socket_path(tmp_path).exists()

        await wait_for(gone, timeout=8.0, what="the daemon to shut down")
    finally:
        if pid_path(tmp_path).exists():
            os.kill(int(pid_path(tmp_path).read_text()), signal.SIGKILL)
