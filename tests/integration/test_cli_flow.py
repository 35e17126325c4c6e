"""The CLI end to end: real daemon (started by the CLI), real fixture AS + MCP server in
their own process, a scripted browser completing the PKCE login, MCP clients on top."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from mcpkeeper.api.paths import pid_path
from mcpkeeper.auth.credentials import CredentialStore
from mcpkeeper.state.workload_store import WorkloadConfig, WorkloadStore
from tests.integration.cli_support import (
    CLI,
    FixtureProcess,
    assert_one_line_error,
    cli_env,
    fixture_servers,  # noqa: F401 - the `fixtures` fixture
    list_json,
    run_cli,
    stop_daemon,
    wait_until,
    write_browser,
)

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def env(tmp_path: Path, fixtures: FixtureProcess) -> Iterator[dict[str, str]]:
    """The CLI's environment for one test; whatever daemon it starts is stopped afterwards."""
    browser = write_browser(tmp_path)
    yield cli_env(tmp_path, {"BROWSER": str(browser)})
    try:
        fixtures.control("/fault", {"mode": "ok"})
    finally:
        stop_daemon(tmp_path)


def _run(home: Path, env: dict[str, str], url: str, name: str, *extra: str) -> dict[str, Any]:
    done = run_cli(home, "run", url, "--name", name, "--format", "json", *extra, env=env)
    assert done.returncode == 0, done.stderr
    assert "/authorize?" in done.stderr  # the login URL is always printed
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _status(home: Path, env: dict[str, str], name: str, *args: str) -> str | None:
    row = list_json(home, *args, env=env).get(name)
    return None if row is None else str(row["status"])


async def _echo(url: str, text: str) -> str:
    async with Client(url) as client:
        result = await client.call_tool("echo", {"text": text})
    assert not result.is_error, result
    return str(result.structured_content["result"]) if result.structured_content else ""


def test_run_prints_clients_and_the_workload_lists_and_reports_running(
    tmp_path: Path, env: dict[str, str], fixtures: FixtureProcess
) -> None:
    created = _run(tmp_path, env, fixtures.mcp_url, "demo")
    info = created["workload"]
    assert info["status"] == "running" and info["url"].startswith("http://127.0.0.1:")
    clients = created["clients"]
    assert clients["Claude Desktop"]["mcpServers"]["demo"]["args"] == ["connect", "demo"]
    assert clients["Cursor"]["mcpServers"]["demo"]["url"] == info["url"]
    assert clients["VS Code"]["servers"]["demo"] == {"type": "http", "url": info["url"]}

    row = list_json(tmp_path, env=env)["demo"]
    assert (row["status"], row["url"], row["remote_url"]) == ("running", info["url"], fixtures.mcp_url)
    table = run_cli(tmp_path, "list", env=env)
    assert "demo" in table.stdout and "running" in table.stdout
    assert "All tools in one MCP endpoint: http://127.0.0.1:" in table.stdout

    detail = json.loads(run_cli(tmp_path, "status", "demo", "-o", "json", env=env).stdout)
    assert detail["source"] == "daemon" and detail["auth"]["state"] == "fresh"
    assert detail["auth"]["access_expires_at"] and detail["auth"]["has_refresh_token"] is True
    human = run_cli(tmp_path, "status", "demo", env=env).stdout
    assert "access token expires" in human and "History" in human


def test_run_stop_start_rm(tmp_path: Path, env: dict[str, str], fixtures: FixtureProcess) -> None:
    _run(tmp_path, env, fixtures.mcp_url, "demo")
    assert _status(tmp_path, env, "demo") == "running"

    assert run_cli(tmp_path, "stop", "demo", env=env).returncode == 0
    assert _status(tmp_path, env, "demo") is None  # hidden by default
    assert _status(tmp_path, env, "demo", "--all") == "stopped"

    started = run_cli(tmp_path, "start", "demo", env=env)
    assert started.returncode == 0, started.stderr
    wait_until(lambda: _status(tmp_path, env, "demo") == "running", what="demo running again")
    logs = run_cli(tmp_path, "logs", "demo", env=env)
    assert logs.returncode == 0 and "serving" in logs.stdout

    assert run_cli(tmp_path, "rm", "demo", env=env).returncode == 0
    assert list_json(tmp_path, "--all", env=env) == {}
    assert CredentialStore.open(tmp_path).load("demo") is None


async def test_connect_bridges_stdio_and_starts_a_stopped_workload(
    tmp_path: Path, env: dict[str, str], fixtures: FixtureProcess
) -> None:
    import asyncio

    await asyncio.to_thread(_run, tmp_path, env, fixtures.mcp_url, "bridged")
    stopped = await asyncio.to_thread(run_cli, tmp_path, "stop", "bridged", env=env)
    assert stopped.returncode == 0
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "mcpkeeper", "connect", "bridged"], env=env
    )
    with open(tmp_path / "connect.err", "w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            result = await session.call_tool("echo", {"text": "through stdio"})
    assert not result.is_error and result.structured_content == {"result": "through stdio"}
    assert (await asyncio.to_thread(_status, tmp_path, env, "bridged")) == "running"


async def test_proxy_runs_one_workload_in_the_foreground(
    tmp_path: Path, env: dict[str, str], fixtures: FixtureProcess
) -> None:
    import asyncio

    port = _free_port()
    out = tmp_path / "proxy.out"
    with out.open("wb") as sink:
        proxy = subprocess.Popen(
            [*CLI, "proxy", fixtures.mcp_url, "--name", "fg", "--port", str(port)],
            env=env,
            stdout=sink,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
    try:
        await asyncio.to_thread(
            wait_until, lambda: _status(tmp_path, env, "fg") == "running", timeout=15, what="fg running"
        )
        row = (await asyncio.to_thread(list_json, tmp_path, env=env))["fg"]
        assert row["url"] == f"http://127.0.0.1:{port}/mcp" and row["foreground"] is True
        assert f"127.0.0.1:{port}" in out.read_text()
        assert await _echo(row["url"], "foreground") == "foreground"
        assert not pid_path(tmp_path).exists()  # no daemon involved
    finally:
        proxy.send_signal(signal.SIGINT)
        code = await asyncio.to_thread(proxy.wait, 10)
    assert code == 0
    assert "fg" not in (await asyncio.to_thread(list_json, tmp_path, "--all", env=env))


async def test_proxy_stdio_serves_mcp_on_its_own_pipes(
    tmp_path: Path, env: dict[str, str], fixtures: FixtureProcess
) -> None:
    args = ["-m", "mcpkeeper", "proxy", fixtures.mcp_url, "--name", "piped", "--stdio"]
    params = StdioServerParameters(command=sys.executable, args=args, env=env)
    with open(tmp_path / "proxy.err", "w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            result = await session.call_tool("add", {"a": 2, "b": 3})
    assert not result.is_error and result.structured_content == {"result": 5}
    assert "/authorize?" in (tmp_path / "proxy.err").read_text()  # human output went to stderr


async def test_login_name_brings_an_unauthenticated_workload_back_in_place(
    tmp_path: Path, env: dict[str, str], fixtures: FixtureProcess
) -> None:
    import asyncio

    info = (await asyncio.to_thread(_run, tmp_path, env, fixtures.mcp_url, "gh"))["workload"]
    fixtures.control("/fault", {"mode": "invalid_grant"})
    fixtures.control("/revoke-all-access-tokens", {})
    with pytest.raises(Exception):  # noqa: B017 - the upstream 401 and the failed refresh, however surfaced
        await _echo(info["url"], "rejected")
    await asyncio.to_thread(
        wait_until, lambda: _status(tmp_path, env, "gh") == "unauthenticated", what="gh unauthenticated"
    )
    fixtures.control("/fault", {"mode": "ok"})

    relogin = await asyncio.to_thread(run_cli, tmp_path, "login", "gh", env=env)
    assert relogin.returncode == 0, relogin.stderr
    assert "reloaded" in relogin.stderr
    await asyncio.to_thread(wait_until, lambda: _status(tmp_path, env, "gh") == "running", what="gh running")
    assert await _echo(info["url"], "back") == "back"
    assert (await asyncio.to_thread(list_json, tmp_path, env=env))["gh"]["url"] == info[
        "url"
    ]  # same workload


def test_run_on_a_port_in_use_fails_cleanly_and_keeps_no_login(
    tmp_path: Path, env: dict[str, str], fixtures: FixtureProcess
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = run_cli(tmp_path, "run", fixtures.mcp_url, "--name", "busy", "--port", str(port), env=env)
    assert_one_line_error(done, code=1, contains="in use")
    assert not WorkloadStore(tmp_path).exists("busy")
    assert CredentialStore.open(tmp_path).load("busy") is None


def test_daemon_death_shows_stopped_and_start_restores_without_a_browser(
    tmp_path: Path, env: dict[str, str], fixtures: FixtureProcess
) -> None:
    _run(tmp_path, env, fixtures.mcp_url, "sturdy")
    daemon_pid = int(pid_path(tmp_path).read_text())
    os.kill(daemon_pid, signal.SIGKILL)
    wait_until(lambda: _status(tmp_path, env, "sturdy") == "stopped", what="sturdy shown stopped")
    row = list_json(tmp_path, env=env)["sturdy"]  # still listed by default: it wants to run
    assert "daemon not running" in row["status_context"]

    no_browser = {k: v for k, v in env.items() if k != "BROWSER"}
    started = run_cli(tmp_path, "start", "sturdy", env=no_browser)
    assert started.returncode == 0, started.stderr
    wait_until(lambda: _status(tmp_path, env, "sturdy") == "running", what="sturdy running")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_run_a_remote_that_needs_no_login_skips_the_browser(
    tmp_path: Path, env: dict[str, str]
) -> None:
    import asyncio

    from mcpkeeper.testing import FixtureMCPServer

    async with FixtureMCPServer(require_auth=False) as open_server:
        done = await asyncio.to_thread(
            run_cli, tmp_path, "run", open_server.url, "--name", "open", "-o", "json", env=env
        )
        assert done.returncode == 0, done.stderr
        assert "/authorize?" not in done.stderr
        info = json.loads(done.stdout)["workload"]
        assert info["status"] == "running"
        assert await _echo(info["url"], "no login") == "no login"
    assert CredentialStore.open(tmp_path).load("open") is None


def test_a_daemon_that_cannot_start_is_one_clear_error(tmp_path: Path) -> None:
    # A file where the daemon's run/ directory must go makes it fail at start.
    home = tmp_path / "home"
    WorkloadStore(home).put(WorkloadConfig(name="w", remote_url="https://w.example.com/mcp", port=42300))
    (home / "run").write_text("not a directory\n")
    done = run_cli(home, "start", "w")
    assert_one_line_error(done, code=4, contains="daemon")
