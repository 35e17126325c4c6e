"""Environment proxies (``HTTP_PROXY`` & co.) with a real forward proxy: tinyproxy.

A daemon started with ``HTTP_PROXY`` pointing at tinyproxy must send *everything*
outgoing through it: the background refreshes (the shared client once dropped the
environment's proxies), the reachability probe, and the proxied MCP calls. tinyproxy's
own log is the witness. With the forward proxy down, refreshes fail and, once the token
runs out, the status says auth_retrying; when it comes back on the same port, the probe
(which checks the path through the proxy) brings the workload back within seconds. A
login (discovery, registration, the code exchange) goes through it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcpkeeper.testing import FixtureAuthServer, FixtureMCPServer

from .cli_support import cli_env, run_cli, write_browser
from .daemon_support import FAST_TIMINGS, DaemonProcess, call_echo, store_login, wait_for

pytestmark = pytest.mark.integration

TINYPROXY = shutil.which("tinyproxy") or "/usr/bin/tinyproxy"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Tinyproxy:
    """tinyproxy on 127.0.0.1:``port`` in the foreground, logging every request to a file."""

    def __init__(self, workdir: Path, port: int) -> None:
        self.port = port
        self.log = workdir / "tinyproxy.log"
        self.conf = workdir / "tinyproxy.conf"
        self.conf.write_text(
            f"Port {port}\nListen 127.0.0.1\nAllow 127.0.0.1\nTimeout 30\nMaxClients 100\n"
            f'LogFile "{self.log}"\nLogLevel Info\nPidFile "{workdir / "tinyproxy.pid"}"\n'
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if not Path(TINYPROXY).exists():
            raise AssertionError("tinyproxy is not installed (apt-get install tinyproxy; .ci/run does)")
        self.process = subprocess.Popen(
            [TINYPROXY, "-d", "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while True:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                return
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"tinyproxy did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def requests_to(self, url_part: str, method: str = "") -> int:
        """How many requests (of ``method``, if given) for a URL containing ``url_part`` went
        through the proxy. tinyproxy logs ``Request (file descriptor N): METHOD URL HTTP/1.1``."""
        marker = f"): {method} " if method else ""
        return sum(
            1
            for line in self.log.read_text().splitlines()
            if "Request (file descriptor" in line and marker in line and url_part in line
        )


@pytest.fixture
def tinyproxy(tmp_path: Path) -> Iterator[Tinyproxy]:
    workdir = tmp_path / "tinyproxy"
    workdir.mkdir()
    proxy = Tinyproxy(workdir, _free_port())
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


async def test_refreshes_probes_and_calls_go_through_the_environment_proxy(
    tmp_path: Path, tinyproxy: Tinyproxy
) -> None:
    home = tmp_path / "home"
    proxy_url = f"http://127.0.0.1:{tinyproxy.port}"
    env = {**FAST_TIMINGS, "HTTP_PROXY": proxy_url, "HTTPS_PROXY": proxy_url, "NO_PROXY": ""}
    # 3 s tokens: refreshed every 1.5 s in the background, whatever the client does.
    async with FixtureAuthServer(access_token_lifetime=3.0) as auth, FixtureMCPServer(auth) as mcp:
        store_login(home, "w", auth, mcp)
        async with DaemonProcess(home, env) as daemon:
            url = (await daemon.client.create_workload("w", mcp.url))["url"]
            assert await call_echo(url, "via the proxy") == "via the proxy"

            async def refreshed_twice() -> bool:
                return auth.counters.by_grant["refresh_token"] >= 2

            await wait_for(refreshed_twice, timeout=10, what="two background refreshes")
            refreshes = auth.counters.by_grant["refresh_token"]
            # Every one of them through the forward proxy (tinyproxy logs a request before it
            # forwards it; the probe's GETs are not counted here).
            assert tinyproxy.requests_to(f"{auth.url}/token", "POST") >= refreshes
            assert tinyproxy.requests_to(mcp.url) >= 1  # the proxied MCP calls too

            # The forward proxy goes away: refreshes cannot reach the token endpoint; once
            # the token runs out, the status says so.
            tinyproxy.stop()
            await daemon.wait_status("w", "auth_retrying", timeout=15)
            before = auth.counters.by_grant["refresh_token"]
            assert before == refreshes or before == refreshes + 1  # none got through the dead proxy

            # Back on the same port: the probe (through the proxy) sees it within seconds.
            tinyproxy.start()
            started = time.monotonic()
            await daemon.wait_status("w", "running", timeout=15)
            assert time.monotonic() - started <= 5.0
            assert await call_echo(url, "again") == "again"
        assert auth.counters.spent_token_reuse == 0


async def test_a_login_discovers_registers_and_exchanges_through_the_environment_proxy(
    tmp_path: Path, tinyproxy: Tinyproxy
) -> None:
    home = tmp_path / "home"
    proxy_url = f"http://127.0.0.1:{tinyproxy.port}"
    browser = write_browser(tmp_path)
    env = cli_env(
        home, {"HTTP_PROXY": proxy_url, "HTTPS_PROXY": proxy_url, "NO_PROXY": "", "BROWSER": str(browser)}
    )
    async with FixtureAuthServer() as auth, FixtureMCPServer(auth) as mcp:
        done = await asyncio.to_thread(run_cli, home, "login", mcp.url, "--name", "w", env=env, timeout=60)
        assert done.returncode == 0, done.stderr
        assert auth.counters.by_grant["authorization_code"] == 1
    # Discovery (the MCP server, its metadata, the AS metadata), registration and the code
    # exchange all went through the forward proxy.
    assert tinyproxy.requests_to(mcp.url) >= 1
    assert tinyproxy.requests_to("/.well-known/") >= 1
    assert tinyproxy.requests_to(f"{auth.url}/register") == 1
    assert tinyproxy.requests_to(f"{auth.url}/token", "POST") == 1
