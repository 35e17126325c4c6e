"""Hardening checks against the real daemon (``python -m mcpkeeper.daemon``) and its listeners."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from mcpkeeper.api.client import AsyncDaemonClient, DaemonError
from mcpkeeper.api.paths import API_PREFIX, socket_path
from mcpkeeper.testing import FixtureAuthServer, FixtureMCPServer
from mcpkeeper.vmcp.runfile import read_vmcp_info
from tests.integration.cli_support import cli_env, run_cli
from tests.integration.daemon_support import FAST_TIMINGS, DaemonProcess, call_echo, daemon_env, store_login

pytestmark = pytest.mark.integration


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[DaemonProcess]:
    async with DaemonProcess(tmp_path) as process:
        yield process


async def _control_exchange(home: Path, head: bytes, body_chunks: list[bytes]) -> bytes:
    """Send ``head`` and ``body_chunks`` on the control socket; what the daemon answers within 5 s."""
    reader, writer = await asyncio.open_unix_connection(str(socket_path(home)))
    try:
        writer.write(head)
        for chunk in body_chunks:
            writer.write(chunk)
            await writer.drain()
        async with asyncio.timeout(5):
            return await reader.readuntil(b"\r\n\r\n")
    finally:
        writer.close()


async def test_the_control_api_refuses_a_huge_declared_body_before_reading_it(daemon: DaemonProcess) -> None:
    # Only the head is sent: a server that waits for the 20 MB never answers.
    head = (
        f"POST {API_PREFIX}/workloads HTTP/1.1\r\nHost: mcpkeeper\r\n"
        "Content-Type: application/json\r\nContent-Length: 20000000\r\n\r\n"
    ).encode()
    answer = await _control_exchange(daemon.home, head, [])
    assert answer.startswith(b"HTTP/1.1 413 "), answer


async def test_the_control_api_stops_reading_a_chunked_body_at_the_limit(daemon: DaemonProcess) -> None:
    head = (
        f"POST {API_PREFIX}/workloads HTTP/1.1\r\nHost: mcpkeeper\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    piece = b" " * 16384
    chunks = [b"%x\r\n%s\r\n" % (len(piece), piece)] * 6  # 96 kB, and the body never ends
    answer = await _control_exchange(daemon.home, head, chunks)
    assert answer.startswith(b"HTTP/1.1 413 "), answer


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:9/mcp\r\nX-Injected: y", "control characters"),
        ("http://user:secret-password@127.0.0.1:9/mcp", "user name or password"),
        ("http://[::1:47001/mcp", "malformed"),
        ("http://127.0.0.1:9/" + "a" * 10_000, "characters long"),  # 100 kB: over the body limit
    ],
)
async def test_the_control_api_refuses_the_remote_urls_the_cli_refuses(
    daemon: DaemonProcess, url: str, reason: str
) -> None:
    with pytest.raises(DaemonError) as refused:
        await daemon.client.create_workload("w", url, auth=False)
    assert refused.value.status == 400
    assert reason in refused.value.message and "secret-password" not in refused.value.message
    assert await daemon.client.list_workloads(include_all=True) == []


@pytest.fixture
def runtime_dir() -> Iterator[Path]:
    """A short private XDG_RUNTIME_DIR (pytest's tmp_path is too long for one)."""
    path = Path(tempfile.mkdtemp(prefix="mk-xdg-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _long_home(base: Path) -> Path:
    home = base / ("h" * 60) / ("o" * 60) / "mcpkeeper-home"
    assert len(str(home / "run" / "daemon.sock")) > 108  # too long for any Unix socket address
    return home


@pytest.mark.parametrize("xdg", [True, False])
async def test_a_long_home_still_gets_a_control_socket(
    tmp_path: Path, runtime_dir: Path, xdg: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = _long_home(tmp_path)
    runtime = runtime_dir
    if xdg:
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    else:
        monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    async with FixtureMCPServer(require_auth=False) as mcp, DaemonProcess(home) as daemon:
        sock = socket_path(home)
        assert len(str(sock)) <= 100
        assert sock.is_relative_to(runtime) == xdg
        assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(sock.parent.parent.stat().st_mode) == 0o700
        await daemon.client.create_workload("open", mcp.url, auth=False)
        info = await daemon.wait_status("open", "running")
        assert await call_echo(str(info["url"]), "long home") == "long home"
        assert await daemon.terminate() == 0
    assert not sock.exists()


async def test_a_socket_directory_of_another_user_is_refused(
    tmp_path: Path, runtime_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = _long_home(tmp_path)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime_dir))
    planted = socket_path(home).parent.parent
    assert planted == runtime_dir / "mcpkeeper"
    planted.mkdir(mode=0o777)
    os.chown(planted, 65534, 65534)  # as if another user (nobody) had made it first
    done = subprocess.run(
        [sys.executable, "-m", "mcpkeeper.daemon"],
        env=daemon_env(home),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"mcpkeeper serve: {planted} belongs to another user (uid 65534); mcpkeeper will not use it "
        "for its control socket: remove it"
    ]
    with pytest.raises(DaemonError, match="belongs to another user"):
        AsyncDaemonClient(home)


async def test_repeated_503_lines_are_counted_not_written_and_refreshes_are_logged(
    tmp_path: Path,
) -> None:
    from mcpkeeper.workloads.log_limits import BURST

    async with (
        FixtureAuthServer() as auth,
        FixtureMCPServer(auth) as mcp,
        DaemonProcess(tmp_path, FAST_TIMINGS) as daemon,
    ):
        # "fresh": a login whose access token is already expired, so the daemon refreshes at once.
        store_login(tmp_path, "fresh", auth, mcp, expires_at=time.time() - 60)
        await daemon.client.create_workload("fresh", mcp.url)
        # "nologin": no stored login at all; every request is answered 503 by the proxy.
        info = await daemon.client.create_workload("nologin", mcp.url)
        await daemon.wait_status("nologin", "unauthenticated")
        url = str(info["url"])
        async with httpx.AsyncClient(timeout=10) as http:
            for _ in range(100):
                assert (await http.get(url)).status_code == 503
        await daemon.wait_status("fresh", "running")
        await daemon.client.stop_workload("nologin")  # closes its log file: pending counts are written
        assert await daemon.terminate() == 0

    lines = (tmp_path / "logs" / "nologin.log").read_text().splitlines()
    answered = [line for line in lines if "answering 503" in line and "were not written" not in line]
    assert len(answered) == BURST, lines
    counted = [line for line in lines if "were not written" in line]
    assert len(counted) == 1 and "95 more line(s)" in counted[0], counted
    assert "answering 503" not in (tmp_path / "logs" / "daemon.log").read_text()
    assert "token refreshed (new access token valid for" in (tmp_path / "logs" / "fresh.log").read_text()


def _cli_json(home: Path, *args: str) -> Any:
    done = run_cli(home, *args, "--format", "json", env=cli_env(home))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


async def test_a_config_found_unreadable_by_the_daemon_stays_visible_until_rm(daemon: DaemonProcess) -> None:
    home = daemon.home
    async with FixtureMCPServer(require_auth=False) as mcp:
        await daemon.client.create_workload("w", mcp.url, auth=False)
        await daemon.client.create_workload("ok", mcp.url, auth=False)
        (home / "workloads" / "w.json").write_bytes(b"\x00{ not json")
        first = {row["name"]: row for row in await daemon.client.list_workloads(include_all=True)}
        assert not (home / "workloads" / "w.json").exists()  # the daemon moved it aside

        # Later reads, by the daemon and by the CLI reading the disk, still report it.
        again = {row["name"]: row for row in await daemon.client.list_workloads(include_all=True)}
        rows = {row["name"]: row for row in await asyncio.to_thread(_cli_json, home, "list", "--all")}
        detail = await asyncio.to_thread(_cli_json, home, "status", "w")
        for row in (first["w"], again["w"], rows["w"], detail):
            assert row["status"] == "unknown", row
            assert "moved aside to" in row["status_context"] and "mcpkeeper rm w" in row["status_context"]
        assert again["ok"]["status"] == "running" and rows["ok"]["status"] == "running"

        done = await asyncio.to_thread(run_cli, home, "rm", "w", env=cli_env(home))
        assert done.returncode == 0, done.stderr
        assert "w" not in {row["name"] for row in await daemon.client.list_workloads(include_all=True)}
        assert "w" not in {row["name"] for row in await asyncio.to_thread(_cli_json, home, "list", "--all")}
        assert list((home / "workloads").glob("w.json*")) == []


async def test_a_login_found_unreadable_is_reported_by_every_later_reader(tmp_path: Path) -> None:
    async with FixtureAuthServer() as auth, FixtureMCPServer(auth) as mcp:
        store_login(tmp_path, "s", auth, mcp)
        async with DaemonProcess(tmp_path, FAST_TIMINGS) as daemon:
            await daemon.client.create_workload("s", mcp.url)
            await daemon.wait_status("s", "running")
            assert await daemon.terminate() == 0
        (tmp_path / "secrets" / "s.json").write_text("not json at all")

        # The first reader (the CLI here) moves it aside; every later one still says so.
        for _ in range(2):
            detail = await asyncio.to_thread(_cli_json, tmp_path, "status", "s")
            assert detail["auth"]["state"] == "unreadable", detail
            reason = detail["auth"]["reason"]
            assert "moved aside to" in reason and "mcpkeeper login s" in reason
        assert not (tmp_path / "secrets" / "s.json").exists()
        async with DaemonProcess(tmp_path, FAST_TIMINGS) as daemon:
            info = await daemon.wait_status("s", "unauthenticated")
            assert "moved aside to" in info["status_context"], info


@contextlib.asynccontextmanager
async def _session(url: str, headers: dict[str, str]) -> AsyncIterator[Client]:
    """An MCP session through ``url`` with the SDK client, sending ``headers`` on every request."""
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(10.0, read=30.0)) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


async def _echo_with(url: str, text: str, headers: dict[str, str]) -> str:
    async with _session(url, headers) as client:
        result = await client.call_tool("echo", {"text": text})
    assert not result.is_error, result
    return str(result.structured_content["result"]) if result.structured_content else ""


@pytest.mark.parametrize("globally", [False, True])
async def test_a_workload_with_client_auth_serves_only_clients_with_the_client_token(
    tmp_path: Path, globally: bool
) -> None:
    env = {**FAST_TIMINGS, "MCPKEEPER_CLIENT_AUTH": "on"} if globally else FAST_TIMINGS
    async with (
        FixtureAuthServer() as auth,
        FixtureMCPServer(auth) as mcp,
        FixtureMCPServer(require_auth=False) as open_mcp,
        DaemonProcess(tmp_path, env) as daemon,
    ):
        store_login(tmp_path, "guarded", auth, mcp)
        info = await daemon.client.create_workload("guarded", mcp.url, client_auth=not globally)
        other = await daemon.client.create_workload("other", open_mcp.url, auth=False)
        assert info["client_auth"] is True and other["client_auth"] is globally
        await daemon.wait_status("guarded", "running")
        token_file = tmp_path / "secrets" / "client-token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        url, vmcp_url = str(info["url"]), read_vmcp_info(tmp_path).url  # type: ignore[union-attr]
        assert vmcp_url is not None
        rpc = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        async with httpx.AsyncClient(timeout=10) as http:
            for target in (url, vmcp_url):  # another local user: no token, a wrong one, another scheme
                for headers in ({}, {"Authorization": "Bearer guessed"}, {"Authorization": f"Basic {token}"}):
                    refused = await http.post(target, json=rpc, headers=headers)
                    assert refused.status_code == 403, (target, headers, refused.text)
                    assert "client token" in refused.text and token not in refused.text
        mcp_before = mcp.mcp_requests
        # The client token opens the proxy; upstream it is replaced by the workload's token.
        bearer = {"Authorization": f"Bearer {token}"}
        assert await _echo_with(url, "with the client token", bearer) == "with the client token"
        assert mcp.mcp_requests > mcp_before
        # The aggregated endpoint requires it too, and passes it on to the workload's proxy.
        async with _session(vmcp_url, bearer) as client:
            result = await client.call_tool("guarded__echo", {"text": "via vmcp"})
        assert not result.is_error and result.structured_content == {"result": "via vmcp"}, result
        # A workload without --client-token stays open (unless the setting asks it of all).
        if not globally:
            assert await call_echo(str(other["url"]), "open") == "open"
        else:
            assert await _echo_with(str(other["url"]), "guarded too", bearer) == "guarded too"
