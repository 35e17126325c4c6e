"""Hardening of the real CLI (subprocesses) against the fixture servers in their own process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mcpkeeper.net import bind_loopback
from mcpkeeper.state.status_store import StatusStore
from mcpkeeper.state.statuses import WorkloadStatus
from mcpkeeper.state.workload_store import WorkloadConfig, WorkloadStore
from mcpkeeper.testing import serve_asgi
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

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A state home that does not exist yet: whatever creates it must make it private."""
    path = tmp_path / "fresh" / "home"
    yield path
    stop_daemon(path)


@pytest.fixture
def env(tmp_path: Path, home: Path) -> dict[str, str]:
    return cli_env(home, {"BROWSER": str(write_browser(tmp_path))})


def _directories(root: Path) -> list[Path]:
    return [root, *(Path(d) / n for d, names, _ in os.walk(root) for n in names)]


async def test_a_foreground_proxy_creates_every_directory_0700(
    home: Path, env: dict[str, str], fixtures: FixtureProcess
) -> None:
    previous = os.umask(0o022)  # the usual umask: mkdir alone would give 0755
    try:
        proxy = subprocess.Popen(
            [*CLI, "proxy", fixtures.mcp_url, "--name", "fg"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
    finally:
        os.umask(previous)
    try:
        await asyncio.to_thread(
            wait_until,
            lambda: list_json(home, env=env).get("fg", {}).get("status") == "running",
            timeout=20,
            what="the foreground proxy to run",
        )
        modes = {str(d.relative_to(home.parent)): stat.S_IMODE(d.stat().st_mode) for d in _directories(home)}
    finally:
        proxy.send_signal(signal.SIGINT)
        await asyncio.to_thread(proxy.wait, 10)
    assert "home/foreground" in modes and "home/logs" in modes, modes
    assert {path: mode for path, mode in modes.items() if mode != 0o700} == {}


_BAD_URLS = [
    ("http://[::1:47001/mcp", "malformed"),
    ("https://mcp.example.com/" + "a" * 100_000, "characters long"),
    ("http://user:secret-password@127.0.0.1:9/mcp", "user name or password"),
    ("http://127.0.0.1:9/mcp\r\nX-Injected: y", "control characters"),
    ("http://127.0.0.1:9/mcp\x1b[2J", "control characters"),
    ("http://127.0.0.1:99999/mcp", "malformed"),
]


@pytest.mark.parametrize("command", ["run", "proxy", "login"])
@pytest.mark.parametrize(("url", "reason"), _BAD_URLS)
def test_a_bad_remote_url_is_a_usage_error_before_anything_happens(
    home: Path, env: dict[str, str], command: str, url: str, reason: str
) -> None:
    done = run_cli(home, command, url, env=env)
    assert_one_line_error(done, code=2, contains=reason)
    assert "secret-password" not in done.stderr
    assert "\x1b" not in done.stderr
    assert not home.exists() or not any((home / "secrets").glob("*"))  # nothing was logged in


def _marking_browser(directory: Path) -> tuple[Path, Path]:
    """A ``$BROWSER`` that only leaves a mark: whether a browser was ever opened."""
    mark = directory / "browser-opened"
    script = directory / "mark-browser.py"
    script.write_text(f"#!{sys.executable}\nimport pathlib\npathlib.Path({str(mark)!r}).touch()\n")
    script.chmod(0o700)
    return script, mark


def _unwritable_homes(tmp_path: Path) -> list[Path]:
    blocked = tmp_path / "blocked-home"
    blocked.mkdir()
    (blocked / "secrets").write_text("a file where a directory must go\n")
    homes = [blocked]
    if Path("/proc/self").is_dir():  # unwritable for every user, root included
        homes.append(Path("/proc/self/mcpkeeper-home"))
    return homes


@pytest.mark.parametrize("command", ["run", "proxy", "login"])
def test_an_unwritable_home_fails_before_the_browser_opens(
    tmp_path: Path, fixtures: FixtureProcess, command: str
) -> None:
    browser, mark = _marking_browser(tmp_path)
    for home in _unwritable_homes(tmp_path):
        env = cli_env(home, {"BROWSER": str(browser)})
        done = run_cli(home, command, fixtures.mcp_url, "--name", "w", env=env)
        assert_one_line_error(done, code=1, contains="cannot write to")
        assert "must be a writable directory" in done.stderr
        assert not mark.exists(), f"{command} opened the browser before finding {home} unwritable"


_HOSTILE = "\x1b[2J\x1b]0;pwned\x07\x1b[31mred\r\nerror: forged second line\u202e"


def _hostile_as() -> Starlette:
    """A remote whose authorization server names itself with terminal escapes and newlines."""

    def origin(request: Request) -> str:
        return f"http://{request.url.netloc}"

    async def mcp(request: Request) -> Response:
        metadata = f"{origin(request)}/.well-known/oauth-protected-resource/mcp"
        challenge = f'Bearer resource_metadata="{metadata}"'
        return Response(status_code=401, headers={"www-authenticate": challenge})

    async def resource(request: Request) -> Response:
        base = origin(request)
        return JSONResponse({"resource": f"{base}/mcp", "authorization_servers": [base]})

    async def server(request: Request) -> Response:
        base = origin(request)
        return JSONResponse(
            {
                "issuer": base + "/" + _HOSTILE,
                "authorization_endpoint": f"{base}/authorize",
                "token_endpoint": f"{base}/token",
                "registration_endpoint": f"{base}/register",
                "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"],
            }
        )

    return Starlette(
        routes=[
            Route("/mcp", mcp, methods=["GET", "POST"]),
            Route("/.well-known/oauth-protected-resource/mcp", resource),
            Route("/.well-known/oauth-protected-resource", resource),
            Route("/.well-known/oauth-authorization-server", server),
            Route("/.well-known/openid-configuration", server),
        ]
    )


def _assert_clean_one_line_error(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 1, (done.stdout, done.stderr)
    errors = [line for line in done.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("error: "), done.stderr
    for bad in ("\x1b", "\x07", "\r", "\u202e", "forged second line\n"):
        assert bad not in done.stderr, repr(done.stderr)


async def test_a_hostile_issuer_cannot_write_escapes_or_lines_to_the_terminal(
    home: Path, env: dict[str, str]
) -> None:
    async with serve_asgi(_hostile_as()) as served:
        done = await asyncio.to_thread(run_cli, home, "login", served.url + "/mcp", "--name", "h", env=env)
    _assert_clean_one_line_error(done)


def _denying_browser(directory: Path) -> Path:
    """A ``$BROWSER`` that answers the login callback with a hostile error and description."""
    script = directory / "deny-browser.py"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys, httpx, urllib.parse as u\n"
        "q = dict(u.parse_qsl(u.urlsplit(sys.argv[1]).query))\n"
        f"bad = {_HOSTILE!r}\n"
        "params = {'error': 'access_denied' + bad, 'error_description': bad, 'state': q['state']}\n"
        "httpx.get(q['redirect_uri'], params=params, timeout=10)\n"
    )
    script.chmod(0o700)
    return script


def test_a_hostile_callback_error_cannot_write_escapes_or_lines_to_the_terminal(
    tmp_path: Path, home: Path, fixtures: FixtureProcess
) -> None:
    env = cli_env(home, {"BROWSER": str(_denying_browser(tmp_path))})
    done = run_cli(home, "login", fixtures.mcp_url, "--name", "d", env=env)
    _assert_clean_one_line_error(done)


def test_list_and_status_print_server_text_without_escapes_or_extra_lines(tmp_path: Path) -> None:
    home = tmp_path / "h"
    WorkloadStore(home).put(WorkloadConfig(name="w", remote_url="https://w.example.com/mcp", port=42111))
    StatusStore(home).set("w", WorkloadStatus.UNAUTHENTICATED, "token endpoint said: " + _HOSTILE)
    table = run_cli(home, "list")
    detail = run_cli(home, "status", "w")
    for done in (table, detail):
        assert done.returncode == 0, done.stderr
        for bad in ("\x1b", "\x07", "\r", "\u202e"):
            assert bad not in done.stdout, repr(done.stdout)
    lines = table.stdout.splitlines()
    # The reason has a line of its own, right under its row; the CR/LF in it forged no other.
    reason = next(index for index, line in enumerate(lines) if "forged second line" in line)
    assert lines[reason - 1].startswith("w ") and lines[reason].startswith("  token endpoint said:")
    assert sum("forged second line" in line for line in lines) == 1
    assert sum("forged second line" in line for line in detail.stdout.splitlines()) == 2  # reason + history


async def test_run_with_client_token_prints_it_in_the_snippets_and_connect_sends_it(
    tmp_path: Path, home: Path, env: dict[str, str], fixtures: FixtureProcess
) -> None:
    done = await asyncio.to_thread(
        run_cli, home, "run", fixtures.mcp_url, "--name", "ct", "--client-token", "--format", "json", env=env
    )
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    token = (home / "secrets" / "client-token").read_text().strip()
    bearer = {"Authorization": f"Bearer {token}"}
    assert printed["clients"]["Cursor"]["mcpServers"]["ct"]["headers"] == bearer
    assert printed["clients"]["VS Code"]["servers"]["ct"]["headers"] == bearer
    assert "headers" not in printed["clients"]["Claude Desktop"]["mcpServers"]["ct"]  # connect adds it
    url = printed["workload"]["url"]
    async with httpx.AsyncClient(timeout=10) as http:
        refused = await http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert refused.status_code == 403

    params = StdioServerParameters(command=sys.executable, args=["-m", "mcpkeeper", "connect", "ct"], env=env)
    with open(tmp_path / "connect.err", "w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            result = await session.call_tool("echo", {"text": "through connect"})
    assert not result.is_error and result.structured_content == {"result": "through connect"}


@pytest.mark.parametrize("command", ["run", "proxy"])
def test_a_port_in_use_fails_before_the_browser_opens(
    tmp_path: Path, home: Path, fixtures: FixtureProcess, command: str
) -> None:
    browser, mark = _marking_browser(tmp_path)
    with bind_loopback(0) as held:
        port = held.getsockname()[1]
        done = run_cli(
            home,
            command,
            fixtures.mcp_url,
            "--name",
            "p",
            "--port",
            str(port),
            env=cli_env(home, {"BROWSER": str(browser)}),
        )
    assert_one_line_error(done, code=1, contains=f"port {port} on 127.0.0.1 is already in use")
    assert not mark.exists()
