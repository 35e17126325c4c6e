"""The daemon as a user meets it: a real process, its Unix socket, real MCP clients.

Every test runs ``python -m mcpkeeper.daemon`` with ``MCPKEEPER_HOME`` in ``tmp_path``
against the fixture authorization and MCP servers running in the test's loop; logins are
put in the credential store with tokens minted by the fixture AS (no browser).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from mcpkeeper.api.client import EXIT_ALREADY_RUNNING
from mcpkeeper.api.paths import pid_path, socket_path
from mcpkeeper.cli.errors import ExitCode
from mcpkeeper.state.workload_store import WorkloadStore
from mcpkeeper.testing import FixtureAuthServer, FixtureMCPServer
from tests.integration.daemon_support import (
    FAST_TIMINGS,
    DaemonProcess,
    call_echo,
    raw_post,
    store_login,
    stored_token,
    wait_for,
)

pytestmark = pytest.mark.integration

_INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "0"},
    },
}


@pytest.fixture
async def servers() -> AsyncIterator[tuple[FixtureAuthServer, FixtureMCPServer]]:
    async with FixtureAuthServer() as auth, FixtureMCPServer(auth) as mcp:
        yield auth, mcp


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[DaemonProcess]:
    async with DaemonProcess(tmp_path, FAST_TIMINGS) as process:
        yield process


async def test_a_workload_created_over_the_api_proxies_mcp_calls(
    tmp_path: Path, daemon: DaemonProcess, servers: tuple[FixtureAuthServer, FixtureMCPServer]
) -> None:
    auth, mcp = servers
    token = store_login(tmp_path, "notes", auth, mcp)

    info = await daemon.client.create_workload("notes", mcp.url)

    assert info["status"] == "running" and info["health"] == "healthy"
    assert info["url"] == f"http://127.0.0.1:{info['port']}/mcp"
    assert info["pid"] == daemon.pid
    assert await call_echo(info["url"], "through the daemon") == "through the daemon"
    assert mcp.saw_token(token.access_token)
    # The control socket is private; the pid file names the daemon.
    assert stat.S_IMODE(os.stat(socket_path(tmp_path)).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(socket_path(tmp_path).parent).st_mode) == 0o700
    assert pid_path(tmp_path).read_text().strip() == str(daemon.pid)
    # Detail: the monitor's view and the history, never a token.
    detail = await daemon.client.get_workload("notes")
    assert detail["auth"]["state"] == "fresh" and detail["auth"]["has_refresh_token"] is True
    assert [h["status"] for h in detail["history"]] == ["starting", "running"]
    text = json.dumps(detail) + json.dumps(await daemon.client.list_workloads())
    assert token.access_token not in text and str(token.refresh_token) not in text
    log_text = (tmp_path / "logs" / "notes.log").read_text()
    assert "notes" in log_text and token.access_token not in log_text

    assert await daemon.terminate() == 0
    assert not socket_path(tmp_path).exists() and not pid_path(tmp_path).exists()
    config = WorkloadStore(tmp_path).get("notes")
    assert config is not None and config.desired_state == "running"  # restored by the next daemon


async def test_waf_403_turns_auth_retrying_with_503_and_recovers_without_restart(
    tmp_path: Path, daemon: DaemonProcess
) -> None:
    # 6 s tokens: handed out only while more than 5 s (the monitor's safety margin) remain,
    # so within a second of minting every request needs a refresh.
    async with FixtureAuthServer(access_token_lifetime=6.0) as auth, FixtureMCPServer(auth) as mcp:
        store_login(tmp_path, "flaky", auth, mcp)
        info = await daemon.client.create_workload("flaky", mcp.url)
        url = info["url"]
        assert await call_echo(url, "before") == "before"

        await auth.set_fault("waf_html_403")
        responses = []

        async def client_sees_503() -> bool:
            response = await raw_post(url, _INITIALIZE)
            responses.append(response)
            return response.status_code == 503

        await wait_for(client_sees_503, timeout=8.0, interval=0.2, what="a 503 from the proxy")
        refused = responses[-1]
        assert int(refused.headers["retry-after"]) >= 1
        assert "error" in refused.json()
        detail = await daemon.wait_status("flaky", "auth_retrying")
        assert detail["health"] == "degraded"
        assert "403" in detail["status_context"]
        assert detail["auth"]["state"] == "retrying" and detail["auth"]["next_attempt_at"] is not None
        with pytest.raises(Exception):  # noqa: B017 - the SDK raises its own error types
            await call_echo(url, "during")

        await auth.set_fault("ok")
        detail = await daemon.wait_status("flaky", "running")
        assert "recovered" in detail["status_context"]
        assert await call_echo(url, "after") == "after"
        statuses = [h["status"] for h in detail["history"]]
        assert statuses == ["starting", "running", "auth_retrying", "running"]  # no restart
        assert auth.counters.by_grant["authorization_code"] == 0
        assert auth.counters.spent_token_reuse == 0
        # The monitor's story is in the workload's own log, without a token.
        log_text = (tmp_path / "logs" / "flaky.log").read_text()
        assert "entering auth_retrying" in log_text and "recovered" in log_text
        token = stored_token(tmp_path, "flaky")
        assert token is not None and token.access_token not in log_text
        assert str(token.refresh_token) not in log_text


async def test_daemon_restart_restores_every_workload_without_a_login(tmp_path: Path) -> None:
    async with (
        FixtureAuthServer() as auth,
        FixtureMCPServer(auth) as mcp,
        FixtureMCPServer(require_auth=False) as open_mcp,
    ):
        async with DaemonProcess(tmp_path, FAST_TIMINGS) as first:
            store_login(tmp_path, "a", auth, mcp)
            store_login(tmp_path, "b", auth, mcp)
            urls = {}
            for name in ("a", "b"):
                urls[name] = (await first.client.create_workload(name, mcp.url))["url"]
            urls["open"] = (await first.client.create_workload("open", open_mcp.url, auth=False))["url"]
            await first.client.create_workload("parked", open_mcp.url, auth=False)
            await first.client.stop_workload("parked")
            assert await first.terminate() == 0
        saved = {p.stem: json.loads(p.read_text())["auth"] for p in (tmp_path / "workloads").glob("*.json")}
        assert saved == {"a": True, "b": True, "open": False, "parked": False}

        assert _statuses_on_disk(tmp_path) == {
            "a": "stopped",
            "b": "stopped",
            "open": "stopped",
            "parked": "stopped",
        }

        async with DaemonProcess(tmp_path, FAST_TIMINGS) as second:
            for name in ("a", "b", "open"):
                await second.wait_status(name, "running")
            assert await second.status_of("parked") == "stopped"
            for name, url in urls.items():
                assert await call_echo(url, name) == name  # same ports as before the restart
            assert (await second.client.get_workload("a"))["pid"] == second.pid
            # Restored as it was created: "open" injects no token, "a" does.
            open_detail = await second.client.get_workload("open")
            assert open_detail["auth"] is None
            assert open_detail["status_context"] == "proxying (no authentication)"
            assert (await second.client.get_workload("a"))["auth"]["state"] == "fresh"
        assert auth.counters.by_grant["authorization_code"] == 0  # no login, no browser


def _statuses_on_disk(home: Path) -> dict[str, str]:
    """What `mcpkeeper list` reads while the daemon is down."""
    return {p.stem: json.loads(p.read_text())["status"] for p in (home / "statuses").glob("*.json")}


async def test_kill_9_during_a_refresh_then_restart_recovers_without_login(tmp_path: Path) -> None:
    async with FixtureAuthServer(access_token_lifetime=6.0) as auth, FixtureMCPServer(auth) as mcp:
        before = store_login(tmp_path, "w", auth, mcp)
        async with DaemonProcess(tmp_path, FAST_TIMINGS) as first:
            info = await first.client.create_workload("w", mcp.url)
            await auth.set_fault("hang")

            async def refresh_in_flight() -> bool:
                # The request waits on the hung refresh; it only has to start one.
                with contextlib.suppress(httpx.TimeoutException):
                    await raw_post(info["url"], _INITIALIZE, timeout=0.5)
                return auth.counters.by_grant["refresh_token"] >= 1

            await wait_for(refresh_in_flight, timeout=8.0, interval=0.3, what="a refresh to hang")
            await first.kill()
        assert socket_path(tmp_path).exists()  # left behind by the killed daemon

        await auth.set_fault("ok")
        async with DaemonProcess(tmp_path, FAST_TIMINGS) as second:
            await second.wait_status("w", "running")
            assert await call_echo(info["url"], "recovered") == "recovered"
            after = stored_token(tmp_path, "w")
            assert after is not None and after.refresh_token != before.refresh_token  # rotated and saved
        assert auth.counters.spent_token_reuse == 0
        assert auth.counters.by_grant["authorization_code"] == 0


async def test_two_clients_on_one_workload_cause_one_refresh_per_rotation(
    tmp_path: Path, daemon: DaemonProcess
) -> None:
    # 3 s tokens: refreshed 1.5 s after issue, so the 4.5 s run spans several rotations.
    async with FixtureAuthServer(access_token_lifetime=3.0) as auth, FixtureMCPServer(auth) as mcp:
        store_login(tmp_path, "shared", auth, mcp)
        url = (await daemon.client.create_workload("shared", mcp.url))["url"]
        calls = 0

        async def client(tag: str) -> None:
            nonlocal calls
            deadline = time.monotonic() + 4.5
            while time.monotonic() < deadline:
                assert await call_echo(url, tag) == tag
                calls += 1

        await asyncio.gather(client("one"), client("two"))

        refreshes = auth.counters.by_grant["refresh_token"]
        assert calls >= 4
        assert refreshes >= 2  # tokens rotated during the run
        # One refresh per rotation: every refresh produced exactly one token the server saw.
        assert mcp.seen_token_count == refreshes + 1
        assert auth.counters.spent_token_reuse == 0
        assert auth.counters.by_outcome["ok"] == refreshes  # every refresh succeeded, none wasted


async def test_a_second_daemon_on_the_same_home_refuses_to_start(
    tmp_path: Path, daemon: DaemonProcess
) -> None:
    for entry in (["mcpkeeper.daemon"], ["mcpkeeper", "serve"]):
        result = subprocess.run(
            [sys.executable, "-m", *entry],
            env=daemon.env,
            capture_output=True,
            timeout=20,
            check=False,
        )
        # Its own status: 3 is the CLI's "no such workload".
        assert result.returncode == EXIT_ALREADY_RUNNING == ExitCode.ALREADY_RUNNING == 5, entry
        assert f"pid {daemon.pid}" in result.stderr.decode()
    assert await daemon.client.ping()  # the first one is unharmed


async def test_restore_never_opens_a_login_transient_failure_retries_missing_login_waits(
    tmp_path: Path,
) -> None:
    async with FixtureAuthServer() as auth, FixtureMCPServer(auth) as mcp:
        async with DaemonProcess(tmp_path, FAST_TIMINGS) as first:
            store_login(tmp_path, "blocked", auth, mcp)
            await first.client.create_workload("blocked", mcp.url)
            await first.client.create_workload("never", mcp.url)  # auth, but nobody logged in
            assert await first.terminate() == 0
        # While the daemon is down the token expires and a WAF starts blocking the AS.
        store_login(tmp_path, "blocked", auth, mcp, expires_at=time.time() - 1)
        await auth.set_fault("waf_html_403")

        async with DaemonProcess(tmp_path, FAST_TIMINGS) as second:
            retrying = await second.wait_status("blocked", "auth_retrying")
            assert "403" in retrying["status_context"] and retrying["health"] == "degraded"
            never = await second.client.get_workload("never")
            assert never["status"] == "unauthenticated"
            assert "run `mcpkeeper login never`" in never["status_context"]

            await auth.set_fault("ok")
            await second.wait_status("blocked", "running")
            assert await call_echo(retrying["url"], "restored") == "restored"
        assert auth.counters.by_grant["authorization_code"] == 0


async def test_a_rejected_client_registration_says_login_registers_again(
    tmp_path: Path, daemon: DaemonProcess
) -> None:
    async with FixtureAuthServer() as auth, FixtureMCPServer(auth) as mcp:
        store_login(
            tmp_path, "stale", auth, mcp, expires_at=time.time() - 1, registered_client_id="forgotten"
        )

        await daemon.client.create_workload("stale", mcp.url)

        detail = await daemon.wait_status("stale", "unauthenticated")
        assert "invalid_client" in detail["status_context"]
        assert "registration is likely stale" in detail["status_context"]
        assert "mcpkeeper login stale" in detail["status_context"]
        assert detail["health"] == "unauthenticated"
