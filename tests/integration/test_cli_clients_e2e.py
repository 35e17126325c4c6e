"""From `run` to a tool call in the clients' own config, without editing a file; then logout and rm.

Real daemon (started by the CLI), real fixture AS + MCP server in their own process, the
scripted browser; the clients are played by the official MCP SDK, reading the entry
``mcpkeeper client setup`` wrote exactly as the client would: Claude Desktop spawns the
command with the entry's args and env and a desktop app's minimal PATH, Cursor and
Claude Code connect to the URL with the entry's headers.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from mcpkeeper.auth.credentials import CredentialStore
from tests.integration.cli_support import (
    FixtureProcess,
    cli_env,
    fixture_servers,  # noqa: F401 - the `fixtures` fixture
    list_json,
    run_cli,
    stop_daemon,
    wait_until,
    write_browser,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


@pytest.fixture
def env(tmp_path: Path, fixtures: FixtureProcess) -> Iterator[dict[str, str]]:
    user_home = tmp_path / "user"
    (user_home / ".cursor").mkdir(parents=True)  # Cursor and Claude Desktop "installed"
    (user_home / ".config" / "Claude").mkdir(parents=True)
    (user_home / ".claude.json").write_text('{"numStartups": 3}\n')
    browser = write_browser(tmp_path)
    state = tmp_path / "state"
    yield cli_env(state, {"BROWSER": str(browser), "HOME": str(user_home), "XDG_CONFIG_HOME": ""})
    stop_daemon(state)


def _state(env: dict[str, str]) -> Path:
    return Path(env["MCPKEEPER_HOME"])


def _cli(env: dict[str, str], *args: str) -> Any:
    done = run_cli(_state(env), *args, env=env, timeout=30)
    assert done.returncode == 0, done.stderr
    return done


def _entry(path: Path, root: str, name: str) -> dict[str, Any]:
    entry: dict[str, Any] = json.loads(path.read_text())[root][name]
    return entry


async def _echo_spawned(entry: dict[str, Any], errlog: Path) -> str:
    """Start the entry's command as a desktop app does: its args and env, a minimal PATH."""
    env = {**entry.get("env", {}), "PATH": "/usr/bin:/bin"}
    params = StdioServerParameters(command=entry["command"], args=entry["args"], env=env)
    with errlog.open("w") as err:
        async with stdio_client(params, errlog=err) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            result = await session.call_tool("echo", {"text": "spawned"})
    assert not result.is_error, result
    return str(result.structured_content["result"]) if result.structured_content else ""


async def _echo_url(url: str, headers: dict[str, str]) -> str:
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(10.0, read=30.0)) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        result = await client.call_tool("echo", {"text": "by url"})
    assert not result.is_error, result
    return str(result.structured_content["result"]) if result.structured_content else ""


async def test_run_then_client_setup_reaches_a_tool_in_claude_desktop_cursor_and_claude_code(
    tmp_path: Path, env: dict[str, str], fixtures: FixtureProcess
) -> None:
    done = await asyncio.to_thread(_cli, env, "run", fixtures.mcp_url, "--name", "demo", "--client-token")
    # Not at a terminal: `run` does not ask, it says which command writes the clients' files.
    assert "mcpkeeper client setup demo" in done.stdout and "claude-desktop" in done.stdout
    assert "mcpkeeper service install" in done.stdout

    done = await asyncio.to_thread(_cli, env, "client", "setup", "demo")
    user = Path(env["HOME"])
    claude_desktop = user / ".config" / "Claude" / "claude_desktop_config.json"
    cursor, claude_code = user / ".cursor" / "mcp.json", user / ".claude.json"
    assert {
        f"{label}: added demo" in done.stdout for label in ("Claude Desktop", "Cursor", "Claude Code")
    } == {True}

    spawned = _entry(claude_desktop, "mcpServers", "demo")
    assert Path(spawned["command"]).is_absolute()
    assert await _echo_spawned(spawned, tmp_path / "spawned.err") == "spawned"
    for path in (cursor, claude_code):
        entry = _entry(path, "mcpServers", "demo")
        assert await _echo_url(entry["url"], entry["headers"]) == "by url"
    assert json.loads(claude_code.read_text())["numStartups"] == 3

    again = await asyncio.to_thread(_cli, env, "client", "setup", "demo", "-o", "json")
    assert {row["action"] for row in json.loads(again.stdout)} == {"unchanged"}


def test_logout_revokes_at_the_server_and_login_brings_the_workload_back(
    tmp_path: Path, env: dict[str, str], fixtures: FixtureProcess
) -> None:
    _cli(env, "run", fixtures.mcp_url, "--name", "demo")
    before = len(fixtures.control("/counters")["revocations"])
    done = _cli(env, "logout", "demo", "-o", "json")
    report = json.loads(done.stdout)
    assert report["revocation"]["outcome"] == "revoked"
    assert report["revocation"]["revoked"] == ["refresh_token", "access_token"]
    revocations = fixtures.control("/counters")["revocations"][before:]
    assert [r["hint"] for r in revocations] == ["refresh_token", "access_token"]
    assert revocations[0]["revoked"] == "refresh_token"  # the grant, and its access tokens with it
    assert CredentialStore.open(_state(env)).load("demo") is None
    wait_until(
        lambda: list_json(_state(env), env=env)["demo"]["status"] == "unauthenticated",
        timeout=15,
        what="demo unauthenticated after logout",
    )

    _cli(env, "login", "demo")
    wait_until(
        lambda: list_json(_state(env), env=env)["demo"]["status"] == "running",
        timeout=15,
        what="demo running again after login",
    )
    done = run_cli(_state(env), "logout", "nothing-here", env=env)
    assert done.returncode == 3 and "no stored login named 'nothing-here'" in done.stderr


def test_rm_removes_the_log_and_revokes(
    tmp_path: Path, env: dict[str, str], fixtures: FixtureProcess
) -> None:
    _cli(env, "run", fixtures.mcp_url, "--name", "demo")
    log = _state(env) / "logs" / "demo.log"
    wait_until(log.exists, timeout=10, what="the workload's log")
    before = len(fixtures.control("/counters")["revocations"])
    done = _cli(env, "rm", "demo")
    assert "The server revoked the refresh token and the access token." in done.stdout
    revocations = fixtures.control("/counters")["revocations"][before:]
    assert [r["hint"] for r in revocations] == ["refresh_token", "access_token"]
    assert revocations[0]["revoked"] == "refresh_token"
    assert not log.exists() and not list(log.parent.glob("demo.log*"))
    assert list_json(_state(env), "--all", env=env) == {}
