"""`mcpkeeper login` end to end: a subprocess, a scripted ``$BROWSER``, the fixtures, the mcp client."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp_types import TextContent

from mcpkeeper.state.workload_store import WorkloadConfig, WorkloadStore
from mcpkeeper.testing import FixtureAuthServer, FixtureMCPServer
from tests.integration.login_site import fixture_servers  # noqa: F401 - the `fixtures` fixture

pytestmark = pytest.mark.integration

#: The command under test: the installed console script. (``python -m mcpkeeper.cli.login_cmd``
#: runs the same function alone.)
LOGIN = [str(Path(sys.executable).with_name("mcpkeeper")), "login"]
_RUN_TIMEOUT = 60.0

# A browser for a headless test: follow the authorization URL to its redirect, then
# deliver the callback, exactly as a browser would after the user clicks "allow".
_BROWSER = """\
    #!{python}
    import pathlib, sys
    import httpx
    url = sys.argv[1]
    answer = httpx.get(url, follow_redirects=False, timeout=10)
    callback = answer.headers["location"]
    result = httpx.get(callback, timeout=10)
    pathlib.Path({marker!r}).write_text(str(result.status_code))
"""


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    browser = tmp_path / "browser.py"
    browser.write_text(
        textwrap.dedent(_BROWSER).format(python=sys.executable, marker=str(tmp_path / "browser-visited"))
    )
    browser.chmod(0o700)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MCPKEEPER_")}
    environ.update(
        {
            "MCPKEEPER_HOME": str(tmp_path / "home"),
            "MCPKEEPER_SECRET_BACKEND": "file",
            "BROWSER": str(browser),
            "COLUMNS": "200",
        }
    )
    return environ


async def login(env: dict[str, str], *args: str) -> Run:
    process = await asyncio.create_subprocess_exec(
        *LOGIN,
        *args,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(_RUN_TIMEOUT):
            out, err = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())


def stored(home: Path, name: str) -> dict[str, object]:
    data = json.loads((home / "secrets" / f"{name}.json").read_text())
    assert isinstance(data, dict)
    return data


async def call_echo(url: str, access_token: str) -> str:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {access_token}"}, timeout=10.0) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        result = await session.call_tool("echo", {"text": "kept alive"})
    content = result.content[0]
    assert isinstance(content, TextContent)
    return content.text


def _no_secret_anywhere(run: Run, home: Path, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in run.stdout and secret not in run.stderr
        for path in home.rglob("*"):
            if path.is_file() and path.parent.name != "secrets":
                assert secret not in path.read_text(errors="replace"), path


async def test_login_stores_tokens_that_work_and_relogin_reuses_the_client(
    fixtures: tuple[FixtureAuthServer, FixtureMCPServer], env: dict[str, str], tmp_path: Path
) -> None:
    auth, mcp = fixtures
    home = tmp_path / "home"
    run = await login(env, mcp.url, "--name", "notes")
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "browser-visited").read_text() == "200"
    assert f"{auth.issuer}/authorize?" in run.stderr  # the URL is printed even though a browser opened
    assert "workload notes" in run.stdout and f"issuer:   {auth.issuer}" in run.stdout
    assert "registered now" in run.stdout and "refresh:  yes" in run.stdout

    secret_file = home / "secrets" / "notes.json"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(secret_file.parent.stat().st_mode) == 0o700
    first = stored(home, "notes")
    token = first["token"]
    assert isinstance(token, dict)
    client = first["client"]
    assert isinstance(client, dict)
    assert f"client:   {client['client_id']}" in run.stdout
    _no_secret_anywhere(run, home, [token["access_token"], token["refresh_token"]])

    assert await call_echo(mcp.url, token["access_token"]) == "kept alive"

    # The workload now exists (as `run` would create it); `login NAME` renews in place.
    WorkloadStore(home).put(WorkloadConfig(name="notes", remote_url=mcp.url))
    clients = len(auth.store.clients)
    (tmp_path / "browser-visited").unlink()
    again = await login(env, "notes")
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "browser-visited").exists()
    assert "existing registration" in again.stdout
    assert len(auth.store.clients) == clients  # no new registration
    second = stored(home, "notes")
    assert second["client"] == first["client"]
    renewed = second["token"]
    assert isinstance(renewed, dict) and renewed["access_token"] != token["access_token"]
    _no_secret_anywhere(again, home, [renewed["access_token"], renewed["refresh_token"]])
    assert await call_echo(mcp.url, renewed["access_token"]) == "kept alive"


async def test_default_name_comes_from_the_host(
    fixtures: tuple[FixtureAuthServer, FixtureMCPServer], env: dict[str, str], tmp_path: Path
) -> None:
    _, mcp = fixtures
    run = await login(env, mcp.url)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "home" / "secrets" / f"127.0.0.1-{mcp.port}.json").exists()


async def test_unknown_workload_name(env: dict[str, str]) -> None:
    run = await login(env, "nosuch")
    assert run.returncode == 3
    assert run.stderr.strip().splitlines() == [
        "error: no workload named nosuch; give the server URL to log in to a new one"
    ]


async def test_unreachable_server_is_one_line(env: dict[str, str], tmp_path: Path) -> None:
    run = await login(env, "http://127.0.0.1:1/mcp", "--name", "dead")
    assert run.returncode == 1
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: login failed: cannot reach the MCP server")
    assert run.stderr.strip().splitlines()[-1] == errors[0]
    assert not (tmp_path / "home" / "secrets" / "dead.json").exists()


async def test_denied_login_is_one_line_and_stores_nothing(
    fixtures: tuple[FixtureAuthServer, FixtureMCPServer], env: dict[str, str], tmp_path: Path
) -> None:
    auth, mcp = fixtures
    auth.authorize_mode = "deny"
    run = await login(env, mcp.url, "--name", "denied", "--timeout", "20s")
    assert run.returncode == 1
    assert (
        run.stderr.strip()
        .splitlines()[-1]
        .startswith("error: login failed: the authorization server refused the login (access_denied")
    )
    assert not (tmp_path / "home" / "secrets" / "denied.json").exists()


async def test_bad_timeout_is_a_usage_error(env: dict[str, str]) -> None:
    run = await login(env, "http://127.0.0.1:1/mcp", "--timeout", "soon")
    assert run.returncode == 2
    assert "invalid --timeout 'soon'" in run.stderr


async def test_a_service_account_logs_in_without_a_browser_and_prints_no_secret(
    fixtures: tuple[FixtureAuthServer, FixtureMCPServer], env: dict[str, str], tmp_path: Path
) -> None:
    auth, mcp = fixtures
    client = auth.register_client(token_endpoint_auth_method="client_secret_post", client_id="svc")
    assert client.client_secret is not None
    env = {**env, "MCPKEEPER_CLIENT_SECRET": client.client_secret}
    run = await login(env, mcp.url, "--name", "svc", "--grant", "client-credentials", "--client-id", "svc")
    assert run.returncode == 0, run.stderr
    assert "refresh:  no" in run.stdout and "warning" not in run.stderr
    assert not (tmp_path / "browser-visited").exists()
    home = tmp_path / "home"
    data = stored(home, "svc")
    assert data["grant"] == "client_credentials"
    _no_secret_anywhere(run, home, [client.client_secret, str(data["token"]["access_token"])])  # type: ignore[index]
    without = {k: v for k, v in env.items() if k != "MCPKEEPER_CLIENT_SECRET"}
    again = await login(without, "svc")  # `login NAME` repeats the service-account login, stored secret
    assert again.returncode == 0, again.stderr
    assert not (tmp_path / "browser-visited").exists()
    assert stored(home, "svc")["token"] != data["token"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--grant", "client-credentials"], "--grant client-credentials needs --client-id"),
        (["--grant", "client-credentials", "--client-id", "x"], "one of --client-secret, --private-key"),
        (["--private-key", "k.pem"], "--private-key needs --client-id"),
        (["--client-id", "x", "--private-key", "k.pem"], "--private-key is for --grant client-credentials"),
        (
            ["--grant", "client-credentials", "--client-id", "x", "--client-secret", "s", "--device"],
            "exclude",
        ),
        (["--grant", "password"], "Invalid value for '--grant'"),
    ],
)
async def test_login_options_that_do_not_go_together_are_usage_errors(
    env: dict[str, str], args: list[str], message: str
) -> None:
    run = await login({**env, "MCPKEEPER_CLIENT_SECRET": ""}, "http://127.0.0.1:1/mcp", *args)
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert message in run.stderr and "Traceback" not in run.stderr
