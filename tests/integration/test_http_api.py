"""The control API on loopback TCP (``serve --api``): the bearer token, ToolHive's workload
shape, status and logs (with follow), and a login the daemon starts and reports."""

from __future__ import annotations

import asyncio
import socket
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from mcpkeeper.state.api_token import api_token_path
from mcpkeeper.testing import FixtureAuthServer, FixtureMCPServer
from tests.integration.daemon_support import call_echo, daemon_env
from tests.integration.http_api_support import api_daemon, api_url

pytestmark = pytest.mark.integration

API = "/api/v1beta"

#: ToolHive's core.Workload (docs/server/swagger.yaml) and the JSON type of each field.
TOOLHIVE_WORKLOAD = {
    "name": str,
    "package": str,
    "url": str,
    "port": int,
    "transport_type": str,
    "proxy_mode": str,
    "status": str,
    "status_context": str,
    "created_at": str,
    "labels": dict,
    "group": str,
    "tools": list,
    "remote": bool,
    "started_at": str,
}


async def test_every_request_needs_the_token_and_a_loopback_host(tmp_path: Path) -> None:
    async with api_daemon(tmp_path) as (daemon, http):
        url = api_url(tmp_path)
        assert url.startswith("http://127.0.0.1:")
        token_file = api_token_path(tmp_path)
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(token_file.parent.stat().st_mode) == 0o700
        async with httpx.AsyncClient(base_url=url, timeout=5.0) as anonymous:
            for path in (f"{API}/workloads", f"{API}/health", "/metrics", "/openapi.json", f"{API}/events"):
                refused = await anonymous.get(path)
                assert refused.status_code == 401, path
                assert refused.headers["www-authenticate"].startswith("Bearer")
            wrong = await anonymous.get(f"{API}/workloads", headers={"authorization": "Bearer not-the-token"})
            assert wrong.status_code == 401
            # The page itself is public (it holds no data) and allows no foreign script.
            page = await anonymous.get("/ui/")
            assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
        rebound = await http.get(f"{API}/workloads", headers={"host": "attacker.example"})
        assert rebound.status_code == 403  # DNS rebinding: even with the token
        assert (await http.get(f"{API}/health")).json()["status"] == "ok"
        assert (await daemon.client.health())["status"] == "ok"  # the Unix socket is still there
    # The token survives the daemon: a scrape config keeps working after a restart.
    first = token_file.read_text()
    async with api_daemon(tmp_path) as (_, http):
        assert token_file.read_text() == first
        assert (await http.get(f"{API}/health")).status_code == 200


async def test_workloads_have_toolhive_fields_and_toolhive_requests_work(tmp_path: Path) -> None:
    async with FixtureMCPServer(require_auth=False) as mcp, api_daemon(tmp_path) as (_, http):
        # ToolHive's createRequest names: url (the remote) and proxy_port.
        port = _free_port()
        created = await http.post(
            f"{API}/workloads", json={"name": "open", "url": mcp.url, "proxy_port": port, "auth": False}
        )
        assert created.status_code == 201, created.text
        assert (created.json()["name"], created.json()["port"]) == ("open", port)  # createWorkloadResponse

        listed = (await http.get(f"{API}/workloads")).json()["workloads"]
        (row,) = listed
        for field, kind in TOOLHIVE_WORKLOAD.items():
            assert isinstance(row[field], kind), (field, row[field])
        assert row["package"] == "remote" and row["remote"] is True and row["group"] == "default"
        assert row["transport_type"] == row["proxy_mode"] == "streamable-http"
        assert row["url"] == f"http://127.0.0.1:{port}/mcp" and row["remote_url"] == mcp.url
        assert row["status"] == "running" and row["health"] == "healthy"
        assert (await http.get(f"{API}/workloads", params={"group": "default"})).json()["workloads"] == listed
        assert (await http.get(f"{API}/workloads", params={"group": "other"})).status_code == 404

        status = await http.get(f"{API}/workloads/open/status")
        assert status.json()["status"] == "running" and status.json()["health"] == "healthy"
        assert (await http.get(f"{API}/workloads/ghost/status")).status_code == 404

        first_start = row["started_at"]
        restarted = (await http.post(f"{API}/workloads/open/restart")).json()
        assert (
            restarted["status"] == "running" and restarted["started_at"] > first_start
        )  # changes on restart
        stopped = (await http.post(f"{API}/workloads/open/stop")).json()
        assert stopped["status"] == "stopped" and stopped["started_at"] is None
        assert (await http.get(f"{API}/workloads")).json()["workloads"] == []  # ToolHive: all=false hides it
        assert len((await http.get(f"{API}/workloads", params={"all": "true"})).json()["workloads"]) == 1
        assert (await http.delete(f"{API}/workloads/open")).status_code == 204
        assert (await http.get(f"{API}/workloads/open")).status_code == 404


async def test_logs_tail_and_follow(tmp_path: Path) -> None:
    async with FixtureMCPServer(require_auth=False) as mcp, api_daemon(tmp_path) as (_, http):
        await http.post(f"{API}/workloads", json={"name": "open", "url": mcp.url, "auth": False})
        logs = await http.get(f"{API}/workloads/open/logs")
        assert logs.status_code == 200 and logs.headers["content-type"].startswith("text/plain")
        assert "workload open serving" in logs.text
        assert (await http.get(f"{API}/workloads/open/logs", params={"tail": "0"})).text == ""
        assert (await http.get(f"{API}/workloads/open/logs", params={"tail": "x"})).status_code == 400
        assert (await http.get(f"{API}/workloads/ghost/logs")).status_code == 404

        received: list[str] = []
        async with http.stream(
            "GET", f"{API}/workloads/open/logs", params={"follow": "true", "tail": "0"}
        ) as stream:

            async def read() -> None:
                async for text in stream.aiter_text():
                    received.append(text)
                    if "workload open stopped" in "".join(received):
                        return

            reader = asyncio.create_task(read())
            await http.post(f"{API}/workloads/open/restart")  # writes "stopped", then "serving"
            await asyncio.wait_for(reader, timeout=10.0)
        assert "workload open stopped" in "".join(received)


async def test_a_login_started_through_the_api_brings_the_workload_up(tmp_path: Path) -> None:
    async with (
        FixtureAuthServer() as auth,
        FixtureMCPServer(auth) as mcp,
        api_daemon(tmp_path) as (daemon, http),
    ):
        created = await http.post(f"{API}/workloads", json={"name": "notes", "url": mcp.url, "login": True})
        assert created.status_code == 201, created.text
        login = created.json()["login"]
        assert login["state"] == "pending"
        assert login["authorization_url"].startswith(auth.authorization_endpoint)
        assert created.json()["status"] == "unauthenticated"
        # Asking again joins the same login (one browser tab, one callback).
        again = await http.post(f"{API}/workloads/notes/login")
        assert again.status_code == 202 and again.json()["authorization_url"] == login["authorization_url"]

        # The user's browser: the fixture approves at once and redirects to the daemon's callback.
        async with httpx.AsyncClient(follow_redirects=True, timeout=10.0) as browser:
            landed = await browser.get(login["authorization_url"])
        assert landed.status_code == 200, landed.text
        await daemon.wait_status("notes", "running")
        state = (await http.get(f"{API}/workloads/notes/login")).json()
        assert state["state"] == "succeeded" and state["authorization_url"] is None
        info = await daemon.client.get_workload("notes")
        assert await call_echo(info["url"], "after an API login") == "after an API login"


async def test_a_taken_api_port_fails_the_start_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "mcpkeeper", "serve", "--api", f"127.0.0.1:{port}"],
            env=daemon_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert done.returncode == 1, done.stderr
    assert f"port {port}" in done.stderr and "Traceback" not in done.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "mcpkeeper", "serve", "--api", "0.0.0.0:8080"],
        env=daemon_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert bad.returncode == 1 and "loopback only" in bad.stderr, bad.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
