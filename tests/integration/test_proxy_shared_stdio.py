"""Many ``mcpkeeper proxy URL --stdio`` for one remote share one workload and one refresher.

The clients are the official MCP SDK's stdio client spawning the real CLI, as Claude
Desktop or Cursor would; the fixture AS and MCP server run in their own process with
3-second access tokens, so several rotations happen while the clients work. The server's
counters are the judge: one refresh request per rotation, never a spent refresh token
presented again, one login for everyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from mcpkeeper.cli.foreground import foreground_store
from tests.integration.cli_support import (
    FixtureProcess,
    cli_env,
    list_json,
    run_cli,
    stop_daemon,
    write_browser,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

LIFETIME = 3.0
TIMINGS = {
    "MCPKEEPER_TOKEN_REFRESH_MIN_LEAD": "1s",
    "MCPKEEPER_TOKEN_REFRESH_INITIAL_RETRY_INTERVAL": "200ms",
    "MCPKEEPER_TOKEN_REFRESH_MAX_RETRY_INTERVAL": "400ms",
}


@pytest.fixture
def fixtures() -> Iterator[FixtureProcess]:
    with closing(FixtureProcess("--token-lifetime", str(LIFETIME))) as servers:
        yield servers


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    browser = write_browser(tmp_path)
    yield cli_env(tmp_path, {"BROWSER": str(browser), **TIMINGS})
    stop_daemon(tmp_path)


@contextlib.asynccontextmanager
async def _client(env: dict[str, str], errlog: Path, *args: str) -> AsyncIterator[ClientSession]:
    """An MCP client that spawned ``mcpkeeper proxy ARGS``, initialized."""
    params = StdioServerParameters(command=sys.executable, args=["-m", "mcpkeeper", "proxy", *args], env=env)
    with errlog.open("w") as err:
        async with stdio_client(params, errlog=err) as (read, write), ClientSession(read, write) as session:
            await asyncio.wait_for(session.initialize(), timeout=60)
            yield session


async def _echo(session: ClientSession, text: str) -> str:
    result = await asyncio.wait_for(session.call_tool("echo", {"text": text}), timeout=20)
    assert not result.is_error, result
    return str((result.structured_content or {}).get("result"))


async def _echo_through_a_handover(session: ClientSession, text: str, *, timeout: float = 15.0) -> str:
    """An echo that succeeds once the new host serves; a call in the hand-over gets one error, not a hang."""
    deadline = time.monotonic() + timeout
    while True:
        result = await asyncio.wait_for(session.call_tool("echo", {"text": text}), timeout=20)
        if not result.is_error:
            return str((result.structured_content or {}).get("result"))
        assert time.monotonic() < deadline, f"no answer after the hand-over: {result}"
        await asyncio.sleep(0.1)


async def _keep_calling(session: ClientSession, label: str, until: float) -> int:
    calls = 0
    while time.monotonic() < until:
        assert await _echo(session, f"{label}{calls}") == f"{label}{calls}"
        calls += 1
        await asyncio.sleep(0.05)
    return calls


def _auth(fixtures: FixtureProcess) -> dict[str, Any]:
    counters: dict[str, Any] = fixtures.control("/counters")["auth"]
    return counters


async def test_two_concurrent_stdio_clients_share_one_login_and_one_refresher(
    tmp_path: Path, env: dict[str, str], fixtures: FixtureProcess
) -> None:
    url = fixtures.mcp_url
    async with (
        _client(env, tmp_path / "a.err", url, "--stdio") as first,
        _client(env, tmp_path / "b.err", url, "--stdio") as second,
    ):
        until = time.monotonic() + 4 * LIFETIME
        calls = await asyncio.gather(_keep_calling(first, "a", until), _keep_calling(second, "b", until))
        assert min(calls) > 10
        rows = list_json(tmp_path, env=env)
        assert len(rows) == 1 and next(iter(rows.values()))["foreground"] is True

    counters = _auth(fixtures)
    assert counters["by_grant"].get("authorization_code") == 1  # one browser login for both
    refreshes = counters["by_grant"].get("refresh_token", 0)
    assert refreshes >= 3, counters  # tokens of 3 s, 12 s of calls: several rotations
    assert counters["by_outcome"].get("ok") == 1 + refreshes  # every refresh spent a live token once
    assert counters["spent_token_reuse"] == 0
    errors = (tmp_path / "a.err").read_text() + (tmp_path / "b.err").read_text()
    assert errors.count("/authorize?") == 1, errors
    assert list_json(tmp_path, "--all", env=env) == {}  # the last one out cleaned up


async def test_the_next_client_takes_over_when_the_host_exits(
    tmp_path: Path, env: dict[str, str], fixtures: FixtureProcess
) -> None:
    url = fixtures.mcp_url
    args = (url, "--stdio", "--name", "shared")
    hosting, release = asyncio.Event(), asyncio.Event()

    async def first_client() -> None:  # its own task: its session ends before the second one's
        async with _client(env, tmp_path / "a.err", *args) as first:
            assert await _echo(first, "one") == "one"
            hosting.set()
            await release.wait()

    first_task = asyncio.create_task(first_client())
    await asyncio.wait_for(hosting.wait(), timeout=60)
    config = foreground_store(tmp_path).get("shared")
    assert config is not None
    async with _client(env, tmp_path / "b.err", *args) as second:
        assert await _echo(second, "two") == "two"
        release.set()
        await asyncio.wait_for(first_task, timeout=30)  # the host's client went away
        assert await _echo_through_a_handover(second, "after") == "after"
        assert f"taking over the workload on port {config.port}" in (tmp_path / "b.err").read_text()
        after = foreground_store(tmp_path).get("shared")
        assert after is not None and after.port == config.port
        refreshes = _auth(fixtures)["by_grant"].get("refresh_token", 0)
        await _keep_calling(second, "b", time.monotonic() + 3 * LIFETIME)  # the new host refreshes now
        assert _auth(fixtures)["by_grant"].get("refresh_token", 0) >= refreshes + 2
    counters = _auth(fixtures)
    assert counters["spent_token_reuse"] == 0 and counters["by_grant"].get("authorization_code") == 1
    assert foreground_store(tmp_path).get("shared") is None


async def test_a_daemon_workload_for_the_remote_is_attached_to(
    tmp_path: Path, env: dict[str, str], fixtures: FixtureProcess
) -> None:
    done = await asyncio.to_thread(run_cli, tmp_path, "run", fixtures.mcp_url, "--name", "daemonic", env=env)
    assert done.returncode == 0, done.stderr
    async with _client(env, tmp_path / "p.err", fixtures.mcp_url, "--stdio") as session:
        assert await _echo(session, "via daemon") == "via daemon"
    assert "is daemon workload daemonic" in (tmp_path / "p.err").read_text()
    assert set(list_json(tmp_path, "--all", env=env)) == {"daemonic"}  # no foreground workload


async def test_mcp_remote_flags_are_mapped(
    tmp_path: Path, env: dict[str, str], fixtures: FixtureProcess
) -> None:
    metadata = tmp_path / "metadata.json"
    metadata.write_text(json.dumps({"scope": "mcp offline_access", "client_name": "x"}))
    args = [
        fixtures.mcp_url,
        "41977",  # mcp-remote's callback port, after the URL
        "--stdio",
        "--header",
        "X-Tenant:acme",
        "--static-oauth-client-metadata",
        f"@{metadata}",
        "--transport",
        "http-first",
        "--allow-http",
        "--enable-proxy",
    ]
    async with _client(env, tmp_path / "m.err", *args) as session:
        assert await _echo(session, "mapped") == "mapped"
    mcp = fixtures.control("/counters")["mcp"]
    assert mcp["custom_headers"].get("x-tenant") == "acme"  # forwarded to the server
    err = (tmp_path / "m.err").read_text()
    assert "redirect_uri=http%3A%2F%2F127.0.0.1%3A41977%2Fcallback" in err
    assert "scope=mcp+offline_access" in err
    assert "client_name not used" in err
